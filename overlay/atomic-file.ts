/**
 * Replaces a file whole: writes a temporary file beside it, then renames it over the target, so a
 * reader (an agent watching its config, a controller reading its cursor) sees the old content or
 * the new, never half. Creates the parent directory. Used by the agent, the lab and the controller.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * `durable`: the file reaches the disk before the call returns (fsync of the file, then of its
 * directory after the rename): for what a machine must find again after losing power (the last
 * accepted config, the trusted keys), not for what is rewritten every few seconds.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number; durable?: boolean } = {}): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, opts.mode === undefined ? undefined : { mode: opts.mode });
  if (opts.durable) syncPath(tmp);
  renameSync(tmp, path);
  if (opts.durable) syncPath(dir);
}

/** fsync of a file or a directory. */
export function syncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
