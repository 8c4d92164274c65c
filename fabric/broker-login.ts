/**
 * How a node logs in to its DVCI's MQTT broker. Username: the node id. Password: 32 bytes (hex)
 * that only two parties can compute, the node (from its identity secret key) and the controller
 * that runs the broker (from its signing secret key): an X25519 agreement between the two ed25519
 * keys (each mapped to Curve25519, as libsodium's crypto_sign_ed25519_*_to_curve25519 do), through
 * HKDF-SHA256 bound to the network, the node and both public keys.
 *
 * So nothing secret is ever sent or stored anywhere else: the node holds its key, the controller
 * derives the password from the identity key the chain registered for the node (and writes only a
 * PBKDF2 hash of it for Mosquitto, or compares it for the embedded broker), and no other node can
 * compute it. A node the chain does not know, or registered with another identity key, cannot log
 * in. Pure.
 */
import { createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { Sub0Error } from './errors.js';
import type { SigningKey } from './envelope.js';

/** The broker login of the controller, which publishes every node's config: not a node id. */
export const CONTROLLER_LOGIN = '_controller';
/**
 * A read-only login for tools on the controller's machine (`sub0 mesh status`), with the
 * controller's secret: a login of its own, so that it never takes over the controller's session.
 */
export const OBSERVER_LOGIN = '_observer';

const SALT = utf8ToBytes('sub0/broker-login/v1');

/** DER wrappers of raw X25519 keys (RFC 8410). */
const X_PKCS8 = hexToBytes('302e020100300506032b656e04220420');
const X_SPKI = hexToBytes('302a300506032b656e032100');

/** X25519 through Node's OpenSSL (the scalar multiplication is ~10x faster than in JS). */
function x25519Shared(secret: Uint8Array, pub: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({ key: Buffer.concat([X_PKCS8, secret]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey({ key: Buffer.concat([X_SPKI, pub]), format: 'der', type: 'spki' });
  try {
    return new Uint8Array(diffieHellman({ privateKey, publicKey }));
  } catch {
    return new Uint8Array(32); // OpenSSL refuses an all-zero result: a low-order point
  }
}

function derive(shared: Uint8Array, network: string, node: string, controllerPub: string, identityPub: string): string {
  if (shared.every((b) => b === 0)) throw new Sub0Error('invalid-input', `the identity key of node "${node}" is a low-order point`);
  return bytesToHex(hkdf(sha256, shared, SALT, utf8ToBytes(`${network}\n${node}\n${controllerPub}\n${identityPub}`), 32));
}

/** The node's password at the broker run by `controllerKey` (hex ed25519 public key). */
export function nodeBrokerPassword(identity: SigningKey, controllerKey: string, network: string, node: string): string {
  const shared = x25519Shared(ed25519.utils.toMontgomerySecret(identity.secretKey), ed25519.utils.toMontgomery(hexToBytes(controllerKey)));
  return derive(shared, network, node, controllerKey, bytesToHex(identity.publicKey));
}

/**
 * The same password, as the controller computes it from the identity key registered on chain.
 * Throws Sub0Error 'invalid-input' when that key is not a valid ed25519 point.
 */
export function expectedBrokerPassword(controller: SigningKey, identityKey: string, network: string, node: string): string {
  let mont: Uint8Array;
  try {
    mont = ed25519.utils.toMontgomery(hexToBytes(identityKey));
  } catch (e) {
    throw new Sub0Error('invalid-input', `the identity key of node "${node}" is not an ed25519 public key`, { cause: e });
  }
  const shared = x25519Shared(ed25519.utils.toMontgomerySecret(controller.secretKey), mont);
  return derive(shared, network, node, bytesToHex(controller.publicKey), identityKey);
}
