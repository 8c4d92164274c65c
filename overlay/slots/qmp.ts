/**
 * A QEMU Machine Protocol client over a unix socket: JSON objects, one per line. Handshake
 * (greeting, then qmp_capabilities), commands matched to their replies by id, events to a
 * listener. Every command has a deadline; a closed socket fails what is in flight.
 */
import { connect, type Socket } from 'node:net';
import { Sub0Error } from '../../fabric/errors.js';

const DEFAULT_TIMEOUT_MS = 5_000;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class QmpClient {
  private buf = '';
  private next = 1;
  private readonly pending = new Map<string, Pending>();
  private closedWith: Error | undefined;
  onEvent: (event: string, data: unknown) => void = () => undefined;
  onClose: () => void = () => undefined;

  private constructor(private readonly sock: Socket, private readonly path: string) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.take(d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closedWith = new Sub0Error('driver', `QMP socket ${path} closed`);
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(this.closedWith);
      }
      this.pending.clear();
      this.onClose();
    });
  }

  /** Connects, reads the greeting and leaves capabilities negotiation mode. */
  static async connect(path: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<QmpClient> {
    const sock = connect(path);
    const c = new QmpClient(sock, path);
    const greeting = new Promise<void>((resolve, reject) => {
      c.pending.set('greeting', {
        resolve: () => resolve(),
        reject,
        timer: setTimeout(() => reject(new Sub0Error('timeout', `QMP ${path}: no greeting within ${timeoutMs} ms`)), timeoutMs),
      });
      sock.once('error', (e) => reject(new Sub0Error('driver', `QMP ${path}: ${e.message}`, { cause: e })));
    });
    try {
      await greeting;
      await c.execute('qmp_capabilities', undefined, timeoutMs);
    } catch (e) {
      sock.destroy();
      throw e;
    }
    return c;
  }

  execute(command: string, args?: Record<string, unknown>, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = String(this.next++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Sub0Error('timeout', `QMP ${this.path}: ${command} unanswered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.sock.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private take(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: { QMP?: unknown; id?: string; return?: unknown; error?: { class: string; desc: string }; event?: string; data?: unknown };
      try {
        msg = JSON.parse(line);
      } catch {
        continue; // not QMP: ignored
      }
      const key = msg.QMP !== undefined ? 'greeting' : msg.id;
      if (msg.event) this.onEvent(msg.event, msg.data);
      if (key === undefined) continue;
      const p = this.pending.get(key);
      if (!p) continue;
      this.pending.delete(key);
      clearTimeout(p.timer);
      if (msg.error) p.reject(new Sub0Error('driver', `QMP ${this.path}: ${msg.error.class}: ${msg.error.desc}`));
      else p.resolve(msg.return);
    }
  }
}
