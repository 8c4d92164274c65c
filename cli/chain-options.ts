/**
 * What every chain command shares: where the chain is (`--endpoint`, `--registry`), who signs
 * (`--suri`, `--multisig`), and how a submitted change is reported. Flags win over the
 * environment (SUB0_ENDPOINT, SUB0_REGISTRY, SUB0_SURI), which wins over the local chain that
 * `sub0 chain up` recorded in the data directory (controller/chain/open-chain.ts).
 */
import type { Command } from 'commander';
import { decodeAddress } from '@polkadot/util-crypto';
import { Sub0Error } from '../fabric/errors.js';
import { keyFromSuri, resolveSuri } from '../controller/chain/keys.js';
import { openChain, type OpenChain } from '../controller/chain/open-chain.js';

export { openChain, type OpenChain };
import type { RegistryChange, Signer, Submitted } from '../controller/chain/registry.js';
import { printJson } from './output.js';

export interface ChainFlags {
  endpoint?: string;
  registry?: string;
  suri?: string;
  multisig?: string;
  /** Sign as a proxy of this account (the gatekeeper acting for the operator). */
  proxyFor?: string;
  json?: boolean;
}

/** Adds --endpoint and --registry (and, for writes, --suri and --multisig, and --json). */
export function chainOptions(cmd: Command, o: { write?: boolean; multisig?: boolean; proxy?: boolean; json?: boolean } = {}): Command {
  cmd
    .option('--endpoint <ws-url>', 'Substrate node to use (env SUB0_ENDPOINT; default: the local chain of `sub0 lab up` or `sub0 chain up`)')
    .option('--registry <id>', 'the registry on that chain (env SUB0_REGISTRY; default: the local chain\'s)');
  if (o.write) cmd.option('--suri <secret>', 'signing key: mnemonic, seed or URI (env SUB0_SURI); //Alice-style dev keys only on the local chain');
  if (o.multisig) cmd.option('--multisig <threshold:accounts>', 'sign as one of a multisig, e.g. 2:ACCOUNT1,ACCOUNT2,ACCOUNT3');
  if (o.proxy) cmd.option('--proxy-for <account>', 'sign as a proxy of this account (a gatekeeper acting for the operator)');
  if (o.json ?? true) cmd.option('--json', 'machine-readable output');
  return cmd;
}

/** The signer the flags name: a key, optionally acting as one signatory of a multisig. */
export async function signerFrom(flags: ChainFlags, lab: boolean, env: NodeJS.ProcessEnv = process.env): Promise<Signer> {
  const pair = await keyFromSuri(resolveSuri(flags.suri, env), { lab });
  if (flags.proxyFor !== undefined) {
    if (flags.multisig !== undefined) throw new Sub0Error('invalid-input', '--proxy-for and --multisig exclude each other');
    return { pair, proxy: { real: accountFlag(flags.proxyFor, 'proxy-for') } };
  }
  return flags.multisig === undefined ? { pair } : { pair, multisig: parseMultisig(flags.multisig) };
}

/** An account address flag, checked. */
export function accountFlag(a: string, name: string): string {
  try {
    decodeAddress(a);
    return a;
  } catch {
    throw new Sub0Error('invalid-input', `--${name}: "${a}" is not an account address`);
  }
}

export function parseMultisig(s: string): { threshold: number; signatories: string[] } {
  const m = /^(\d{1,3}):(.+)$/.exec(s);
  const signatories = m ? m[2]!.split(',').map((a) => a.trim()).filter(Boolean) : [];
  const threshold = m ? Number(m[1]) : 0;
  if (!m || threshold < 1 || threshold > signatories.length)
    throw new Sub0Error('invalid-input', `--multisig must be THRESHOLD:ACCOUNT,ACCOUNT,… with 1 <= threshold <= accounts, got "${s}"`);
  for (const a of signatories) accountFlag(a, 'multisig');
  return { threshold, signatories };
}

/** Opens the chain, submits `changes` as one extrinsic and prints what happened. */
export function submitChanges(flags: ChainFlags, changes: readonly RegistryChange[], what: string): Promise<Submitted> {
  return withChain(flags, async (chain) => {
    const r = await chain.registry.submit(changes, await signerFrom(flags, chain.lab));
    if (flags.json) printJson(r);
    else process.stdout.write(describe(r, what));
    return r;
  });
}

/** Runs `fn` with the chain the flags name, and closes it whatever happens. */
export async function withChain<T>(flags: ChainFlags, fn: (chain: OpenChain) => Promise<T>): Promise<T> {
  const chain = await openChain(flags);
  try {
    return await fn(chain);
  } finally {
    await chain.close();
  }
}

function describe(r: Submitted, what: string): string {
  const where = `block #${r.block.number} ${r.block.hash}\n  extrinsic ${r.extrinsic}\n`;
  const items = r.entries.map((e) => `${e.kind} ${e.id} (item ${e.item})`).join(', ');
  if (r.status === 'pending-approval')
    return `${what}: approval ${r.approvals!.have} of ${r.approvals!.need} recorded for ${items}; it runs at the last approval\n  ${where}`;
  return `${what}: ${items}\n  ${where}`;
}

/** Strict integer flags: `--vcpus 2`, never `--vcpus 2x`. Undefined stays undefined. */
export function intFlag(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,10}$/.test(v)) throw new Sub0Error('invalid-input', `--${name} must be a whole number, got "${v}"`);
  return Number(v);
}

/** Repeatable flags collect into a list. */
export function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

/** `8/16384/500` -> resources. */
export function resourcesFlag(v: string | undefined, name: string): { vcpus: number; memoryMiB: number; diskGiB: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d{1,10})\/(\d{1,10})\/(\d{1,10})$/.exec(v);
  if (!m) throw new Sub0Error('invalid-input', `--${name} must be VCPUS/MEMORY_MIB/DISK_GIB, e.g. 8/16384/500, got "${v}"`);
  return { vcpus: Number(m[1]), memoryMiB: Number(m[2]), diskGiB: Number(m[3]) };
}
