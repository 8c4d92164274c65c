/**
 * Replaces a file whole: writes a temporary file beside it, then renames it over the target, so a
 * reader (an agent watching its config, a controller reading its cursor) sees the old content or
 * the new, never half. Creates the parent directory. Used by the agent, the lab and the controller.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, opts.mode === undefined ? undefined : { mode: opts.mode });
  renameSync(tmp, path);
}
