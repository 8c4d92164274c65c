/**
 * A Mosquitto broker (Debian's package) for the tests, the lab and the benches: its own config in
 * a directory, admission files written by a MosquittoAdmission before it starts, a free port on
 * loopback, and a way to kill it and start it again on the same port. Started as a child process;
 * stop() (or the exit of this process) ends it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Sub0Error } from '../fabric/errors.js';
import { mosquittoConf } from '../controller/broker/mosquitto-admission.js';

export interface MosquittoOptions {
  /** Holds mosquitto.conf, the pid file, the log, and the admission files (passwd, acl). */
  readonly dir: string;
  readonly host?: string;
  /** 0 or absent: a free port. */
  readonly port?: number;
  readonly maxConnections?: number;
  /** File descriptors for the broker (one per client): raised from the usual 1,024. */
  readonly nofile?: number;
}

export class Mosquitto {
  private proc: ChildProcess | undefined;
  private readonly exitHook = () => this.proc?.kill('SIGKILL');

  private constructor(
    readonly dir: string,
    readonly host: string,
    readonly port: number,
    private readonly nofile: number,
  ) {}

  static async start(o: MosquittoOptions): Promise<Mosquitto> {
    mkdirSync(o.dir, { recursive: true });
    const host = o.host ?? '127.0.0.1';
    const port = o.port || (await freePort(host));
    const m = new Mosquitto(o.dir, host, port, o.nofile ?? 4096);
    writeFileSync(m.confPath, mosquittoConf({ host, port, dir: o.dir, pidFile: m.pidFile, user: 'root', ...(o.maxConnections ? { maxConnections: o.maxConnections } : {}) }));
    await m.run();
    return m;
  }

  get url(): string {
    return `mqtt://${this.host}:${this.port}`;
  }

  get pidFile(): string {
    return join(this.dir, 'mosquitto.pid');
  }

  get confPath(): string {
    return join(this.dir, 'mosquitto.conf');
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts the broker (again) and resolves once it listens. */
  async run(): Promise<void> {
    if (this.running) return;
    const log = openSync(join(this.dir, 'mosquitto.log'), 'a');
    // `ulimit -n` in a shell: Node cannot raise a child's limits itself.
    const proc = spawn('bash', ['-c', `ulimit -n ${this.nofile} && exec mosquitto -c "$0"`, this.confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    process.once('exit', this.exitHook);
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Sub0Error('timeout', `mosquitto did not start in 10 s: ${seen.trim()}`)), 10_000);
      proc.stderr!.on('data', (d: Buffer) => {
        writeFileSync(log, d);
        if (seen.length < 10_000) seen += d.toString();
        if (/ version \S+ running/.test(seen)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Sub0Error('driver', `mosquitto exited (${code}) while starting: ${seen.trim()}`));
      });
    });
  }

  /** Kills the broker (default SIGKILL: a crash) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await gone;
    process.off('exit', this.exitHook);
  }

  stop(): Promise<void> {
    return this.kill('SIGTERM');
  }
}

/** A port nothing listens on right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}
