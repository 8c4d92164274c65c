/**
 * The node's content-addressed store of slot images. A slot image is a tar holding `vmlinuz` (a
 * Linux kernel) and `initrd.img` (its initramfs), named on chain by its SHA-256
 * (fabric/slot-image-ref.ts). An image is used only after its bytes hash to the name: checked
 * when first used and again whenever the file changes; unpacked beside it.
 *
 *   <dir>/<sha256 hex>        the image as added
 *   <dir>/<sha256 hex>.d/     its kernel and initramfs, unpacked once checked
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';
import { imageDigest, imageRef } from '../../fabric/slot-image-ref.js';
import { run } from '../acl/exec.js';

export const IMAGE_MEMBERS = { kernel: 'vmlinuz', initrd: 'initrd.img' } as const;
const UNPACK_TIMEOUT_MS = 60_000;

export interface BootFiles {
  readonly kernel: string;
  readonly initrd: string;
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export class ImageStore {
  /** Files found to hash right, by path, with the size and mtime they had then. */
  private readonly checked = new Map<string, string>();

  constructor(readonly dir: string) {}

  /** Adds an image file to the store (a copy), and gives its ref. */
  async add(file: string): Promise<string> {
    const hex = await sha256File(file);
    mkdirSync(this.dir, { recursive: true });
    const dest = join(this.dir, hex);
    if (!existsSync(dest)) {
      const tmp = `${dest}.${process.pid}.tmp`;
      await copyFile(file, tmp);
      renameSync(tmp, dest);
    }
    return imageRef(hex);
  }

  /** The kernel and initramfs of image `ref`; Sub0Error naming what is wrong otherwise. */
  async boot(ref: string): Promise<BootFiles> {
    const hex = imageDigest(ref);
    if (!hex) throw new Sub0Error('invalid-input', `image "${ref}" is not a content reference (sha256- and 43 base64url characters)`);
    const file = join(this.dir, hex);
    if (!existsSync(file)) throw new Sub0Error('not-found', `image ${ref} is not in this node's store (${this.dir})`);
    const st = statSync(file);
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    const unpacked = join(this.dir, `${hex}.d`);
    if (this.checked.get(file) !== stamp) {
      const got = await sha256File(file);
      if (got !== hex) {
        rmSync(unpacked, { recursive: true, force: true });
        throw new Sub0Error('invalid-input', `image ${ref}: its file hashes to sha256 ${got}, not the ${hex} the chain names; refused`);
      }
      rmSync(unpacked, { recursive: true, force: true });
      await this.unpack(file, unpacked, ref);
      this.checked.set(file, stamp);
    }
    return { kernel: join(unpacked, IMAGE_MEMBERS.kernel), initrd: join(unpacked, IMAGE_MEMBERS.initrd) };
  }

  private async unpack(file: string, into: string, ref: string): Promise<void> {
    const tmp = `${into}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      // Only the two members, never owners or modes from the archive.
      const r = await run('tar', ['-x', '-f', file, '-C', tmp, '--no-same-owner', '--no-same-permissions', IMAGE_MEMBERS.kernel, IMAGE_MEMBERS.initrd], undefined, UNPACK_TIMEOUT_MS);
      if (r.code !== 0) throw new Sub0Error('invalid-input', `image ${ref} is not a tar holding ${IMAGE_MEMBERS.kernel} and ${IMAGE_MEMBERS.initrd}: ${r.stderr.trim() || `tar exit ${r.code}`}`);
      for (const m of Object.values(IMAGE_MEMBERS)) {
        const p = join(tmp, m);
        if (!existsSync(p) || !lstatSync(p).isFile()) throw new Sub0Error('invalid-input', `image ${ref}: ${m} is not a regular file`);
      }
      renameSync(tmp, into);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
}
