/**
 * Signed NodeConfigs, ed25519 (RFC 8032) with the controller's key. The wire form is one
 * header line, then the canonical JSON of the config exactly as signed:
 *
 *     sub0/node-config/v1 <signer key, 64 hex> <signature, 128 hex>\n
 *     {"acl":[…],…}
 *
 * The signature covers the exact payload bytes that follow (as JWS does, without re-encoding
 * them): a context string and their sha256, which is also the config's hash, so verifying a 2 MB
 * config hashes it once and parses it once. The payload is plain JSON (`tail -n +2 | jq`), and
 * changing any byte of a message makes it fail to verify or to parse.
 *
 * ed25519 through Node's crypto (OpenSSL): no I/O, and ~0.5 ms per verify from the first call on,
 * where a pure-JS implementation costs 10-20 ms until the JIT has warmed up (an agent verifies a
 * config every now and then, never warm) and ~1 ms per signature at 10,000 nodes per block.
 * Keys stay raw 32-byte strings (as stored and shown); the tests check signatures against
 * @noble/curves, an independent implementation.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import * as z from 'zod';
import { encodeConfig } from './encoding.js';
import { open, seal, sealDigest, type SigningKey } from './envelope.js';
import { Sub0Error } from './errors.js';
import { parseNodeConfig, type NodeConfig } from './node-config.js';

export { generateSigningKey, signingKeyFromSecret, type SigningKey } from './envelope.js';

export const CONFIG_MAGIC = 'sub0/node-config/v1';

/**
 * Signs a NodeConfig; returns the message's wire bytes. Deterministic (ed25519 is). Bytes, not a
 * string: a megabyte-long concatenated string costs ~20 ms to flatten and encode at every write.
 */
export function signConfig(config: NodeConfig, key: SigningKey): Uint8Array {
  return seal(CONFIG_MAGIC, encodeConfig(config), key);
}

/** signConfig for a config already encoded (encodeConfig): no second canonicalization; with its configHash. */
export function sealConfig(encoded: Uint8Array, key: SigningKey): { wire: Uint8Array; hash: string } {
  return sealDigest(CONFIG_MAGIC, encoded, key);
}

/**
 * The payload as text, refusing anything that is not UTF-8. Canonical JSON of a config is ASCII
 * but for non-ASCII image names: ASCII is checked and decoded as Latin-1 (~0.2 ms for 2 MB, where
 * a fatal TextDecoder takes ~7 ms); anything else is validated, then decoded as UTF-8.
 */
export function payloadText(payload: Uint8Array): string {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (isAscii(b)) return b.toString('latin1');
  if (!isUtf8(b)) throw new Sub0Error('invalid-input', 'signed payload is not UTF-8');
  return b.toString('utf8');
}

/** Parses a verified payload as JSON. */
export function payloadJson(payload: Uint8Array): unknown {
  try {
    return JSON.parse(payloadText(payload));
  } catch (e) {
    if (e instanceof Sub0Error) throw e;
    throw new Sub0Error('invalid-input', 'signed payload is not JSON', { cause: e });
  }
}

/**
 * Verifies a signed message against the trusted controller keys, then parses the NodeConfig it
 * carries. Returns it with the signer's key and its configHash() (the payload's digest, already
 * computed). Throws Sub0Error 'bad-signature' or 'invalid-input'; never returns unverified data.
 */
export function verifyConfig(wire: string | Uint8Array, trusted: readonly Uint8Array[]): { config: NodeConfig; key: string; hash: string } {
  const { payload, key, hash } = open(CONFIG_MAGIC, wire, trusted);
  const parsed = parseNodeConfig(payloadJson(payload));
  if (!parsed.success) throw new Sub0Error('invalid-input', `node config: ${z.prettifyError(parsed.error)}`);
  return { config: parsed.data, key, hash };
}
