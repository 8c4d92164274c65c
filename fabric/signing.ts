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
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { isAscii, isUtf8 } from 'node:buffer';
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { sha256Bytes } from './digest.js';
import { encodeConfig } from './encoding.js';
import { Sub0Error } from './errors.js';
import { parseNodeConfig, type NodeConfig } from './node-config.js';

const MAGIC = 'sub0/node-config/v1';
const HEADER = /^sub0\/node-config\/v1 ([0-9a-f]{64}) ([0-9a-f]{128})$/;
/** Longer than any valid header: a message without a newline early on is not ours. */
const MAX_HEADER = 256;

export interface SigningKey {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** DER wrappers of raw ed25519 keys (RFC 8410): PKCS#8 for the secret, SPKI for the public key. */
const PKCS8 = hexToBytes('302e020100300506032b657004220420');
const SPKI = hexToBytes('302a300506032b6570032100');
const der = (prefix: Uint8Array, raw: Uint8Array) => Buffer.concat([prefix, raw]);
const privateKeyObject = (secret: Uint8Array): KeyObject => createPrivateKey({ key: der(PKCS8, secret), format: 'der', type: 'pkcs8' });
const publicKeyObject = (pub: Uint8Array): KeyObject => createPublicKey({ key: der(SPKI, pub), format: 'der', type: 'spki' });

function fromSecret(secretKey: Uint8Array): SigningKey {
  const spki = createPublicKey(privateKeyObject(secretKey)).export({ format: 'der', type: 'spki' });
  return { secretKey, publicKey: new Uint8Array(spki.subarray(SPKI.length)) };
}

export function generateSigningKey(): SigningKey {
  return fromSecret(new Uint8Array(randomBytes(32)));
}

export function signingKeyFromSecret(secretHex: string): SigningKey {
  const secretKey = hexToBytes(secretHex);
  if (secretKey.length !== 32) throw new Sub0Error('invalid-input', 'an ed25519 secret key is 32 bytes (64 hex digits)');
  return fromSecret(secretKey);
}

/** Domain separation: a signature over a NodeConfig can never be replayed as anything else. */
const CONTEXT = utf8ToBytes(`${MAGIC}\n`);

/** The signed message: context || sha256(payload). */
function signedBytes(digest: Uint8Array): Uint8Array {
  const m = new Uint8Array(CONTEXT.length + digest.length);
  m.set(CONTEXT, 0);
  m.set(digest, CONTEXT.length);
  return m;
}

/**
 * Signs a NodeConfig; returns the message's wire bytes. Deterministic (ed25519 is). Bytes, not a
 * string: a megabyte-long concatenated string costs ~20 ms to flatten and encode at every write.
 */
export function signConfig(config: NodeConfig, key: SigningKey): Uint8Array {
  const payload = encodeConfig(config);
  const sig = sign(null, signedBytes(sha256Bytes(payload)), privateKeyObject(key.secretKey));
  const header = utf8ToBytes(`${MAGIC} ${bytesToHex(key.publicKey)} ${bytesToHex(sig)}\n`);
  const wire = new Uint8Array(header.length + payload.length);
  wire.set(header, 0);
  wire.set(payload, header.length);
  return wire;
}

/**
 * The payload as text, refusing anything that is not UTF-8. Canonical JSON of a config is ASCII
 * but for non-ASCII image names: ASCII is checked and decoded as Latin-1 (~0.2 ms for 2 MB, where
 * a fatal TextDecoder takes ~7 ms); anything else is validated, then decoded as UTF-8.
 */
function payloadText(payload: Uint8Array): string {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (isAscii(b)) return b.toString('latin1');
  if (!isUtf8(b)) throw new Sub0Error('invalid-input', 'signed payload is not UTF-8');
  return b.toString('utf8');
}

/**
 * Verifies a signed message against the trusted controller keys, then parses the NodeConfig it
 * carries. Returns it with the signer's key and its configHash() (the payload's digest, already
 * computed). Throws Sub0Error 'bad-signature' or 'invalid-input'; never returns unverified data.
 */
export function verifyConfig(wire: string | Uint8Array, trusted: readonly Uint8Array[]): { config: NodeConfig; key: string; hash: string } {
  const bytes = typeof wire === 'string' ? utf8ToBytes(wire) : wire;
  const nl = bytes.subarray(0, MAX_HEADER).indexOf(0x0a);
  const m = nl < 0 ? null : HEADER.exec(String.fromCharCode(...bytes.subarray(0, nl)));
  if (!m) throw new Sub0Error('invalid-input', `not a signed config: the first line must be "${MAGIC} <key hex> <signature hex>"`);
  const [, key, sig] = m as unknown as [string, string, string];
  if (!trusted.some((k) => bytesToHex(k) === key)) throw new Sub0Error('bad-signature', `signed by an untrusted key ${key.slice(0, 16)}…`);
  const payload = bytes.subarray(nl + 1);
  const digest = sha256Bytes(payload);
  if (!verify(null, signedBytes(digest), publicKeyObject(hexToBytes(key)), hexToBytes(sig))) throw new Sub0Error('bad-signature', 'signature does not match the payload');
  const text = payloadText(payload);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new Sub0Error('invalid-input', 'signed payload is not JSON', { cause: e });
  }
  const parsed = parseNodeConfig(body);
  if (!parsed.success) throw new Sub0Error('invalid-input', `node config: ${z.prettifyError(parsed.error)}`);
  return { config: parsed.data, key, hash: bytesToHex(digest) };
}
