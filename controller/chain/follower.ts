/**
 * Follows finalized heads and reports each finalized block that touched the registry, once and
 * in chain order, resuming after a restart from a cursor kept in a file.
 *
 * Contract: blocks are scanned one by one from the cursor to the finalized head, each checked
 * to extend the previous one (a cursor from another chain is an error, not a silent gap). The
 * cursor moves past a block only after `onBlock` returned for it, and is written to disk then:
 * a clean stop and restart reports nothing twice and skips nothing. A crash between `onBlock`
 * and the cursor write reports that one block again, which level-based consumers (read the
 * snapshot, compile, publish when the hash changed) absorb. Without a cursor file, following
 * starts at the finalized head of the moment: the consumer reads a full snapshot there.
 * Every chain call has a deadline (`rpcTimeoutMs`): a stalled one fails the scan, which is tried
 * again with backoff from the same cursor.
 */
import type { Logger } from 'pino';
import * as z from 'zod';
import { Sub0Error } from '../../fabric/errors.js';
import { BlockRef } from '../../fabric/schema.js';
import { withDeadline } from '../../overlay/deadline.js';
import { readJsonRecord } from '../../overlay/json-file.js';
import type { ChainClient } from './client.js';
import { writeJsonAtomic } from './home.js';
import type { LogosRegistry, Touch } from './registry.js';

export interface TouchedBlock {
  readonly block: BlockRef;
  readonly touches: readonly Touch[];
}

export interface FollowerOptions {
  readonly client: ChainClient;
  readonly registry: LogosRegistry;
  /** Where the cursor (the last finalized block handled) is kept. */
  readonly cursorFile: string;
  readonly log: Logger;
  /** Called for every touched block, in order; the next one waits for it. */
  readonly onBlock: (b: TouchedBlock) => Promise<void> | void;
  /** Called after each catch-up to a new finalized head. */
  readonly onCaughtUp?: (head: BlockRef) => void;
  /** Deadline of each chain call (default 30 s). */
  readonly rpcTimeoutMs?: number;
}

const CursorFile = z.object({ cursor: BlockRef, registry: z.string() });

export class Follower {
  private cursorRef: BlockRef;
  private target: BlockRef;
  private running: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private failure: Error | undefined;
  private backoffMs = 500;

  private constructor(private readonly o: FollowerOptions, cursor: BlockRef) {
    this.cursorRef = cursor;
    this.target = cursor;
  }

  /** Loads (or starts) the cursor, catches up to the finalized head, then follows it. */
  static async start(o: FollowerOptions): Promise<Follower> {
    const deadline = <T>(p: Promise<T>, what: string) => withDeadline(p, o.rpcTimeoutMs ?? 30_000, what);
    let cursor = readCursor(o.cursorFile, o.registry.locator);
    if (!cursor) {
      cursor = await deadline(o.client.finalizedHead(), 'chain_getFinalizedHead');
      writeJsonAtomic(o.cursorFile, { cursor, registry: o.registry.locator });
      o.log.info({ block: cursor.number }, 'no cursor: following from the finalized head');
    } else o.log.info({ block: cursor.number }, 'resuming after the stored cursor');
    const f = new Follower(o, cursor);
    f.unsubscribe = await deadline(
      o.client.api.rpc.chain.subscribeFinalizedHeads((h) => {
        f.advance({ number: h.number.toNumber(), hash: h.hash.toHex() });
      }),
      'chain_subscribeFinalizedHeads',
    );
    // The subscription's first head may predate our cursor; catch up to the current one too.
    f.advance(await deadline(o.client.finalizedHead(), 'chain_getFinalizedHead'));
    return f;
  }

  /** The last finalized block handled. */
  get cursor(): BlockRef {
    return this.cursorRef;
  }

  /** The error that stopped the follower, if any. */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Resolves once every finalized block up to `number` has been handled. */
  async reached(number: number, timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.cursorRef.number < number) {
      if (this.failure) throw this.failure;
      if (Date.now() > until) throw new Sub0Error('timeout', `follower at #${this.cursorRef.number} did not reach #${number} in ${timeoutMs / 1000}s`);
      await this.running;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops following after the block in hand; the cursor file holds the last handled block. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await this.running;
  }

  private deadline<T>(p: Promise<T>, what: string): Promise<T> {
    return withDeadline(p, this.o.rpcTimeoutMs ?? 30_000, what);
  }

  private advance(head: BlockRef): void {
    if (this.stopped) return;
    if (head.number > this.target.number) this.target = head;
    // One scan at a time; a head arriving meanwhile only moves the target.
    this.running = this.running.then(() => this.scan());
  }

  private async scan(): Promise<void> {
    if (this.failure) return;
    try {
      while (!this.stopped && this.cursorRef.number < this.target.number) {
        const number = this.cursorRef.number + 1;
        const hash = await this.deadline(this.o.client.rpc<string | null>('chain_getBlockHash', [number]), `chain_getBlockHash #${number}`);
        const header = hash ? await this.deadline(this.o.client.rpc<{ parentHash: string } | null>('chain_getHeader', [hash]), `chain_getHeader #${number}`) : null;
        if (!hash || !header) throw new Sub0Error('chain', `finalized block #${number} is unknown to the node`);
        if (header.parentHash !== this.cursorRef.hash)
          throw new Sub0Error('chain', `block #${number} does not extend the cursor's block ${this.cursorRef.hash}: the cursor is from another chain`, { where: this.o.cursorFile });
        const block = { number, hash };
        const touches = await this.deadline(this.o.registry.touchedBy(block), `registry events of #${number}`);
        if (touches.length > 0) await this.o.onBlock({ block, touches });
        this.cursorRef = block;
        writeJsonAtomic(this.o.cursorFile, { cursor: block, registry: this.o.registry.locator });
      }
      if (!this.stopped) this.o.onCaughtUp?.(this.cursorRef);
      this.backoffMs = 500;
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      if (err instanceof Sub0Error && err.where === this.o.cursorFile) {
        this.failure = err;
        this.o.log.error({ err, cursor: this.cursorRef.number }, 'follower stopped');
        return;
      }
      // The node may be restarting: try again later, from the same cursor.
      this.o.log.warn({ err, cursor: this.cursorRef.number, retryMs: this.backoffMs }, 'follower scan failed; retrying');
      const t = setTimeout(() => this.advance(this.target), this.backoffMs);
      t.unref();
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    }
  }
}

function readCursor(path: string, registry: string): BlockRef | undefined {
  const r = readJsonRecord(path, CursorFile, 'unreadable follower cursor; delete it to follow from the finalized head');
  if (r && r.registry !== registry) throw new Sub0Error('invalid-input', `the cursor belongs to registry ${r.registry}, not ${registry}`, { where: path });
  return r?.cursor;
}
