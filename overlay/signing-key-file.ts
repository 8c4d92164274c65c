/**
 * An ed25519 key on disk (the controller's signing key, a node's identity key): 64 hex digits,
 * mode 0600, created on first use.
 * Like ssh, a key file that others can read is refused rather than used.
 */
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { Sub0Error } from '../fabric/errors.js';
import { generateSigningKey, signingKeyFromSecret, type SigningKey } from '../fabric/signing.js';

export function loadOrCreateSigningKey(path: string): { key: SigningKey; created: boolean } {
  let text: string;
  try {
    const st = statSync(path);
    if ((st.mode & 0o077) !== 0) throw new Sub0Error('permission', `signing key is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`, { where: path });
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    const key = generateSigningKey();
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, `${bytesToHex(key.secretKey)}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
    return { key, created: true };
  }
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Sub0Error('invalid-input', 'not an ed25519 secret key (64 hex digits)', { where: path });
  return { key: signingKeyFromSecret(text), created: false };
}
