/**
 * Signing keys for chain writes. The secret comes from `--suri` or `SUB0_SURI` (a mnemonic, a
 * 0x seed, or either with a derivation path), never from a file we write. The well-known dev
 * keys (`//Alice`, …, derived from the public dev phrase) are accepted only for the local lab
 * chain: anywhere else they would sign for accounts anyone can spend from.
 */
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady } from '@polkadot/util-crypto';
import { Sub0Error } from '../../fabric/errors.js';

export type { KeyringPair };

/** The signing secret: the flag wins over the environment. */
export function resolveSuri(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const suri = flag ?? env.SUB0_SURI;
  if (suri === undefined || suri.trim() === '')
    throw new Sub0Error('invalid-input', 'no signing key: pass --suri <mnemonic or URI> or set SUB0_SURI');
  return suri.trim();
}

/** `//Alice`-style URIs derive from the public dev phrase. */
export function isDevSuri(suri: string): boolean {
  return suri.startsWith('//');
}

/**
 * The sr25519 key pair for `suri`. `lab` says whether the target is the local lab chain, where
 * dev keys are allowed.
 */
export async function keyFromSuri(suri: string, opts: { lab: boolean }): Promise<KeyringPair> {
  if (isDevSuri(suri) && !opts.lab)
    throw new Sub0Error('invalid-input', `dev key "${suri.split('/').slice(0, 3).join('/')}" is only accepted on the local lab chain; use your own mnemonic`);
  await cryptoWaitReady();
  try {
    return new Keyring({ type: 'sr25519' }).addFromUri(suri);
  } catch (e) {
    // The message of a failed derivation can echo the secret: keep only its kind.
    throw new Sub0Error('invalid-input', 'the signing key is not a valid mnemonic, seed or URI', { cause: e instanceof Error ? e.name : undefined });
  }
}

/** The lab accounts: funded at genesis of the local chain; Alice is the network operator. */
export const LAB_SURIS = ['//Alice', '//Bob', '//Charlie', '//Dave', '//Eve', '//Ferdie'] as const;
