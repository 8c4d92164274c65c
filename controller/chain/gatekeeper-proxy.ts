/**
 * The gatekeeper's standing on chain: the network operator names, once, an account that may act
 * for it through the runtime's Proxy pallet (`sub0 gatekeeper authorize`). The gatekeeper then
 * quarantines a node by a transaction of its own, dispatched as the operator: the chain stays the
 * single authority, the decision is on record with who took it, and the operator can revoke it.
 *
 * The proxy type is the narrowest the runtime offers that can set a Uniques attribute: on Asset
 * Hub runtimes that is `AssetOwner` (it also allows the other owner calls on the operator's
 * collections: the gatekeeper's key deserves the operator's care).
 */
import type { Vec } from '@polkadot/types';
import type { Codec } from '@polkadot/types/types';
import { Sub0Error } from '../../fabric/errors.js';
import type { ChainClient } from './client.js';
import { storage, txFn } from './pallets.js';
import type { Signer, Submitted } from './registry.js';
import { submitCall } from './submit.js';

export const GATEKEEPER_PROXY_TYPE = 'AssetOwner';

interface ProxyDefinition extends Codec {
  readonly delegate: Codec;
  readonly proxyType: Codec;
  readonly delay: Codec;
}

/** The accounts allowed to act for `real` with the gatekeeper's proxy type. */
export async function gatekeepersOf(client: ChainClient, real: string): Promise<string[]> {
  // (BoundedVec<ProxyDefinition>, deposit)
  const [list] = (await storage(client.api, 'proxy', 'proxies')(real)) as unknown as [Vec<ProxyDefinition>, Codec];
  return [...list].filter((d) => d.proxyType.toString() === GATEKEEPER_PROXY_TYPE).map((d) => d.delegate.toString());
}

function checkProxyType(client: ChainClient): void {
  const arg = txFn(client.api, 'proxy', 'addProxy').meta.args[1];
  const type = arg ? client.api.registry.createType(arg.type.toString() as never) : undefined;
  const variants = (type as unknown as { defKeys?: string[] } | undefined)?.defKeys ?? [];
  if (!variants.includes(GATEKEEPER_PROXY_TYPE))
    throw new Sub0Error('unsupported', `this runtime's proxy types are ${variants.join(', ') || 'unknown'}: none is ${GATEKEEPER_PROXY_TYPE}, which the gatekeeper needs`);
}

/** Lets `delegate` act for the operator as gatekeeper. Idempotent: an existing grant is kept. */
export async function authorizeGatekeeper(client: ChainClient, operator: Signer, delegate: string): Promise<Submitted | 'already'> {
  checkProxyType(client);
  const real = operator.pair.address;
  if (operator.multisig || operator.proxy) throw new Sub0Error('invalid-input', 'the gatekeeper is authorized by the operator\'s own key (no --multisig)');
  if ((await gatekeepersOf(client, real)).includes(client.api.createType('AccountId32', delegate).toString())) return 'already';
  const r = await submitCall(client, txFn(client.api, 'proxy', 'addProxy')(delegate, GATEKEEPER_PROXY_TYPE, 0), operator);
  return { ...r, entries: [] };
}

/** Withdraws the grant. */
export async function revokeGatekeeper(client: ChainClient, operator: Signer, delegate: string): Promise<Submitted> {
  const real = operator.pair.address;
  if (!(await gatekeepersOf(client, real)).includes(client.api.createType('AccountId32', delegate).toString()))
    throw new Sub0Error('not-found', `${delegate} is not a gatekeeper of ${real}`);
  const r = await submitCall(client, txFn(client.api, 'proxy', 'removeProxy')(delegate, GATEKEEPER_PROXY_TYPE, 0), operator);
  return { ...r, entries: [] };
}
