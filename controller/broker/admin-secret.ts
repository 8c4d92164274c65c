/**
 * The controller's own broker login secret: 32 random bytes (hex) in its state dir, mode 0600,
 * created on first use. `sub0 mesh status` on the same machine reads it to log in as the
 * controller; nothing else needs it.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';

export function loadOrCreateAdminSecret(path: string): string {
  try {
    const st = statSync(path);
    if ((st.mode & 0o077) !== 0) chmodSync(path, 0o600);
    const text = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) throw new Sub0Error('invalid-input', 'not a broker secret (64 hex digits)', { where: path });
    return text;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const secret = randomBytes(32).toString('hex');
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

/** The secret if it exists (for `sub0 mesh status`), else a clear error. */
export function readAdminSecret(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new Sub0Error('not-found', 'no controller broker secret here: run this where the controller runs (or pass --state-dir)', { cause: e, where: path });
  }
}
