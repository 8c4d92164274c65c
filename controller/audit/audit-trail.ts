/**
 * The audit trail up to a finalized block, for a reader (`sub0 audit`, later the web view): the
 * controller's index as far as it is complete, then the blocks after it read from the chain, so
 * that the answer is right even when the controller lags or is down; or, without an index (or
 * when asked), the whole trail read from the chain. Reads only: the index is the controller's.
 */
import { join } from 'node:path';
import type { BlockRef } from '../../fabric/schema.js';
import type { ChainClient } from '../chain/client.js';
import type { LogosRegistry } from '../chain/registry.js';
import { AUDIT_FILE, readAuditIndex } from './audit-index.js';
import { rebuildAudit } from './audit-log.js';
import type { AuditRecord } from './audit-record.js';

export interface TrailSource {
  /** `index`: the controller's, caught up from the chain; `chain`: rebuilt from the chain alone. */
  readonly kind: 'index' | 'chain';
  /** The index file, when one was read. */
  readonly file: string | null;
  /** The trail holds every registry change of the blocks after this one, up to `head`. */
  readonly since: number;
  /** The last block the index covered (null: no index read). */
  readonly indexThrough: number | null;
  /** Blocks read from the chain to complete it. */
  readonly blocksRead: number;
  readonly head: BlockRef;
}

export interface TrailOptions {
  /** The controller's state dir, where its index is. */
  readonly dir: string;
  /** Finalized: the trail ends here. */
  readonly head: BlockRef;
  /** Read the whole trail from the chain, not from the index. */
  readonly rebuild?: boolean;
  /** The first block read when rebuilding (default 1: the whole chain). */
  readonly from?: number;
  readonly onProgress?: (done: number, total: number, block: number) => void;
}

export async function loadAuditTrail(client: ChainClient, registry: LogosRegistry, o: TrailOptions): Promise<{ records: AuditRecord[]; source: TrailSource }> {
  const file = join(o.dir, AUDIT_FILE);
  const index = o.rebuild ? undefined : readAuditIndex(o.dir, registry.locator);
  if (index) {
    // The index may be ahead of `head` (another reader's head is older): keep what `head` includes.
    const through = Math.min(index.through, o.head.number);
    const fresh = await rebuildAudit(client, registry, through + 1, o.head.number, o.onProgress);
    const records = [...index.records.filter((r) => r.block <= through), ...fresh];
    return { records, source: { kind: 'index', file, since: index.header.since.number, indexThrough: index.through, blocksRead: Math.max(0, o.head.number - through), head: o.head } };
  }
  const from = Math.max(1, o.from ?? 1);
  const records = await rebuildAudit(client, registry, from, o.head.number, o.onProgress);
  return { records, source: { kind: 'chain', file: null, since: from - 1, indexThrough: null, blocksRead: Math.max(0, o.head.number - from + 1), head: o.head } };
}
