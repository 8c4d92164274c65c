/**
 * Signed envelopes: what sub0 sends over untrusted pipes (files, MQTT brokers). One header line,
 * then the payload exactly as signed:
 *
 *     <magic> <signer key, 64 hex> <signature, 128 hex>\n
 *     <payload bytes>
 *
 * The magic names the kind and its version (`sub0/node-config/v1`, `sub0/node-status/v1`). The
 * ed25519 signature (RFC 8032, through Node's OpenSSL) covers `<magic>\n` and the sha256 of the
 * payload, so a signature over one kind can never be replayed as another, a large payload is
 * hashed once, and that digest doubles as the payload's hash. Changing any byte makes the
 * envelope fail to open. Pure: bytes in, bytes out.
 */
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { sha256Bytes } from './digest.js';
import { Sub0Error } from './errors.js';

export interface SigningKey {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Longer than any valid header: a message without a newline early on is not ours. */
const MAX_HEADER = 256;
const HEADER = /^([a-z0-9/-]{1,64}) ([0-9a-f]{64}) ([0-9a-f]{128})$/;

/** DER wrappers of raw ed25519 keys (RFC 8410): PKCS#8 for the secret, SPKI for the public key. */
const PKCS8 = hexToBytes('302e020100300506032b657004220420');
const SPKI = hexToBytes('302a300506032b6570032100');
const der = (prefix: Uint8Array, raw: Uint8Array) => Buffer.concat([prefix, raw]);
/** KeyObjects are built once per key: building one costs more than the signature itself. */
const privates = new WeakMap<Uint8Array, KeyObject>();
const publics = new Map<string, KeyObject>();
function privateKeyObject(secret: Uint8Array): KeyObject {
  let k = privates.get(secret);
  if (!k) privates.set(secret, (k = createPrivateKey({ key: der(PKCS8, secret), format: 'der', type: 'pkcs8' })));
  return k;
}
function publicKeyObject(pub: Uint8Array): KeyObject {
  const hex = bytesToHex(pub);
  let k = publics.get(hex);
  if (!k) {
    k = createPublicKey({ key: der(SPKI, pub), format: 'der', type: 'spki' });
    if (publics.size > 10_000) publics.clear(); // bounded: one entry per trusted or registered key
    publics.set(hex, k);
  }
  return k;
}

function fromSecret(secretKey: Uint8Array): SigningKey {
  const spki = createPublicKey(privateKeyObject(secretKey)).export({ format: 'der', type: 'spki' });
  return { secretKey, publicKey: new Uint8Array(spki.subarray(SPKI.length)) };
}

export function generateSigningKey(): SigningKey {
  return fromSecret(new Uint8Array(randomBytes(32)));
}

export function signingKeyFromSecret(secretHex: string): SigningKey {
  const secretKey = /^[0-9a-f]{64}$/.test(secretHex) ? hexToBytes(secretHex) : new Uint8Array(0);
  if (secretKey.length !== 32) throw new Sub0Error('invalid-input', 'an ed25519 secret key is 32 bytes (64 hex digits)');
  return fromSecret(secretKey);
}

/** ed25519 over arbitrary bytes (for logins and other short messages). */
export function signBytes(message: Uint8Array, key: SigningKey): Uint8Array {
  return new Uint8Array(sign(null, message, privateKeyObject(key.secretKey)));
}

export function verifyBytes(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return verify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}

/** The signed message: magic, newline, sha256(payload). */
function signedBytes(magic: string, digest: Uint8Array): Uint8Array {
  return Buffer.concat([utf8ToBytes(`${magic}\n`), digest]);
}

/** Seals a payload; returns the envelope's wire bytes. Deterministic (ed25519 is). */
export function seal(magic: string, payload: Uint8Array, key: SigningKey): Uint8Array {
  return sealDigest(magic, payload, key).wire;
}

/** seal(), with the payload's sha256 (hex) it computed: the hash a verifier will report. */
export function sealDigest(magic: string, payload: Uint8Array, key: SigningKey): { wire: Uint8Array; hash: string } {
  const digest = sha256Bytes(payload);
  const sig = sign(null, signedBytes(magic, digest), privateKeyObject(key.secretKey));
  const header = utf8ToBytes(`${magic} ${bytesToHex(key.publicKey)} ${bytesToHex(sig)}\n`);
  const wire = new Uint8Array(header.length + payload.length);
  wire.set(header, 0);
  wire.set(payload, header.length);
  return { wire, hash: bytesToHex(digest) };
}

export interface Opened {
  /** The payload bytes, verified. */
  readonly payload: Uint8Array;
  /** The signer's public key, hex. */
  readonly key: string;
  /** sha256 of the payload, hex. */
  readonly hash: string;
}

/**
 * Opens an envelope of kind `magic`: the signer must be one of `trusted` (hex public keys, or a
 * predicate), and the signature must match. Throws Sub0Error 'invalid-input' (not an envelope of
 * this kind) or 'bad-signature'; never returns unverified bytes.
 */
export function open(magic: string, wire: string | Uint8Array, trusted: readonly Uint8Array[] | ((keyHex: string) => boolean)): Opened {
  const bytes = typeof wire === 'string' ? utf8ToBytes(wire) : wire;
  const nl = bytes.subarray(0, MAX_HEADER).indexOf(0x0a);
  const m = nl < 0 ? null : HEADER.exec(String.fromCharCode(...bytes.subarray(0, nl)));
  if (!m || m[1] !== magic) throw new Sub0Error('invalid-input', `not a signed ${kindName(magic)}: the first line must be "${magic} <key hex> <signature hex>"`);
  const [, , key, sig] = m as unknown as [string, string, string, string];
  const ok = typeof trusted === 'function' ? trusted(key) : trusted.some((k) => bytesToHex(k) === key);
  if (!ok) throw new Sub0Error('bad-signature', `signed by an untrusted key ${key.slice(0, 16)}…`);
  const payload = bytes.subarray(nl + 1);
  const digest = sha256Bytes(payload);
  if (!verify(null, signedBytes(magic, digest), publicKeyObject(hexToBytes(key)), hexToBytes(sig))) throw new Sub0Error('bad-signature', 'signature does not match the payload');
  return { payload, key, hash: bytesToHex(digest) };
}

/** The signer named in an envelope's header, unverified (to pick the key to check it with). */
export function claimedSigner(magic: string, wire: Uint8Array): string | undefined {
  const nl = wire.subarray(0, MAX_HEADER).indexOf(0x0a);
  const m = nl < 0 ? null : HEADER.exec(String.fromCharCode(...wire.subarray(0, nl)));
  return m && m[1] === magic ? m[2] : undefined;
}

function kindName(magic: string): string {
  return magic.split('/')[1]?.replace('-', ' ') ?? magic;
}
