/**
 * A newc ("070701") cpio archive, the format the kernel unpacks as its initramfs, written from a
 * list of entries: sorted by path, owner root, one fixed mtime, inode numbers in order. The same
 * tree gives the same bytes, whatever the machine or the build's time. Device nodes are written
 * as such (no mknod, no root needed on the build host).
 */
export type CpioEntry =
  | { readonly path: string; readonly type: 'dir'; readonly mode?: number }
  | { readonly path: string; readonly type: 'file'; readonly mode: number; readonly data: Uint8Array }
  | { readonly path: string; readonly type: 'symlink'; readonly target: string }
  | { readonly path: string; readonly type: 'char'; readonly mode: number; readonly major: number; readonly minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** The archive's chunks (concatenate or stream them). Paths are relative, without a leading slash. */
export function cpioChunks(entries: readonly CpioEntry[], mtime: number): Buffer[] {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) if (sorted[i]!.path === sorted[i - 1]!.path) throw new Error(`initramfs: ${sorted[i]!.path} is listed twice`);
  const out: Buffer[] = [];
  let ino = 1;
  const put = (path: string, mode: number, data: Uint8Array, major = 0, minor = 0) => {
    const name = Buffer.from(`${path}\0`);
    const fields = [ino++, mode, 0, 0, mode & S_IFDIR ? 2 : 1, mtime, data.length, 0, 0, major, minor, name.length, 0];
    out.push(Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii'), name, Buffer.alloc(pad4(110 + name.length)));
    if (data.length > 0) out.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(pad4(data.length)));
  };
  for (const e of sorted) {
    if (e.path.startsWith('/') || e.path.split('/').includes('..')) throw new Error(`initramfs: bad path ${e.path}`);
    switch (e.type) {
      case 'dir':
        put(e.path, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(0));
        break;
      case 'file':
        put(e.path, S_IFREG | e.mode, e.data);
        break;
      case 'symlink':
        put(e.path, S_IFLNK | 0o777, Buffer.from(e.target));
        break;
      case 'char':
        put(e.path, S_IFCHR | e.mode, new Uint8Array(0), e.major, e.minor);
        break;
    }
  }
  ino = 0;
  put('TRAILER!!!', 0, new Uint8Array(0));
  return out;
}
