/**
 * Where signed configs come from: the node's retained topic at a broker (mqtt-channel.ts), or a
 * signed envelope file the agent watches (`sub0 agent --config`; tests and air-gapped sites;
 * replace it atomically, by rename). A source only delivers bytes: the ConfigGate decides what is
 * accepted.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/** A source that cannot read what it should (undefined: it reads again). */
export type SourceProblem = { readonly source: string; readonly code: string; readonly message: string } | undefined;

export interface ConfigSource {
  /**
   * Starts delivering envelopes; the current one (if any) is delivered once at start. `problem`
   * hears when the source cannot read (once per cause, not at every attempt) and when it can again.
   */
  start(deliver: (wire: Uint8Array, source: string) => void, problem?: (p: SourceProblem) => void): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Watches the file's directory (a rename replaces the inode, which a watch on the file itself
 * would lose), and also polls, since inotify can miss events on some filesystems. A file whose
 * inode, size and mtime are those of the last read is not read again (the poll costs a stat, not
 * a read of a config that may be megabytes); a read that yields the same bytes as the last
 * delivery is not delivered again. A file that is not there yet is normal (nothing to deliver); one
 * that is there but cannot be read (EACCES, EISDIR, …) is a problem, reported once per cause.
 */
export class SignedFileSource implements ConfigSource {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private last: Buffer | undefined;
  /** inode, size and mtime (ns) of the file as last read. */
  private lastStat: string | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private deliver: ((wire: Uint8Array, source: string) => void) | undefined;
  private problem: ((p: SourceProblem) => void) | undefined;
  /** The cause reported last ('' when reading works). */
  private failing = '';

  constructor(
    readonly path: string,
    private readonly pollMs = 2000,
  ) {}

  async start(deliver: (wire: Uint8Array, source: string) => void, problem?: (p: SourceProblem) => void): Promise<void> {
    this.deliver = deliver;
    this.problem = problem;
    const name = basename(this.path);
    this.watcher = watch(dirname(this.path), (_event, file) => {
      if (file === null || file === name) this.check();
    });
    this.watcher.on('error', () => undefined); // the poll still runs
    this.poll = setInterval(() => this.check(), this.pollMs);
    this.check();
    await this.reading;
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    clearInterval(this.poll);
    this.deliver = undefined;
    await this.reading;
  }

  private check(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.read().finally(() => {
      this.reading = undefined;
      if (this.again) {
        this.again = false;
        this.check();
      }
    });
  }

  private async read(): Promise<void> {
    let bytes: Buffer;
    try {
      const st = await stat(this.path, { bigint: true });
      const seen = `${st.ino}/${st.size}/${st.mtimeNs}`;
      if (seen === this.lastStat) return;
      bytes = await readFile(this.path);
      this.lastStat = seen;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'ENOENT') return this.report(''); // not there (yet): nothing to deliver
      this.lastStat = undefined; // read again at the next check
      return this.report(code, `cannot read the config file: ${(e as Error).message}`);
    }
    this.report('');
    if (this.last?.equals(bytes)) return;
    this.last = bytes;
    this.deliver?.(new Uint8Array(bytes), this.path);
  }

  private report(code: string, message = ''): void {
    if (code === this.failing) return;
    this.failing = code;
    this.problem?.(code ? { source: this.path, code, message } : undefined);
  }
}
