/**
 * A slot's out-of-band console (its second serial port, `ops.sock` in the slot's directory) as a
 * client: the lab's test image runs a shell there (bootimage/slot-guest/init.sh), so the lab and
 * the tests make traffic from inside a slot by typing commands. Each command's output is framed by
 * markers the shell prints, so the answer is its output and exit code, not a guess from timing.
 * QEMU serves one client at a time on the socket: close() when done.
 */
import { connect, type Socket } from 'node:net';
import { Sub0Error } from '../fabric/errors.js';

/** Terminal escapes a line-editing shell writes around what it echoes. */
const ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]/g;

export interface ConsoleAnswer {
  readonly code: number;
  /** What the command printed, with "\n" line ends. */
  readonly output: string;
}

export class OpsConsole {
  private buf = '';
  private n = 0;
  private readonly waiters = new Set<() => void>();
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      // Only the tail matters: a chatty guest must not grow this without bound.
      if (this.buf.length > 1 << 20) this.buf = this.buf.slice(-(1 << 19));
      for (const w of [...this.waiters]) w();
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of [...this.waiters]) w();
    });
    sock.on('error', () => undefined);
  }

  static open(path: string, timeoutMs = 5000): Promise<OpsConsole> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Sub0Error('timeout', `the console ${path} did not accept within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(new OpsConsole(s));
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(new Sub0Error('not-found', `cannot open the console ${path}: ${e.message}`));
      });
    });
  }

  /** Waits for `test` on the buffer; rejects after `timeoutMs` or when the console closes. */
  private until<T>(test: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        f();
      };
      const timer = setTimeout(() => done(() => reject(new Sub0Error('timeout', `${what} within ${timeoutMs} ms; console:\n${this.tail()}`))), timeoutMs);
      const check = () => {
        const r = test();
        if (r !== undefined) done(() => resolve(r));
        else if (this.closed) done(() => reject(new Sub0Error('driver', `the console closed before ${what}; console:\n${this.tail()}`)));
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves once the guest's shell shows its prompt (it may start after the console opens). */
  async ready(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const from = this.buf.length;
      this.sock.write('\n');
      const left = end - Date.now();
      const ok = await this.until(() => (/# $/.test(this.buf.slice(from).replace(ESCAPES, '')) ? true : undefined), Math.min(2000, Math.max(left, 1)), 'a prompt').catch((e: unknown) => {
        if (this.closed || Date.now() >= end) throw e;
        return false;
      });
      if (ok) return;
    }
  }

  /** Runs `cmd` in the guest's shell; resolves with its exit code and output. */
  async run(cmd: string, timeoutMs = 30_000): Promise<ConsoleAnswer> {
    const tag = `S0${process.pid}N${++this.n}`;
    const from = this.buf.length;
    // The markers are printed by the shell, so the typed (echoed) line never matches them: there
    // they are followed by a quote, here by a line end.
    this.sock.write(`echo '${tag}B'; ${cmd}; echo "${tag}E $?"\n`);
    const re = new RegExp(`(?:^|\\n)${tag}B\\r?\\n([\\s\\S]*?)(?:\\r?\\n)?${tag}E (\\d+)\\r?\\n`);
    const m = await this.until(() => re.exec(this.buf.slice(from).replace(ESCAPES, '')) ?? undefined, timeoutMs, `an answer to "${cmd}"`);
    return { code: Number(m[2]), output: m[1]!.replace(/\r\n/g, '\n') };
  }

  private tail(): string {
    return this.buf.slice(-600).replace(ESCAPES, '');
  }

  close(): void {
    this.sock.destroy();
  }
}
