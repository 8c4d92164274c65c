/**
 * Who made each extrinsic of a block: its signer, and the account it acted as when it came
 * through `proxy.proxy` (the gatekeeper acting for the operator) or a multisig. One block read
 * per touched block: cheap next to the storage reads a touched block costs the controller.
 */
import type { ApiPromise } from '@polkadot/api';
import type { Codec } from '@polkadot/types/types';
import { encodeMultiAddress } from '@polkadot/util-crypto';
import type { ChainClient } from '../chain/client.js';

export type Via = 'proxy' | 'multisig';

/** A decoded call, as much of it as is read here. */
interface AnyCall {
  readonly section: string;
  readonly method: string;
  readonly args: readonly Codec[];
}

export interface ExtrinsicOrigin {
  /** The signing account (SS58); absent for unsigned extrinsics (inherents). */
  readonly signer?: string;
  /** The wrappers the call went through, outermost first. */
  readonly via?: readonly Via[];
  /** The account the registry saw acting: the proxied account, or the multisig's. */
  readonly actor?: string;
}

/** The origin of every extrinsic of the block, by index. */
export async function extrinsicOrigins(client: ChainClient, blockHash: string): Promise<ExtrinsicOrigin[]> {
  const { api } = client;
  const signed = await api.rpc.chain.getBlock(blockHash);
  return signed.block.extrinsics.map((ex) => {
    if (!ex.isSigned) return {};
    const signer = ex.signer.toString();
    const via: Via[] = [];
    const actor = unwrap(api, ex.method, signer, via);
    return via.length ? { signer, via, actor } : { signer };
  });
}

/** The depth to which nested wrappers are followed: enough for multisig-of-proxy and back. */
const MAX_DEPTH = 4;

/** The acting account after the wrappers around `call`, recording them in `via`. */
function unwrap(api: ApiPromise, call: AnyCall, account: string, via: Via[]): string {
  const ss58 = api.registry.chainSS58 ?? 42;
  let acting = account;
  let current: AnyCall | undefined = call;
  for (let depth = 0; current && depth < MAX_DEPTH; depth++) {
    const { section, method, args } = current;
    if (section === 'proxy' && (method === 'proxy' || method === 'proxyAnnounced')) {
      // proxy(real, force_proxy_type, call); proxy_announced(delegate, real, force_proxy_type, call)
      const real = method === 'proxy' ? args[0]! : args[1]!;
      acting = accountText(real);
      via.push('proxy');
      current = asCall(api, args[args.length - 1]!);
    } else if (section === 'multisig' && (method === 'asMulti' || method === 'asMultiThreshold1')) {
      // as_multi(threshold, other_signatories, timepoint, call, …); as_multi_threshold_1(other_signatories, call)
      const threshold = method === 'asMulti' ? Number(args[0]!.toString()) : 1;
      const others = (method === 'asMulti' ? args[1]! : args[0]!) as unknown as readonly Codec[];
      acting = encodeMultiAddress([acting, ...others.map((o) => o.toString())], threshold, ss58);
      via.push('multisig');
      current = asCall(api, method === 'asMulti' ? args[3]! : args[1]!);
    } else current = undefined;
  }
  return acting;
}

/** A nested call: a Call already, or (older multisig runtimes) its encoding as bytes. */
function asCall(api: ApiPromise, arg: Codec): AnyCall | undefined {
  if ((arg as Partial<AnyCall>).section !== undefined) return arg as unknown as AnyCall;
  try {
    return api.createType('Call', arg.toU8a(true));
  } catch {
    return undefined; // not decodable: the wrappers seen so far are what we know
  }
}

/** An AccountId or a MultiAddress as SS58 text. */
function accountText(a: Codec): string {
  const m = a as unknown as { isId?: boolean; asId?: Codec };
  return m.isId ? m.asId!.toString() : a.toString();
}
