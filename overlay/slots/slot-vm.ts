/**
 * One slot's virtual machine: QEMU started detached (it outlives a restart of the agent, which
 * finds it again by its pid file and QMP socket), watched over QMP (the socket closes when QEMU
 * ends), stopped with QMP `quit` and SIGKILL past a deadline. Its disk is a sparse file of the
 * chain's size in the slot's directory, kept across restarts of the VM, the agent and the node.
 * Its console is read from a socket into a bounded log (the last LOG_BYTES).
 *
 *   <slots dir>/<id>/disk.raw  qemu.pid  qmp.sock  console.sock  console.log  ops.sock  qemu.err
 *
 * ops.sock is the guest's second serial port, left to the slot's operator (out of band, as a
 * server's serial-over-LAN is): the agent never reads it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';
import { isAlive, readPid } from '../pid.js';
import { QmpClient } from './qmp.js';
import { slotQemuArgs, type SlotVmSpec } from './qemu-args.js';
import { jailedCommand, type SlotJail } from './slot-jail.js';

export const LOG_BYTES = 64 * 1024;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const GiB = 1024 ** 3;

export interface SlotFiles {
  readonly dir: string;
  readonly disk: string;
  readonly pidFile: string;
  readonly qmp: string;
  readonly serial: string;
  readonly ops: string;
  readonly log: string;
  readonly err: string;
}

export function slotFiles(slotsDir: string, id: string): SlotFiles {
  const dir = join(slotsDir, id);
  return { dir, disk: join(dir, 'disk.raw'), pidFile: join(dir, 'qemu.pid'), qmp: join(dir, 'qmp.sock'), serial: join(dir, 'console.sock'), ops: join(dir, 'ops.sock'), log: join(dir, 'console.log'), err: join(dir, 'qemu.err') };
}

/** The slot's disk at `gib` GiB: made sparse, grown when the chain grows it, never shrunk (that would cut its data). */
export function ensureDisk(file: string, gib: number): void {
  const want = gib * GiB;
  const have = existsSync(file) ? statSync(file).size : -1;
  if (have > want) throw new Sub0Error('invalid-input', `the slot's disk is ${have / GiB} GiB and the chain now says ${gib}: a disk is never shrunk (its data would be cut)`);
  if (have < 0) closeSync(openSync(file, 'w'));
  if (have < want) truncateSync(file, want);
}

function pidOf(files: SlotFiles): number | undefined {
  const pid = readPid(files.pidFile);
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

export class SlotVm {
  private console: Socket | undefined;
  private logText = '';
  private stopping = false;
  /** QEMU ended (its QMP socket closed): the console must not reconnect (a new VM may own the path). */
  private ended = false;
  /** Called once when QEMU ends without stop() having been asked. */
  onExit: (reason: string) => void = () => undefined;

  private constructor(readonly files: SlotFiles, readonly pid: number, private readonly qmp: QmpClient, readonly startedAt: number) {
    qmp.onClose = () => {
      this.ended = true;
      this.console?.destroy();
      if (!this.stopping) this.onExit(this.exitReason());
    };
    this.attachConsole();
  }

  /** The QEMU of this slot if one runs (an agent restarted finds its VMs again), else undefined. */
  static async adopt(files: SlotFiles): Promise<SlotVm | undefined> {
    const pid = pidOf(files);
    if (!pid) return undefined;
    try {
      const qmp = await QmpClient.connect(files.qmp);
      const vm = new SlotVm(files, pid, qmp, statSync(files.pidFile).mtimeMs);
      if (existsSync(files.log)) vm.logText = readFileSync(files.log, 'utf8').slice(-LOG_BYTES);
      return vm;
    } catch {
      return undefined;
    }
  }

  /**
   * Starts the slot's QEMU; with `jail`, confined (slot-jail.ts): then its pid (in this machine's
   * namespace) is found under its launcher and written to the pid file by the agent.
   */
  static async start(spec: Omit<SlotVmSpec, 'disk' | 'qmp' | 'serial' | 'ops' | 'pidFile' | 'jail'>, files: SlotFiles, diskGiB: number, qemu = 'qemu-system-x86_64', jail?: SlotJail): Promise<SlotVm> {
    mkdirSync(files.dir, { recursive: true });
    ensureDisk(files.disk, diskGiB);
    for (const f of [files.pidFile, files.qmp, files.serial, files.ops]) rmSync(f, { force: true });
    const err = openSync(files.err, 'w');
    const args = slotQemuArgs({ ...spec, disk: files.disk, qmp: files.qmp, serial: files.serial, ops: files.ops, ...(jail ? { jail } : { pidFile: files.pidFile }) });
    const launch = jail ? jailedCommand(qemu, args, jail.procs) : { cmd: qemu, args };
    const child = spawn(launch.cmd, launch.args, { detached: true, stdio: ['ignore', 'ignore', err] });
    closeSync(err);
    let exited: string | undefined;
    child.on('exit', (code, signal) => (exited = signal ? `killed by ${signal}` : `exit ${code}`));
    child.on('error', (e) => (exited = e.message));
    child.unref();
    const end = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new Sub0Error('driver', `QEMU for slot ${spec.id} ended at start (${exited}): ${readFileSync(files.err, 'utf8').trim().slice(-500) || 'no message'}`);
      const qmp = existsSync(files.qmp) ? await QmpClient.connect(files.qmp).catch(() => undefined) : undefined; // undefined: not listening yet
      if (qmp) {
        let pid = child.pid!;
        if (jail) {
          // QEMU is the launcher's only child once its QMP socket listens.
          const under = readPid(`/proc/${pid}/task/${pid}/children`);
          if (under === undefined) {
            qmp.close();
            child.kill('SIGKILL');
            throw new Sub0Error('driver', `slot ${spec.id}: QEMU answers, but no process runs under its launcher ${pid}`);
          }
          pid = under;
          writeFileSync(files.pidFile, `${pid}\n`);
        }
        return new SlotVm(files, pid, qmp, Date.now());
      }
      if (Date.now() > end) {
        child.kill('SIGKILL');
        throw new Sub0Error('timeout', `QEMU for slot ${spec.id} did not open its QMP socket within ${START_TIMEOUT_MS / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  alive(): boolean {
    return isAlive(this.pid);
  }

  /** A QMP command, run in QEMU's process (as the agent's own QMP client; tests try escapes with it). */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return this.qmp.execute(command, args);
  }

  /** QEMU's run state (`running`, `paused`, `shutdown`...). */
  async state(): Promise<string> {
    const r = (await this.qmp.execute('query-status')) as { status: string };
    return r.status;
  }

  /** The console's last LOG_BYTES. */
  get consoleLog(): string {
    return this.logText;
  }

  /** Resolves with the first console line matching `pattern` (lines already seen included). */
  waitConsole(pattern: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.logText.split('\n').find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.lineWaiters.delete(w);
        reject(new Sub0Error('timeout', `slot ${this.files.dir}: no console line matching ${pattern} within ${timeoutMs / 1000} s; last lines:\n${this.logText.split('\n').slice(-10).join('\n')}`));
      }, timeoutMs);
      const w = (line: string) => {
        if (!pattern.test(line)) return;
        clearTimeout(timer);
        this.lineWaiters.delete(w);
        resolve(line);
      };
      this.lineWaiters.add(w);
    });
  }
  private readonly lineWaiters = new Set<(line: string) => void>();
  private partial = '';

  /** Asks QEMU to quit, then kills it past the deadline; resolves once it is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.qmp.execute('quit').catch(() => undefined);
    const end = Date.now() + STOP_TIMEOUT_MS;
    while (isAlive(this.pid)) {
      if (Date.now() > end) {
        process.kill(this.pid, 'SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    // Ended; when this process started it, gone once reaped (its zombie goes): a moment at most.
    const reaped = Date.now() + 2_000;
    while (existsSync(`/proc/${this.pid}`) && Date.now() < reaped) await new Promise((r) => setTimeout(r, 20));
    this.qmp.close();
    this.console?.destroy();
    rmSync(this.files.pidFile, { force: true });
  }

  /** Drops the agent's hold on a VM that keeps running (the agent stopping, the data plane staying up). */
  detach(): void {
    this.stopping = true;
    this.qmp.close();
    this.console?.destroy();
  }

  private exitReason(): string {
    const err = existsSync(this.files.err) ? readFileSync(this.files.err, 'utf8').trim().split('\n').at(-1) : '';
    return err ? `QEMU ended: ${err}` : 'QEMU ended';
  }

  /** Connects to the console socket; reconnects while the VM runs (QEMU takes one reader at a time). */
  private attachConsole(tries = 0): void {
    const sock = connect(this.files.serial);
    this.console = sock;
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (this.stopping || this.ended || !isAlive(this.pid) || tries > 50) return;
      setTimeout(() => this.attachConsole(tries + 1), 100).unref();
    });
    sock.on('data', (d: string) => {
      this.logText = (this.logText + d).slice(-LOG_BYTES);
      this.flushLog();
      this.partial += d;
      let nl: number;
      while ((nl = this.partial.indexOf('\n')) >= 0) {
        const line = this.partial.slice(0, nl).replace(/\r$/, '');
        this.partial = this.partial.slice(nl + 1);
        for (const w of [...this.lineWaiters]) w(line);
      }
      if (this.partial.length > LOG_BYTES) this.partial = '';
    });
  }

  private flushTimer: NodeJS.Timeout | undefined;
  private flushLog(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      try {
        writeFileSync(this.files.log, this.logText);
      } catch {
        // the log is a courtesy: the VM runs without it
      }
    }, 200);
    this.flushTimer.unref();
  }
}
