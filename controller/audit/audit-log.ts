/**
 * The audit trail as the controller writes it: every touched block the follower hands over is
 * appended to the index (audit-index.ts) with the transaction of each change, before the
 * follower's cursor moves past it. And the same records rebuilt from the chain alone
 * (`rebuildAudit`), for `sub0 audit --rebuild` and to catch up past the controller's cursor.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { BlockRef } from '../../fabric/schema.js';
import { Sub0Error } from '../../fabric/errors.js';
import { withDeadline } from '../../overlay/deadline.js';
import type { ChainClient } from '../chain/client.js';
import type { TouchedBlock } from '../chain/follower.js';
import type { LogosRegistry } from '../chain/registry.js';
import { needsOrigins, recordsOf, type AuditRecord } from './audit-record.js';
import { parseIndex, readCursor, type AuditHeader } from './audit-index.js';
import { extrinsicOrigins } from './extrinsic-origin.js';

/** The records of one touched block, with the signer of each change (one block read). */
export async function recordsAt(client: ChainClient, b: TouchedBlock, timeoutMs = 30_000): Promise<AuditRecord[]> {
  const origins = needsOrigins(b) ? await withDeadline(extrinsicOrigins(client, b.block.hash), timeoutMs, `chain_getBlock #${b.block.number}`) : [];
  return recordsOf(b, origins);
}

export interface AuditLogOptions {
  /** The index file (audit.jsonl in the controller's state dir). */
  readonly file: string;
  /** The follower's cursor file: where a new index starts, and whether an old one continues. */
  readonly cursorFile: string;
  readonly client: ChainClient;
  /** The registry's locator, recorded in the header. */
  readonly registry: string;
  readonly log: Logger;
  /** Deadline of the block read for signers (default 30 s). */
  readonly rpcTimeoutMs?: number;
}

export class AuditLog {
  /** The last block recorded, and how many of its records the file holds. */
  private last: { block: number; records: number } | undefined;
  /** Whether the file starts with its header (written once, before the first record). */
  private headed = false;

  private constructor(private readonly o: AuditLogOptions) {}

  /**
   * Opens the index, repairing a line cut short by a crash. An index the follower cannot continue
   * (its cursor is gone: following restarts at the head, leaving a gap) is started anew; so is
   * one of another registry. Throws when the index is damaged otherwise.
   */
  static open(o: AuditLogOptions): AuditLog {
    const a = new AuditLog(o);
    let text: string | undefined;
    try {
      text = readFileSync(o.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Sub0Error('permission', `cannot read the audit index: ${(e as Error).message}`, { where: o.file });
    }
    const cursor = readCursor(o.cursorFile, o.registry);
    if (text !== undefined) {
      const parsed = parseIndex(text, o.file);
      const stale = !parsed.header || parsed.header.registry !== o.registry || !cursor;
      if (stale) {
        if (parsed.header) o.log.warn({ file: o.file }, 'the audit index cannot be continued (no follower cursor, or another registry): starting a new one');
        truncateSync(o.file, 0);
      } else {
        if (parsed.whole < text.length) truncateSync(o.file, parsed.whole); // the torn line goes; its block comes again
        const lastBlock = parsed.records.at(-1)?.block;
        if (lastBlock !== undefined) a.last = { block: lastBlock, records: parsed.records.filter((r) => r.block === lastBlock).length };
        a.headed = true;
        return a;
      }
    }
    if (cursor) a.writeHeader(cursor);
    return a;
  }

  /**
   * Records the block's changes. Idempotent: a block handed over again after a crash adds only
   * what the file lacks of it (its records come out the same, in the same order), an older block
   * nothing. Throws when the chain or the disk fails: the follower then retries the block.
   */
  async append(b: TouchedBlock): Promise<void> {
    if (this.last && b.block.number < this.last.block) return;
    const records = await recordsAt(this.o.client, b, this.o.rpcTimeoutMs);
    const have = this.last?.block === b.block.number ? this.last.records : 0;
    if (have >= records.length) return;
    if (!this.headed || !existsSync(this.o.file)) this.writeHeader(readCursor(this.o.cursorFile, this.o.registry) ?? (await this.parentOf(b.block)));
    appendFileSync(this.o.file, records.slice(have).map((r) => `${JSON.stringify(r)}\n`).join(''));
    this.last = { block: b.block.number, records: records.length };
  }

  private writeHeader(since: BlockRef): void {
    const header: AuditHeader = { audit: 1, registry: this.o.registry, since: { number: since.number, hash: since.hash } };
    mkdirSync(dirname(this.o.file), { recursive: true });
    appendFileSync(this.o.file, `${JSON.stringify(header)}\n`);
    this.headed = true;
  }

  private async parentOf(block: BlockRef): Promise<BlockRef> {
    const header = await withDeadline(this.o.client.rpc<{ parentHash: string } | null>('chain_getHeader', [block.hash]), this.o.rpcTimeoutMs ?? 30_000, `chain_getHeader #${block.number}`);
    if (!header) throw new Sub0Error('chain', `block #${block.number} is unknown to the node`);
    return { number: block.number - 1, hash: header.parentHash };
  }
}

/**
 * The records of the blocks `fromBlock` to `toBlock` (inclusive), from the chain alone: what the
 * controller would have written had it followed them. Calls `onProgress` after each block.
 */
export async function rebuildAudit(
  client: ChainClient,
  registry: LogosRegistry,
  fromBlock: number,
  toBlock: number,
  onProgress?: (done: number, total: number, block: number) => void,
): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  const total = Math.max(0, toBlock - fromBlock + 1);
  for (let n = fromBlock; n <= toBlock; n++) {
    const hash = await withDeadline(client.rpc<string | null>('chain_getBlockHash', [n]), 30_000, `chain_getBlockHash #${n}`);
    if (!hash) throw new Sub0Error('chain', `block #${n} is unknown to ${client.endpoint}`);
    const block = { number: n, hash };
    const touches = await withDeadline(registry.touchedBy(block), 30_000, `registry events of #${n}`);
    if (touches.length > 0) out.push(...(await recordsAt(client, { block, touches })));
    onProgress?.(n - fromBlock + 1, total, n);
  }
  return out;
}
