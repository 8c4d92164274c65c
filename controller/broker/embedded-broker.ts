/**
 * The embedded broker: aedes in the controller's process, in a thread of its own (a worker), so
 * that routing a full republish to 1,000 nodes and the controller's encoding and signing of it
 * run side by side instead of taking turns on one thread. The controller reaches it over
 * loopback like any broker; admission goes to it as a message. `sub0 controller
 * --embedded-broker` and the lab use it.
 */
import { Worker } from 'node:worker_threads';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import type { SigningKey } from '../../fabric/envelope.js';
import { Sub0Error } from '../../fabric/errors.js';
import { withDeadline } from '../../overlay/deadline.js';
import type { Admission, BrokerAdmission } from './admission.js';
import type { WorkerInit, WorkerReply, WorkerRequest, WorkerResult } from './broker-worker.js';

type Request = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export interface EmbeddedBrokerOptions {
  /** The controller's signing key: node passwords are derived against it. */
  readonly controllerKey: SigningKey;
  /** The controller's (and observer's) login secret. */
  readonly adminPassword: string;
  readonly log: Logger;
}

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');

/**
 * Bundled, the worker is dist/broker-worker.js beside the program. From source (tsx, the tests)
 * it is the .ts file beside this one, loaded through tsx's API: a worker does not inherit the
 * loader hooks that `--import tsx` registered in the main thread.
 */
function startWorker(workerData: WorkerInit): Worker {
  if (!fromSource) return new Worker(join(dirname(here), 'broker-worker.js'), { workerData });
  const entry = pathToFileURL(join(dirname(here), 'broker-worker.ts')).href;
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

export class EmbeddedBroker implements BrokerAdmission {
  private seq = 0;
  private readonly waiting = new Map<number, (r: WorkerResult) => void>();
  private admitted: Admission = new Map();
  private closed = false;

  private constructor(private readonly worker: Worker, private readonly log: Logger) {
    worker.on('message', (m: WorkerReply) => {
      if ('log' in m) return this.relay(m.log);
      this.waiting.get(m.id)?.(m);
      this.waiting.delete(m.id);
    });
    worker.on('error', (e) => log.error({ err: e.message }, 'the embedded broker failed'));
    worker.on('exit', (code) => {
      if (!this.closed) log.error({ code }, 'the embedded broker stopped');
      for (const w of this.waiting.values()) w({ id: -1, ok: false, error: `the embedded broker exited (${code})` });
      this.waiting.clear();
    });
  }

  static async start(o: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
    const log = o.log.child({ component: 'broker' });
    const init: WorkerInit = { controllerSecretHex: bytesToHex(o.controllerKey.secretKey), adminPassword: o.adminPassword, level: log.level };
    const worker = startWorker(init);
    const b = new EmbeddedBroker(worker, log);
    await withDeadline(new Promise<void>((resolve, reject) => b.waiting.set(0, (r) => (r.ok ? resolve() : reject(new Sub0Error('driver', r.error))))), 30_000, 'starting the embedded broker');
    return b;
  }

  /** Serves MQTT on host:port (0: any free port); resolves with the address bound. */
  listen(host: string, port: number): Promise<{ host: string; port: number; url: string }> {
    return this.call({ op: 'listen', host, port }) as Promise<{ host: string; port: number; url: string }>;
  }

  get admittedNodes(): Admission {
    return this.admitted;
  }

  async admit(network: string, nodes: Admission): Promise<void> {
    await this.call({ op: 'admit', network, nodes: [...nodes] });
    this.admitted = new Map(nodes);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.call({ op: 'close' }).catch(() => undefined);
    this.closed = true;
    await this.worker.terminate();
  }

  private call(req: Request): Promise<unknown> {
    const id = ++this.seq;
    const reply = new Promise<unknown>((resolve, reject) => {
      this.waiting.set(id, (r) => (r.ok ? resolve('value' in r ? r.value : undefined) : reject(new Sub0Error('driver', `embedded broker: ${r.error}`))));
    });
    this.worker.postMessage({ ...req, id } as WorkerRequest);
    return withDeadline(reply, 30_000, `embedded broker: ${req.op}`);
  }

  /** A pino line from the worker, written by this thread's logger. */
  private relay(line: string): void {
    try {
      const { level, msg, time: _t, pid: _p, hostname: _h, ...rest } = JSON.parse(line) as Record<string, unknown> & { level: number; msg?: string };
      const name = this.log.levels.labels[level] ?? 'info';
      if (LEVELS.has(name)) (this.log[name as 'info'] as (o: object, m?: string) => void)(rest, msg);
    } catch {
      /* not a log line */
    }
  }
}
