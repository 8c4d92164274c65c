/**
 * Typed access to the pallets a chain offers. The API's types are built from each chain's
 * metadata at run time: a call or storage item may be missing, and then the error names it.
 */
import type { ApiPromise } from '@polkadot/api';
import type { QueryableStorageEntry, SubmittableExtrinsic, SubmittableExtrinsicFunction } from '@polkadot/api/types';
import { Sub0Error } from '../../fabric/errors.js';

export type Call = SubmittableExtrinsic<'promise'>;
// Arguments are checked by the chain's own metadata when the call is built.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TxFn = SubmittableExtrinsicFunction<'promise'> & ((...args: any[]) => Call);

export function txFn(api: ApiPromise, pallet: string, call: string): TxFn {
  const fn = api.tx[pallet]?.[call];
  if (!fn) throw new Sub0Error('unsupported', `the chain has no call ${pallet}.${call}`);
  return fn as TxFn;
}

export function storage(api: Pick<ApiPromise, 'query'>, pallet: string, item: string): QueryableStorageEntry<'promise'> {
  const q = api.query[pallet]?.[item];
  if (!q) throw new Sub0Error('unsupported', `the chain has no storage ${pallet}.${item}`);
  return q;
}
