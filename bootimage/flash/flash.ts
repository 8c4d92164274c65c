/**
 * `sub0 image flash`: writes usb.img to a stick, as carefully as a tool that can wipe a disk must.
 * Only removable disks are accepted; a mounted one (or one with a mounted partition) and the disk
 * the system runs from are refused, unless forced; nothing is ever preselected; what is about to be
 * erased (model, serial, size) is shown and confirmed; the device is checked to be the same one
 * right before writing; the write shows progress, is synced, read back and compared.
 *
 * The decision (targetProblems) is pure, over lsblk's view: tested without any real disk at risk.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { Sub0Error } from '../../fabric/errors.js';
import { runOk } from '../../overlay/acl/exec.js';

export interface BlockDevice {
  readonly path: string;
  readonly removable: boolean;
  readonly bytes: number;
  readonly model: string | null;
  readonly serial: string | null;
  readonly transport: string | null;
  readonly majMin: string;
  /** Mount points of the disk and of every partition on it. */
  readonly mounts: readonly string[];
}

interface LsblkNode {
  path: string;
  rm: boolean | string;
  size: number | string;
  model: string | null;
  serial: string | null;
  tran: string | null;
  type: string;
  'maj:min': string;
  mountpoints?: (string | null)[];
  children?: LsblkNode[];
}

/** Whole disks as lsblk sees them, with the mounts of their partitions. */
export function disksOf(lsblkJson: string): BlockDevice[] {
  const { blockdevices } = JSON.parse(lsblkJson) as { blockdevices: LsblkNode[] };
  const mountsOf = (n: LsblkNode): string[] => [...(n.mountpoints ?? []).filter((m): m is string => !!m), ...(n.children ?? []).flatMap(mountsOf)];
  return blockdevices
    .filter((d) => d.type === 'disk' || d.type === 'loop')
    .map((d) => ({
      path: d.path,
      removable: d.rm === true || d.rm === '1',
      bytes: Number(d.size),
      model: d.model?.trim() || null,
      serial: d.serial?.trim() || null,
      transport: d.tran,
      majMin: d['maj:min'],
      mounts: mountsOf(d),
    }));
}

export async function listDisks(): Promise<BlockDevice[]> {
  return disksOf(await runOk('lsblk', ['-J', '-b', '-o', 'NAME,PATH,RM,SIZE,MODEL,SERIAL,TRAN,TYPE,MAJ:MIN,MOUNTPOINTS']));
}

/** The disk holding `/` (through any partition), by its path. */
export async function systemDisk(): Promise<string | undefined> {
  const source = (await runOk('findmnt', ['-n', '-o', 'SOURCE', '/'])).trim();
  if (!source.startsWith('/dev/')) return undefined;
  const parent = (await runOk('lsblk', ['-n', '-d', '-o', 'PKNAME', source]).catch(() => '')).trim();
  return parent ? `/dev/${parent}` : source;
}

/** What forbids writing to `d` (empty: nothing); `force` lifts the removable, mounted and system-disk checks. */
export function targetProblems(d: BlockDevice, imageBytes: number, system: string | undefined, force: boolean): string[] {
  const problems: string[] = [];
  if (d.bytes < imageBytes) problems.push(`${d.path} holds ${d.bytes} bytes, the image needs ${imageBytes}`);
  if (force) return problems;
  if (!d.removable) problems.push(`${d.path} is not a removable device (--force to write it anyway)`);
  if (d.mounts.length > 0) problems.push(`${d.path} is mounted at ${d.mounts.join(', ')}: unmount it first (or --force)`);
  if (system && d.path === system) problems.push(`${d.path} is the disk this system runs from (--force to overwrite it)`);
  return problems;
}

export function describe(d: BlockDevice): string {
  return `${d.path}  ${(d.bytes / 1e9).toFixed(1)} GB  ${d.model ?? 'unknown model'}  serial ${d.serial ?? 'unknown'}${d.transport ? `  (${d.transport})` : ''}${d.removable ? '  removable' : ''}`;
}

const CHUNK = 4 * 1024 * 1024;

/**
 * Writes `image` to `device` from offset 0, syncs, reads it back and compares sha256. `same`
 * is called right before the first write: it must confirm the device is still the one chosen.
 */
export async function writeImage(image: string, device: string, same: () => Promise<void>, progress: (done: number, total: number) => void): Promise<string> {
  const total = statSync(image).size;
  const src = openSync(image, 'r');
  const want = createHash('sha256');
  try {
    await same();
    const dst = openSync(device, 'r+');
    try {
      if (!fstatSync(dst).isBlockDevice() && !fstatSync(dst).isFile()) throw new Sub0Error('invalid-input', `${device} is neither a block device nor a file`);
      const buf = Buffer.alloc(CHUNK);
      for (let at = 0; at < total; ) {
        const n = readSync(src, buf, 0, Math.min(CHUNK, total - at), at);
        want.update(buf.subarray(0, n));
        writeSync(dst, buf, 0, n, at);
        at += n;
        progress(at, total);
        await new Promise((r) => setImmediate(r));
      }
      fsyncSync(dst);
    } finally {
      closeSync(dst);
    }
  } finally {
    closeSync(src);
  }
  const expected = want.digest('hex');
  // Read back through a fresh descriptor after the sync (the page cache was flushed to the device).
  const got = createHash('sha256');
  const back = openSync(device, 'r');
  try {
    const buf = Buffer.alloc(CHUNK);
    for (let at = 0; at < total; ) {
      const n = readSync(back, buf, 0, Math.min(CHUNK, total - at), at);
      if (n === 0) break;
      got.update(buf.subarray(0, n));
      at += n;
    }
  } finally {
    closeSync(back);
  }
  const read = got.digest('hex');
  if (read !== expected) throw new Sub0Error('driver', `read back from ${device}: sha256 ${read}, written ${expected}: the stick may be faulty`);
  return expected;
}
