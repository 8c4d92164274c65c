/**
 * The node's WireGuard identity: an x25519 private key generated on the node, stored 0600 in the
 * agent's state dir, never sent anywhere (only its public key is registered on chain). Keys are
 * base64 on disk and on chain (as `wg genkey` / `wg pubkey` print them) and hex on the UAPI wire.
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { chmodSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';

export const PRIVATE_KEY_FILE = 'wg-private.key';

/** A fresh private key, clamped as `wg genkey` clamps it (RFC 7748). */
export function generatePrivateKey(): Uint8Array {
  const k = x25519.utils.randomSecretKey();
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  return k;
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(privateKey);
}

export function keyToBase64(key: Uint8Array): string {
  return Buffer.from(key).toString('base64');
}

export function keyFromBase64(text: string, what = 'key'): Uint8Array {
  const b = Buffer.from(text.trim(), 'base64');
  if (b.length !== 32 || b.toString('base64') !== text.trim()) throw new Sub0Error('invalid-input', `${what} is not base64 of 32 bytes`);
  return new Uint8Array(b);
}

export function base64ToHex(b64: string): string {
  return Buffer.from(keyFromBase64(b64)).toString('hex');
}

export function hexToBase64(hex: string): string {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Sub0Error('invalid-input', `not a 32-byte hex key: "${hex.slice(0, 16)}…"`);
  return Buffer.from(hex, 'hex').toString('base64');
}

export interface NodeKey {
  readonly privateKey: Uint8Array;
  /** base64, what goes on chain as the node's wgPublicKey */
  readonly publicKey: string;
  readonly path: string;
  readonly created: boolean;
}

/**
 * Loads the private key from `stateDir`, creating it (0600, atomically) on first use. Idempotent:
 * the same dir always yields the same key. A key file readable by group or others is tightened to
 * 0600 rather than refused (it was ours), but a malformed one is refused: replacing it would
 * silently change the node's identity.
 */
export function loadOrCreateNodeKey(stateDir: string): NodeKey {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, PRIVATE_KEY_FILE);
  let created = false;
  let text: string;
  try {
    const fd = openSync(path, 'r');
    try {
      if ((fstatSync(fd).mode & 0o077) !== 0) chmodSync(path, 0o600);
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Sub0Error('driver', `cannot read the node key`, { cause: e, where: path });
    text = `${keyToBase64(generatePrivateKey())}\n`;
    const tmp = `${path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    created = true;
  }
  const privateKey = keyFromBase64(text, `private key in ${path}`);
  return { privateKey, publicKey: keyToBase64(publicKeyOf(privateKey)), path, created };
}
