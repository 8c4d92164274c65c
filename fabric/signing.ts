/**
 * Signed envelopes of NodeConfigs, ed25519 with the controller's key (@noble/curves).
 * The signature covers the exact payload bytes carried in the envelope (as JWS does), so a change
 * of any byte of a message on the wire makes it fail to verify or fail to parse. What is signed is
 * a context string and the sha256 of the payload: verifying a 2 MB config then hashes it once with
 * sha256 instead of twice with ed25519's sha512, and the digest is the config's hash as well.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { z } from 'zod';
import { sha256Bytes } from './digest.js';
import { canonicalJson, encodeConfig } from './encoding.js';
import { Sub0Error } from './errors.js';
import { parseNodeConfig, type NodeConfig } from './node-config.js';

const Hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `must be ${bytes} bytes of lower-case hex`);

export const SignedEnvelope = z.strictObject({
  v: z.literal(1),
  /** The signer's ed25519 public key (hex): which controller key signed it. */
  key: Hex(32),
  /** The canonical JSON of the NodeConfig, exactly as signed. */
  payload: z.string(),
  sig: Hex(64),
});
export type SignedEnvelope = z.output<typeof SignedEnvelope>;

export interface SigningKey {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function generateSigningKey(): SigningKey {
  const secretKey = ed25519.utils.randomSecretKey();
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

export function signingKeyFromSecret(secretHex: string): SigningKey {
  const secretKey = hexToBytes(secretHex);
  if (secretKey.length !== 32) throw new Sub0Error('invalid-input', 'an ed25519 secret key is 32 bytes (64 hex digits)');
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

/** Domain separation: a signature over a NodeConfig can never be replayed as anything else. */
const CONTEXT = utf8ToBytes('sub0/node-config/v1\n');

/** The signed message: context || sha256(payload). */
function signedBytes(digest: Uint8Array): Uint8Array {
  const m = new Uint8Array(CONTEXT.length + digest.length);
  m.set(CONTEXT, 0);
  m.set(digest, CONTEXT.length);
  return m;
}

/** Signs a NodeConfig; returns the envelope's wire bytes. Deterministic (ed25519 is). */
export function signConfig(config: NodeConfig, key: SigningKey): string {
  const payload = encodeConfig(config);
  const sig = ed25519.sign(signedBytes(sha256Bytes(payload)), key.secretKey);
  return canonicalJson({ v: 1, key: bytesToHex(key.publicKey), payload: new TextDecoder().decode(payload), sig: bytesToHex(sig) });
}

/**
 * Parses and verifies an envelope against the trusted controller keys, then parses the NodeConfig
 * it carries. Returns it with the signer's key and its configHash() (the payload's digest, already
 * computed). Throws Sub0Error 'bad-signature' or 'invalid-input'; never returns unverified data.
 */
export function verifyConfig(wire: string | Uint8Array, trusted: readonly Uint8Array[]): { config: NodeConfig; key: string; hash: string } {
  const text = typeof wire === 'string' ? wire : new TextDecoder('utf-8', { fatal: true }).decode(wire);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Sub0Error('invalid-input', 'signed config is not JSON', { cause: e });
  }
  const env = SignedEnvelope.safeParse(raw);
  if (!env.success) throw new Sub0Error('invalid-input', `signed envelope: ${z.prettifyError(env.error)}`);
  const { key, payload, sig } = env.data;
  if (!trusted.some((k) => bytesToHex(k) === key)) throw new Sub0Error('bad-signature', `signed by an untrusted key ${key.slice(0, 16)}…`);
  const digest = sha256Bytes(payload);
  const ok = ed25519.verify(hexToBytes(sig), signedBytes(digest), hexToBytes(key));
  if (!ok) throw new Sub0Error('bad-signature', 'signature does not match the payload');
  // The envelope must be exactly what signConfig emits: no alternative spellings of the same message.
  if (canonicalJson(env.data) !== text) throw new Sub0Error('invalid-input', 'signed envelope is not in canonical form');
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch (e) {
    throw new Sub0Error('invalid-input', 'signed payload is not JSON', { cause: e });
  }
  const parsed = parseNodeConfig(body);
  if (!parsed.success) throw new Sub0Error('invalid-input', `node config: ${z.prettifyError(parsed.error)}`);
  return { config: parsed.data, key, hash: bytesToHex(digest) };
}
