/**
 * A small netlink client on the `netlink` npm package's raw socket: single requests, dumps, and
 * batches of many messages in few sendmsg() calls. Shared by the rtnetlink route driver and the
 * kernel WireGuard backend (generic netlink). The socket lives in the network namespace of the
 * thread that created it.
 *
 * Batches: only the last message of each chunk asks for an ACK. The kernel processes a chunk
 * in order inside sendmsg() and always reports errors, so when the last ACK arrives every error
 * of the chunk has arrived before it. (Asking an ACK for each of 10,000 messages would overflow
 * the receive buffer and lose some: acks are small, but each is its own skb.)
 *
 * Nothing waits forever: every request (and every chunk of a batch) has a deadline, and a socket
 * error (ENOBUFS: the kernel dropped replies) fails every request in flight at once, since their
 * answers may be among those lost. Callers re-read the kernel's state at their next pass.
 */
import { RawNetlinkSocket, parseMessages, type NetlinkMessage } from 'netlink';
import { Sub0Error } from '../../fabric/errors.js';

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSGERR_ATTR_MSG = 1;

/** Largest chunk of a batch handed to one sendmsg(); far below the default SO_SNDBUF. */
const CHUNK_BYTES = 32 * 1024;

/** A netlink error reply: `errno` is positive (ENOENT = 2), `extack` the kernel's own words. */
export class NetlinkError extends Error {
  constructor(readonly errno: number, readonly extack: string | undefined, what: string) {
    super(`${what}: errno ${errno}${extack ? ` (${extack})` : ''}`);
    this.name = 'NetlinkError';
  }
}

export interface NlMessage {
  readonly type: number;
  /** Extra flags besides REQUEST/ACK (CREATE, REPLACE, DUMP …). */
  readonly flags?: number;
  readonly body: Uint8Array | readonly Uint8Array[];
}

interface Waiter {
  readonly what: string;
  readonly timer: NodeJS.Timeout;
  readonly parts: NetlinkMessage[];
  interrupted: boolean;
  readonly done: (err: Error | undefined, parts: NetlinkMessage[], interrupted: boolean) => void;
}

export class NlSocket {
  private readonly raw: RawNetlinkSocket;
  private seq = (Math.random() * 0x7fffffff) >>> 0;
  private readonly waiting = new Map<number, Waiter>();
  /** Errors of batch messages that asked no ACK, keyed by seq; read when their chunk completes. */
  private readonly batchErrors = new Map<number, NetlinkError>();
  private closed = false;

  private readonly timeoutMs: number;
  private readonly peer: number;

  /**
   * `timeoutMs`: each request's deadline (default 5 s). `peer`: the netlink port spoken to, 0 (the
   * kernel) unless a user-space peer stands in for it (the fault tests' silent peer).
   */
  constructor(protocol: number, opts: { readonly timeoutMs?: number; readonly peer?: number } = {}) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.peer = opts.peer ?? 0;
    this.raw = new RawNetlinkSocket(protocol, { recvBufferSize: 4 << 20, sendBufferSize: 1 << 20 });
    this.raw.on('message', (buf: Buffer) => this.receive(buf));
    this.raw.on('error', (e: NodeJS.ErrnoException) => this.failAll(e));
    this.raw.unref();
  }

  /** Every request in flight fails: its answer may be among what the socket lost. */
  private failAll(e: NodeJS.ErrnoException): void {
    const code = e.code ?? e.message;
    for (const seq of [...this.waiting.keys()]) {
      const w = this.waiting.get(seq)!;
      this.finish(seq, new Sub0Error('driver', `${w.what}: the netlink socket failed (${code}); the state is read again at the next pass`, { cause: e }));
    }
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /** One request that expects an ACK (or, with `flags` DUMP, a multipart reply). */
  async request(msg: NlMessage, what: string): Promise<NetlinkMessage[]> {
    const { parts } = await this.requestRaw(msg, what);
    return parts;
  }

  /** A dump: retried while the kernel reports it was interrupted by a concurrent change. */
  async dump(msg: NlMessage, what: string): Promise<NetlinkMessage[]> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.requestRaw({ ...msg, flags: (msg.flags ?? 0) | NLM_F_DUMP }, what);
      if (!r.interrupted || attempt >= 4) return r.parts;
    }
  }

  private requestRaw(msg: NlMessage, what: string): Promise<{ parts: NetlinkMessage[]; interrupted: boolean }> {
    if (this.closed) return Promise.reject(new Sub0Error('driver', `${what}: netlink socket closed`));
    const seq = this.nextSeq();
    const dump = ((msg.flags ?? 0) & NLM_F_DUMP) === NLM_F_DUMP;
    const flags = NLM_F_REQUEST | (dump ? 0 : NLM_F_ACK) | (msg.flags ?? 0);
    return new Promise((resolve, reject) => {
      this.wait(seq, what, (err, parts, interrupted) => (err ? reject(err) : resolve({ parts, interrupted })));
      this.send([encode(msg, seq, flags, this.port())], reject);
    });
  }

  /**
   * Sends many messages in chunks; resolves with one entry per message: undefined when it
   * succeeded, its NetlinkError otherwise. Never rejects for a per-message error.
   */
  async batch(msgs: readonly NlMessage[], what: string): Promise<(NetlinkError | undefined)[]> {
    const results: (NetlinkError | undefined)[] = new Array(msgs.length).fill(undefined);
    let i = 0;
    while (i < msgs.length) {
      const bufs: Uint8Array[] = [];
      const seqs: number[] = [];
      let size = 0;
      const start = i;
      while (i < msgs.length && (size < CHUNK_BYTES || bufs.length === 0)) {
        const seq = this.nextSeq();
        seqs.push(seq);
        // The ACK flag goes on the chunk's last message, decided below once the chunk is full.
        const b = encode(msgs[i]!, seq, NLM_F_REQUEST | (msgs[i]!.flags ?? 0), this.port());
        bufs.push(b);
        size += b.length;
        i++;
      }
      const last = bufs[bufs.length - 1]!;
      last[6] = (last[6]! | NLM_F_ACK) & 0xff; // flags are little-endian u16 at offset 6
      const lastSeq = seqs[seqs.length - 1]!;
      await new Promise<void>((resolve, reject) => {
        this.wait(lastSeq, what, (err) => {
          if (err instanceof NetlinkError) this.batchErrors.set(lastSeq, err);
          else if (err) return reject(err);
          resolve();
        });
        this.send(bufs, reject);
      });
      seqs.forEach((s, k) => {
        const e = this.batchErrors.get(s);
        if (e) {
          results[start + k] = e;
          this.batchErrors.delete(s);
        }
      });
    }
    this.batchErrors.clear();
    return results;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.raw.close();
    for (const [, w] of this.waiting) {
      clearTimeout(w.timer);
      w.done(new Sub0Error('driver', `${w.what}: netlink socket closed`), [], false);
    }
    this.waiting.clear();
  }

  private port(): number {
    return this.raw.address().port;
  }

  private wait(seq: number, what: string, done: Waiter['done']): void {
    if (this.waiting.size === 0) this.raw.ref();
    const timer = setTimeout(() => this.finish(seq, new Sub0Error('timeout', `${what}: no netlink answer in ${this.timeoutMs} ms`)), this.timeoutMs);
    this.waiting.set(seq, { what, timer, parts: [], interrupted: false, done });
  }

  private finish(seq: number, err: Error | undefined): void {
    const w = this.waiting.get(seq);
    if (!w) return;
    clearTimeout(w.timer);
    this.waiting.delete(seq);
    if (this.waiting.size === 0) this.raw.unref();
    w.done(err, w.parts, w.interrupted);
  }

  private send(bufs: Uint8Array[], reject: (e: Error) => void): void {
    this.raw.send(bufs, { port: this.peer }, (e) => {
      if (e) reject(new Sub0Error('driver', `netlink sendmsg failed: ${e.code ?? e.message}`, { cause: e }));
    });
  }

  private receive(buf: Buffer): void {
    let replies: NlReply[];
    try {
      replies = decodeReplies(buf);
    } catch {
      return; // a malformed datagram: its request times out at the caller's level
    }
    for (const r of replies) {
      const w = this.waiting.get(r.seq);
      if (r.kind === 'ack') this.finish(r.seq, undefined);
      else if (r.kind === 'error') {
        const err = new NetlinkError(r.errno, r.extack, w?.what ?? 'netlink');
        if (w) this.finish(r.seq, err);
        else this.batchErrors.set(r.seq, err);
      } else if (r.kind === 'done') {
        if (w && r.interrupted) w.interrupted = true;
        this.finish(r.seq, r.errno > 0 ? new NetlinkError(r.errno, undefined, w?.what ?? 'netlink dump') : undefined);
      } else if (w) {
        w.parts.push(r.message);
        if (r.interrupted) w.interrupted = true;
      }
    }
  }
}

/** One reply from the kernel, classified. */
export type NlReply =
  | { readonly kind: 'ack'; readonly seq: number }
  | { readonly kind: 'error'; readonly seq: number; readonly errno: number; readonly extack: string | undefined }
  | { readonly kind: 'done'; readonly seq: number; readonly errno: number; readonly interrupted: boolean }
  | { readonly kind: 'part'; readonly seq: number; readonly message: NetlinkMessage; readonly interrupted: boolean };

/**
 * Decodes one datagram of replies (pure: what the socket hands over, trusted by nobody). Throws
 * Sub0Error 'invalid-input' for a datagram or an error message too short to read.
 */
export function decodeReplies(buf: Buffer): NlReply[] {
  let msgs: NetlinkMessage[];
  try {
    msgs = parseMessages(buf);
  } catch (e) {
    throw new Sub0Error('invalid-input', `malformed netlink datagram: ${(e as Error).message}`);
  }
  return msgs.map((m): NlReply => {
    const interrupted = (m.flags & NLM_F_DUMP_INTR) !== 0;
    if (m.type === NLMSG_ERROR) {
      if (m.data.length < 4) throw new Sub0Error('invalid-input', `netlink error message of ${m.data.length} bytes`);
      const errno = -m.data.readInt32LE(0);
      return errno === 0 ? { kind: 'ack', seq: m.seq } : { kind: 'error', seq: m.seq, errno, extack: extack(m) };
    }
    if (m.type === NLMSG_DONE) return { kind: 'done', seq: m.seq, errno: m.data.length >= 4 ? -m.data.readInt32LE(0) : 0, interrupted };
    return { kind: 'part', seq: m.seq, message: m, interrupted };
  });
}

function encode(msg: NlMessage, seq: number, flags: number, port: number): Uint8Array {
  const parts = msg.body instanceof Uint8Array ? [msg.body] : msg.body;
  let len = 16;
  for (const p of parts) len += p.length;
  const padded = (len + 3) & ~3;
  const out = Buffer.alloc(padded);
  out.writeUInt32LE(len, 0);
  out.writeUInt16LE(msg.type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq, 8);
  out.writeUInt32LE(port, 12);
  let off = 16;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The kernel's extended-ack message, when it sent one. */
function extack(m: NetlinkMessage): string | undefined {
  if (!(m.flags & NLM_F_ACK_TLVS) || m.data.length < 8) return undefined;
  const origLen = m.data.readUInt32LE(4);
  let off = 4 + (m.flags & NLM_F_CAPPED ? 16 : origLen);
  while (off + 4 <= m.data.length) {
    const len = m.data.readUInt16LE(off);
    const type = m.data.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4) break;
    if (type === NLMSGERR_ATTR_MSG) return m.data.subarray(off + 4, off + len).toString('utf8').replace(/\0+$/, '');
    off += (len + 3) & ~3;
  }
  return undefined;
}
