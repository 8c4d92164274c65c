/**
 * Signs and submits one call, directly or through a multisig, and waits for its block to be
 * finalized. The runtime is the judge of permissions: its refusals come back as Sub0Error
 * `permission` naming the pallet error, every other failure as `chain`.
 */
import type { ApiPromise } from '@polkadot/api';
import type { Option } from '@polkadot/types';
import type { AccountId32, DispatchError, EventRecord } from '@polkadot/types/interfaces';
import type { Codec } from '@polkadot/types/types';
import { encodeMultiAddress, sortAddresses } from '@polkadot/util-crypto';
import { Sub0Error } from '../../fabric/errors.js';
import type { BlockRef } from '../../fabric/schema.js';
import type { ChainClient } from './client.js';
import { storage, txFn, type Call } from './pallets.js';
import type { Signer } from './registry.js';

export type { Call };

export interface SubmitOutcome {
  readonly status: 'applied' | 'pending-approval';
  readonly block: BlockRef;
  readonly extrinsic: string;
  readonly approvals?: { readonly have: number; readonly need: number };
}

/** Errors that mean "this signer may not do this", as the runtime names them. */
const PERMISSION_ERRORS = new Set(['BadOrigin', 'uniques.NoPermission', 'uniques.WrongOwner', 'uniques.Frozen', 'multisig.SenderInSignatories', 'multisig.NotOwner', 'proxy.NotProxy', 'proxy.Unproxyable', 'system.CallFiltered']);

/** The account a signer acts as: its own, or the multisig's. */
export function actingAccount(signer: Signer, ss58: number): string {
  if (signer.proxy) return signer.proxy.real;
  const m = signer.multisig;
  return m ? encodeMultiAddress([...m.signatories], m.threshold, ss58) : signer.pair.address;
}

export async function submitCall(client: ChainClient, call: Call, signer: Signer): Promise<SubmitOutcome> {
  if (signer.multisig) return submitMultisig(client, call, signer, signer.multisig);
  if (signer.proxy) return submitProxied(client, call, signer, signer.proxy.real);
  const { events: _events, ...outcome } = await submitSigned(client, call, signer);
  return outcome;
}

async function submitSigned(client: ChainClient, tx: Call, signer: Signer): Promise<SubmitOutcome & { events: EventRecord[] }> {
  const { api } = client;
  const extrinsic = await new Promise<{ hash: string; events: EventRecord[]; block: string }>((resolve, reject) => {
    let unsub: (() => void) | undefined;
    const done = (f: () => void) => {
      unsub?.();
      f();
    };
    tx.signAndSend(signer.pair, { nonce: -1 }, (r) => {
      if (r.dispatchError) return done(() => reject(dispatchFailure(api, r.dispatchError!, signer.pair.address)));
      if (r.status.isFinalized) return done(() => resolve({ hash: tx.hash.toHex(), events: r.events, block: r.status.asFinalized.toHex() }));
      if (r.status.isInvalid || r.status.isDropped || r.status.isUsurped || r.status.isRetracted || r.status.isFinalityTimeout)
        done(() => reject(new Sub0Error('chain', `the transaction was not included: ${r.status.type}`)));
    })
      .then((u) => {
        unsub = u;
      })
      .catch((e: unknown) => reject(new Sub0Error('chain', `the node refused the transaction: ${(e as Error).message}`, { cause: e })));
  });
  return { status: 'applied', block: await client.blockRef(extrinsic.block), extrinsic: extrinsic.hash, events: extrinsic.events };
}

async function submitMultisig(client: ChainClient, call: Call, signer: Signer, m: NonNullable<Signer['multisig']>): Promise<SubmitOutcome> {
  const { api } = client;
  const ss58 = api.registry.chainSS58 ?? 42;
  const me = signer.pair.address;
  const multisig = encodeMultiAddress([...m.signatories], m.threshold, ss58);
  const others = sortAddresses(m.signatories.filter((s) => !sameAccount(api, s, me)), ss58);
  if (others.length === m.signatories.length)
    throw new Sub0Error('invalid-input', `the signing account ${me} is not one of the multisig's signatories`);
  const callHash = call.method.hash.toHex();
  const pending = (await storage(api, 'multisig', 'multisigs')(multisig, callHash)) as Option<PendingMultisig>;
  const open = pending.isSome ? pending.unwrap() : undefined;
  if (open && open.approvals.some((a) => sameAccount(api, a.toString(), me)))
    throw new Sub0Error('invalid-input', `${me} already approved this change (call ${callHash}); waiting for other signatories`);
  const info = await call.paymentInfo(multisig);
  const asMulti = txFn(api, 'multisig', 'asMulti');
  const timepoint = open ? open.when : null;
  // Older runtimes (the lab's) take a store_call flag before max_weight; current ones do not.
  const tx =
    asMulti.meta.args.length === 6
      ? asMulti(m.threshold, others, timepoint, call.method.toHex(), false, info.weight)
      : asMulti(m.threshold, others, timepoint, call.method, info.weight);
  const r = await submitSigned(client, tx, signer);
  const have = (open ? open.approvals.length : 0) + 1;
  const executed = r.events.find((e) => e.event.section === 'multisig' && e.event.method === 'MultisigExecuted');
  if (!executed) return { status: 'pending-approval', block: r.block, extrinsic: r.extrinsic, approvals: { have, need: m.threshold } };
  // The multisig ran the call: its own outcome is the last field of the event.
  const result = executed.event.data[executed.event.data.length - 1] as unknown as { isErr: boolean; asErr: DispatchError };
  if (result.isErr) throw dispatchFailure(api, result.asErr, multisig);
  return { status: 'applied', block: r.block, extrinsic: r.extrinsic, approvals: { have, need: m.threshold } };
}

/** The call through proxy.proxy: the pallet reports the inner call's outcome in ProxyExecuted. */
async function submitProxied(client: ChainClient, call: Call, signer: Signer, real: string): Promise<SubmitOutcome> {
  const tx = txFn(client.api, 'proxy', 'proxy')(real, null, call.method);
  const { events, ...outcome } = await submitSigned(client, tx, signer);
  const executed = events.find((e) => e.event.section === 'proxy' && e.event.method === 'ProxyExecuted');
  if (!executed) throw new Sub0Error('chain', `proxy.proxy by ${signer.pair.address} for ${real} ran no call`);
  const result = executed.event.data[0] as unknown as { isErr: boolean; asErr: DispatchError };
  if (result.isErr) throw dispatchFailure(client.api, result.asErr, `${signer.pair.address} (as proxy of ${real})`);
  return outcome;
}

interface PendingMultisig extends Codec {
  readonly when: Codec;
  readonly approvals: readonly AccountId32[];
}

function sameAccount(api: ApiPromise, a: string, b: string): boolean {
  return api.createType('AccountId32', a).eq(api.createType('AccountId32', b));
}

/** Names a runtime refusal: `uniques.NoPermission (No permission granted.)`. */
export function dispatchFailure(api: ApiPromise, err: DispatchError, who: string): Sub0Error {
  let name: string = err.type;
  let docs = '';
  if (err.isModule) {
    const meta = api.registry.findMetaError(err.asModule);
    name = `${meta.section}.${meta.name}`;
    docs = meta.docs.join(' ').trim();
  }
  const code = PERMISSION_ERRORS.has(name) ? 'permission' : 'chain';
  return new Sub0Error(code, `the runtime refused the call signed by ${who}: ${name}${docs ? ` (${docs})` : ''}`);
}
