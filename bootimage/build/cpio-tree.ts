/**
 * Collects the entries of an initramfs from files on the build host (cpio.ts writes them): each
 * parent directory once, files with their bytes and a mode from their exec bit unless given,
 * whole trees walked in a stable order. Shared by the node image and the test slot image.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CpioEntry } from './cpio.js';

export class CpioTree {
  readonly entries: CpioEntry[] = [];
  private readonly dirs = new Set<string>();

  /** The directory and its missing parents. */
  dir(path: string): void {
    for (let d = path; d && d !== '.' && !this.dirs.has(d); d = dirname(d)) {
      this.dirs.add(d);
      this.entries.push({ path: d, type: 'dir' });
    }
  }

  file(path: string, from: string, mode?: number): void {
    this.dir(dirname(path));
    const st = statSync(from);
    this.entries.push({ path, type: 'file', mode: mode ?? (st.mode & 0o111 ? 0o755 : 0o644), data: readFileSync(from) });
  }

  text(path: string, body: string, mode = 0o644): void {
    this.dir(dirname(path));
    this.entries.push({ path, type: 'file', mode, data: Buffer.from(body) });
  }

  symlink(path: string, target: string): void {
    this.dir(dirname(path));
    this.entries.push({ path, type: 'symlink', target });
  }

  char(path: string, mode: number, major: number, minor: number): void {
    this.dir(dirname(path));
    this.entries.push({ path, type: 'char', mode, major, minor });
  }

  /** Everything under `from`, placed under `into`, where `keep` says so (by path relative to `from`). */
  tree(into: string, from: string, keep: (rel: string) => boolean = () => true): void {
    for (const rel of (readdirSync(from, { recursive: true }) as string[]).sort()) {
      if (!keep(rel)) continue;
      const abs = join(from, rel);
      const st = lstatSync(abs);
      const path = join(into, rel);
      if (st.isDirectory()) this.dir(path);
      else if (st.isSymbolicLink()) this.symlink(path, readlinkSync(abs));
      else this.file(path, abs);
    }
  }
}
