/**
 * The node's identity: an ed25519 key generated on the node, kept in its state dir (mode 0600),
 * never sent anywhere. Its public half is registered on chain with the node (`sub0 node register
 * --identity`); the node signs its status with it and derives its broker login from it.
 */
import { join } from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { SigningKey } from '../../fabric/envelope.js';
import { loadOrCreateSigningKey } from '../signing-key-file.js';

export const IDENTITY_FILE = 'identity.key';

export function loadOrCreateIdentity(stateDir: string): { key: SigningKey; publicKeyHex: string; created: boolean } {
  const { key, created } = loadOrCreateSigningKey(join(stateDir, IDENTITY_FILE));
  return { key, publicKeyHex: bytesToHex(key.publicKey), created };
}
