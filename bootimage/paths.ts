/**
 * Where the image's sources are (inputs.json, init/): found by walking up from this module, so
 * that the same code works from the TypeScript tree and from the dist/ bundle beside it.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function projectRoot(): string {
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    if (existsSync(join(d, 'bootimage/inputs.json'))) return d;
    if (dirname(d) === d) throw new Error('cannot find the sub0 checkout (bootimage/inputs.json) above this program');
  }
}

export const bootimagePath = (...parts: string[]) => join(projectRoot(), 'bootimage', ...parts);

/** Where downloaded inputs are kept between builds (env SUB0_IMAGE_CACHE). */
export const defaultImageCache = (): string =>
  process.env.SUB0_IMAGE_CACHE ?? (process.getuid?.() === 0 ? '/var/cache/sub0/image' : join(homedir(), '.cache/sub0/image'));
