/**
 * The test/bench side of lab-agent-main.ts: spawns it in a namespace and offers its commands as
 * methods, the ACL driver ones shaped as an AclDriver.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { AclTuple } from '../../fabric/dataplane-state.js';
import { Sub0Error, type Sub0ErrorCode } from '../../fabric/errors.js';
import type { AclDriver, AclObserveOptions, AclOp } from '../../overlay/drivers.js';
import type { AclDriverOptions } from '../../overlay/acl/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: { code: Sub0ErrorCode; message: string };
}

export class LabAgent {
  private seq = 0;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private stderr = '';
  private exited = false;

  private constructor(
    readonly ns: string,
    private readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as Reply;
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.on('exit', () => {
      this.exited = true;
      for (const w of this.waiting.values()) w({ id: -1, ok: false, error: { code: 'driver', message: `lab agent in ${ns} exited: ${this.stderr.trim()}` } });
      this.waiting.clear();
    });
  }

  static spawn(ns: string): LabAgent {
    const child = spawn('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '--import', 'tsx', join(HERE, 'lab-agent-main.ts')], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new LabAgent(ns, child);
  }

  call<T = unknown>(cmd: string, args: object = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Sub0Error('driver', `lab agent in ${this.ns} has exited: ${this.stderr.trim()}`));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (r) => (r.ok ? resolve(r.value as T) : reject(new Sub0Error(r.error!.code, r.error!.message, { where: this.ns }))));
      this.child.stdin!.write(JSON.stringify({ id, cmd, args }) + '\n');
    });
  }

  /** Creates the driver inside the namespace (createAclDriver) and returns a proxy to it. */
  async driver(opts: AclDriverOptions = {}): Promise<AclDriver & { readonly fallbackReason?: string }> {
    const r = await this.call<{ kind: 'ebpf' | 'nftables'; fallbackReason?: string }>('create', opts);
    return {
      kind: r.kind,
      fallbackReason: r.fallbackReason,
      attach: (ifname: string, guarded: readonly string[]) => this.call<void>('attach', { ifname, guarded }),
      observe: async (o?: AclObserveOptions) => new Map(await this.call<[string, AclTuple][]>('observe', { fresh: o?.fresh ?? false, ...(o?.keys ? { keys: [...o.keys] } : {}) })),
      apply: (ops: readonly AclOp[]) => this.call<void>('apply', { ops }),
      destroy: () => this.call<void>('destroy'),
    };
  }

  listen(port: number): Promise<void> {
    return this.call('listen', { port });
  }
  listenUdp(port: number): Promise<void> {
    return this.call('listenUdp', { port });
  }
  /** A fresh TCP connection and one echo round trip. */
  connect(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
    return this.call('connect', { host, port, timeoutMs });
  }
  /** Opens a TCP connection kept for echo(); null if it cannot be opened. */
  open(host: string, port: number, timeoutMs = 1000): Promise<number | null> {
    return this.call('open', { host, port, timeoutMs });
  }
  echo(id: number, timeoutMs = 1000): Promise<boolean> {
    return this.call('echo', { id, timeoutMs });
  }
  udp(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
    return this.call('udp', { host, port, timeoutMs });
  }

  /** See lab-agent-main.ts timeToEnforce: ms from apply(ops) to the first UDP echo, or null. */
  timeToEnforce(ops: readonly AclOp[], host: string, port: number, timeoutMs = 2000): Promise<number | null> {
    return this.call('timeToEnforce', { ops, host, port, timeoutMs });
  }

  /** Asks the agent to exit; kills it if it has not within a second. */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin!.end(JSON.stringify({ id: 0, cmd: 'exit' }) + '\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 1000);
    await gone;
    clearTimeout(timer);
  }
}
