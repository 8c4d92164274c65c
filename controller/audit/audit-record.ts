/**
 * One line of the audit trail: one registry change (a follower Touch) with the transaction that
 * made it. Plain data, the same whether written by the controller as blocks are handed over or
 * rebuilt by walking the chain, so that the index can always be thrown away and rebuilt.
 */
import * as z from 'zod';
import type { TouchedBlock } from '../chain/follower.js';
import type { ExtrinsicOrigin } from './extrinsic-origin.js';

const Hash = z.string().regex(/^0x[0-9a-f]{64}$/, 'must be a 0x-prefixed 32-byte hex hash');

export const AuditRecord = z.strictObject({
  block: z.number().int().nonnegative(),
  hash: Hash,
  /** The extrinsic's index in the block; absent for changes outside extrinsics. */
  extrinsic: z.number().int().nonnegative().optional(),
  kind: z.enum(['network', 'dvci', 'node', 'slot', 'rule']),
  item: z.number().int().nonnegative().optional(),
  event: z.string().max(64),
  key: z.string().max(64).optional(),
  value: z.string().max(256).optional(),
  signer: z.string().max(64).optional(),
  via: z.array(z.enum(['proxy', 'multisig'])).max(8).optional(),
  actor: z.string().max(64).optional(),
});
export type AuditRecord = Readonly<z.output<typeof AuditRecord>>;

/** The records of one touched block, in the order of its touches. Pure. */
export function recordsOf(b: TouchedBlock, origins: readonly ExtrinsicOrigin[]): AuditRecord[] {
  return b.touches.map((t) => {
    const o = t.extrinsic === undefined ? undefined : origins[t.extrinsic];
    const r: Record<string, unknown> = { block: b.block.number, hash: b.block.hash, extrinsic: t.extrinsic, kind: t.kind, item: t.item, event: t.event, key: t.key, value: t.value };
    if (o) Object.assign(r, { signer: o.signer, via: o.via, actor: o.actor });
    for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
    return r as AuditRecord;
  });
}

/** Whether any touch of the block came from an extrinsic (only then is the block read for signers). */
export function needsOrigins(b: TouchedBlock): boolean {
  return b.touches.some((t) => t.extrinsic !== undefined);
}

/** `#12-1`: block 12, extrinsic 1 (`#12` for a change outside extrinsics). */
export function txLabel(r: { readonly block: number; readonly extrinsic?: number | undefined }): string {
  return r.extrinsic === undefined ? `#${r.block}` : `#${r.block}-${r.extrinsic}`;
}
