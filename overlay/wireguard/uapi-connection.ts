/**
 * One persistent connection to a wireguard-go UAPI socket. Requests are serialized (the protocol
 * has no request ids: a reply belongs to the one request in flight). A reply ends at the first
 * blank line, which only the closing `errno=N\n\n` produces.
 */
import { connect, type Socket } from 'node:net';
import { Sub0Error } from '../../fabric/errors.js';

interface Pending {
  readonly text: string;
  readonly resolve: (reply: string) => void;
  readonly reject: (e: Error) => void;
}

export class UapiConnection {
  private buf = '';
  private inFlight: Pending | undefined;
  private readonly queue: Pending[] = [];
  private dead: Error | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly sock: Socket,
    readonly path: string,
    private readonly timeoutMs: number,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('error', (e) => this.fail(new Sub0Error('driver', `UAPI socket error: ${e.message}`, { cause: e, where: path })));
    sock.on('close', () => this.fail(new Sub0Error('driver', 'UAPI socket closed', { where: path })));
  }

  /**
   * Connects; rejects with Sub0Error 'not-found' when nothing listens on `path`, 'timeout' when the
   * connection is not made within `timeoutMs`, and 'driver' when `signal` aborts it (a backend
   * closing must not leave a socket behind that keeps the process alive).
   */
  static connect(path: string, timeoutMs = 5000, signal?: AbortSignal): Promise<UapiConnection> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const settle = (e?: Sub0Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        sock.off('error', onError);
        if (e) {
          sock.destroy();
          reject(e);
        } else resolve(new UapiConnection(sock, path, timeoutMs));
      };
      const onError = (e: NodeJS.ErrnoException) => {
        const gone = e.code === 'ENOENT' || e.code === 'ECONNREFUSED';
        settle(new Sub0Error(gone ? 'not-found' : 'driver', `cannot connect to the UAPI socket: ${e.code ?? e.message}`, { cause: e, where: path }));
      };
      const onAbort = () => settle(new Sub0Error('driver', 'the WireGuard backend closed while connecting', { where: path }));
      const timer = setTimeout(() => settle(new Sub0Error('timeout', `no UAPI connection within ${timeoutMs} ms`, { where: path })), timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      sock.once('error', onError);
      sock.once('connect', () => settle());
    });
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  /** Sends one complete request (`get=1\n\n` or a set transaction) and resolves with its reply. */
  request(text: string): Promise<string> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.queue.push({ text, resolve, reject });
      this.pump();
    });
  }

  close(): void {
    this.fail(new Sub0Error('driver', 'UAPI connection closed by the agent', { where: this.path }));
  }

  private pump(): void {
    if (this.inFlight || this.dead) return;
    const next = this.queue.shift();
    if (!next) return;
    this.inFlight = next;
    this.buf = '';
    this.timer = setTimeout(() => this.fail(new Sub0Error('timeout', `no UAPI reply within ${this.timeoutMs} ms`, { where: this.path })), this.timeoutMs);
    this.sock.write(next.text);
  }

  private onData(d: string): void {
    // Search only the new data (and the one character before it) for the terminating blank line.
    const from = Math.max(0, this.buf.length - 1);
    this.buf += d;
    const end = this.buf.indexOf('\n\n', from);
    if (end < 0 || !this.inFlight) return;
    const reply = this.buf.slice(0, end + 2);
    const p = this.inFlight;
    this.inFlight = undefined;
    clearTimeout(this.timer);
    p.resolve(reply);
    this.pump();
  }

  private fail(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    clearTimeout(this.timer);
    this.sock.destroy();
    this.inFlight?.reject(e);
    this.inFlight = undefined;
    for (const p of this.queue.splice(0)) p.reject(e);
  }
}
