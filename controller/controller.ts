/**
 * The controller's loop: follow finalized blocks and keep every node's published config equal to
 * compile(readSnapshot(newest finalized head)).
 *
 * Level-triggered, newest wins: the follower walks blocks one by one and hands over the registry
 * items each block touched; the controller runs a pass only once the follower has caught up, at
 * that head, with the touches of every block since the last pass. Heads that arrive during a pass
 * collapse into one next pass at the newest. At start, one full read at the finalized head,
 * without waiting for the walk: touches of blocks it includes are dropped. A controller that was
 * down compiles once.
 *
 * A pass (network-state.ts): at start, after a failure, when a touch cannot be patched in (a
 * 'network' change) and every `fullReadMs`, a full read; otherwise only the touched items are
 * read and patched into the held snapshot, then recompiled (rules only: updateRules; otherwise
 * a full in-memory compile). The periodic full read checks that the incremental state compiles
 * to byte-identical configs, and adopts the full read either way.
 * It holds no state the chain cannot rebuild; a restarted controller republishes only what
 * differs from what the sink holds.
 */
import type { Logger } from 'pino';
import type { BlockRef, ChainSnapshot, NodeId } from '../fabric/schema.js';
import type { CompileResult } from '../fabric/compile.js';
import type { Issue } from '../fabric/issues.js';
import { canonicalJson } from '../fabric/encoding.js';
import type { ChainClient } from './chain/client.js';
import { Follower, type TouchedBlock } from './chain/follower.js';
import type { ItemRef, LogosRegistry, Touch } from './chain/registry.js';
import { differingNodes } from './config-diff.js';
import { withDeadline } from '../overlay/deadline.js';
import { NetworkState, type Compiled, type PassKind } from './network-state.js';
import type { Publisher, PublishReport } from './publish/publisher.js';

export type { PassKind };

export interface ControllerOptions {
  readonly client: ChainClient;
  readonly registry: LogosRegistry;
  readonly publisher: Publisher;
  readonly cursorFile: string;
  readonly log: Logger;
  /** Called after each publish, for tests and status. */
  readonly onPublished?: (block: BlockRef, report: PublishReport) => void;
  /**
   * Called in each pass after compiling and before publishing, with the snapshot compiled (e.g.
   * to admit the network's nodes to the broker before their configs appear). It has the publish
   * deadline; a failure fails the pass.
   */
  readonly beforePublish?: (snapshot: ChainSnapshot, result: CompileResult) => Promise<void> | void;
  /** Called after each pass (also given by `stats.last`). */
  readonly onPass?: (pass: PassRecord) => void;
  /**
   * Called with every touched block the follower hands over, in order, before its cursor moves
   * past it (the audit trail); a failure makes the follower retry the block.
   */
  readonly onBlock?: (b: TouchedBlock) => void | Promise<void>;
  /** How often the network is read in full and checked against the incremental state (default 10 min; 0: only at start). */
  readonly fullReadMs?: number;
  /** Deadline of one chain read, full or of items (default 60 s). */
  readonly readTimeoutMs?: number;
  /** Deadline of one publish (default 60 s). */
  readonly publishTimeoutMs?: number;
  /** Deadline of each of the follower's chain calls (default 30 s). */
  readonly rpcTimeoutMs?: number;
  /** More touched items than this in one pass: read in full instead (default 2,000). */
  readonly maxItemReads?: number;
}

/** One pass, as logged. */
export interface PassRecord {
  readonly block: BlockRef;
  readonly kind: PassKind;
  /** Registry touches handled (distinct items, and collection-level changes). */
  readonly touches: number;
  /** Items whose read changed (0 for a full read). */
  readonly itemsChanged: number;
  readonly nodes: number;
  readonly published: number;
  readonly withdrawn: number;
  readonly issues: number;
  /** A periodic full read compared with the incremental state: the nodes that differed (empty: identical). */
  readonly verified?: readonly NodeId[];
  readonly ms: { readonly read: number; readonly compile: number; readonly publish: number; readonly total: number };
}

export interface ControllerStats {
  /** Passes that published. */
  passes: number;
  byKind: Record<PassKind, number>;
  /** Passes that failed (retried with backoff). */
  failed: number;
  /** Periodic full reads compared with the incremental state, and how many differed. */
  verified: number;
  mismatches: number;
  last: PassRecord | undefined;
}

/** The compiled network the controller holds now (for tests and status). */
export interface ControllerState {
  readonly block: BlockRef;
  readonly configs: CompileResult['configs'];
  /** Read issues then compile issues, as a full read and compile at `block` report them. */
  readonly issues: readonly Issue[];
}

const RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;

export class Controller {
  private follower: Follower | undefined;
  private readonly state = new NetworkState();
  /** Touched blocks not yet in a pass, in chain order. */
  private pending: TouchedBlock[] = [];
  /** The newest finalized head the follower caught up to. */
  private head: BlockRef | undefined;
  private fullDue = true; // the start's full read
  private verifyDue = false;
  private republishDue = false;
  private running: Promise<void> | undefined;
  /** The head of the pass in flight. */
  private inFlight: number | undefined;
  private publishing: Promise<void> | undefined;
  private stopped = false;
  private retryAt = 0;
  private retryMs = RETRY_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private fullTimer: NodeJS.Timeout | undefined;
  private knownIssues = new Set<string>();
  private notAuthorized = '';
  readonly stats: ControllerStats = { passes: 0, byKind: { 'full-read': 0, rules: 0, nodes: 0, compile: 0 }, failed: 0, verified: 0, mismatches: 0, last: undefined };

  private constructor(private readonly o: ControllerOptions) {}

  /** Follows from the cursor; publishes the network at the finalized head, then each newer head that changed it. */
  static async start(o: ControllerOptions): Promise<Controller> {
    const c = new Controller(o);
    c.follower = await Follower.start({
      client: o.client,
      registry: o.registry,
      cursorFile: o.cursorFile,
      log: o.log,
      ...(o.rpcTimeoutMs ? { rpcTimeoutMs: o.rpcTimeoutMs } : {}),
      onBlock: (b) => c.onBlock(b),
      onCaughtUp: (head) => c.onHead(head),
    });
    // The start's full read is at the finalized head, whatever the cursor says: it need not wait
    // for the follower to walk the blocks missed (their touches are in it, and dropped).
    withDeadline(o.client.finalizedHead(), o.rpcTimeoutMs ?? 30_000, 'chain_getFinalizedHead').then(
      (head) => c.onHead(head),
      (err: unknown) => o.log.warn({ err }, 'finalized head unknown at start; the first pass waits for the follower'),
    );
    const every = o.fullReadMs ?? 10 * 60_000;
    if (every > 0) {
      c.fullTimer = setInterval(() => {
        c.verifyDue = true;
        c.kick();
      }, every);
      c.fullTimer.unref();
    }
    return c;
  }

  get cursor(): BlockRef | undefined {
    return this.follower?.cursor;
  }

  /** The network the last pass compiled (published, unless that pass failed); undefined before the first. */
  get current(): ControllerState | undefined {
    const c = this.state.current;
    return c && { block: c.block, configs: c.result.configs, issues: c.issues };
  }

  /** Resolves once every registry change up to block `number` is published (for tests and `lab up`). */
  async reached(number: number, timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    await this.follower!.reached(number, timeoutMs);
    while (!this.settled(number)) {
      if (this.follower!.error) throw this.follower!.error;
      if (Date.now() > until) throw new Error(`controller did not publish the changes up to #${number} in ${timeoutMs / 1000}s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Publishes the network held again at the next pass, without reading the chain unless a change
   * is due anyway: for a sink that lost its state (call `publisher.reset()` first, so that the
   * publisher reads again what the sink holds). Every node is compared with it. Idempotent.
   */
  republish(): void {
    this.republishDue = true;
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.fullTimer);
    clearTimeout(this.retryTimer);
    await this.follower?.stop();
    await this.running;
  }

  // ---------------------------------------------------------------- triggers

  private async onBlock(b: TouchedBlock): Promise<void> {
    await this.o.onBlock?.(b);
    const held = this.state.held;
    if (held && b.block.number <= held.block.number) return; // already in the held snapshot
    this.pending.push(b);
  }

  private onHead(head: BlockRef): void {
    if (!this.head || head.number >= this.head.number) this.head = head;
    this.kick();
  }

  private hasWork(): boolean {
    const head = this.head;
    if (!head) return false;
    return this.fullDue || this.verifyDue || this.republishDue || this.pending.some((b) => b.block.number <= head.number);
  }

  /** Drops touched blocks that the held snapshot already includes (handed over during the pass that read it). */
  private prunePending(): void {
    const held = this.state.held;
    if (held) this.pending = this.pending.filter((b) => b.block.number > held.block.number);
  }

  private settled(number: number): boolean {
    if (this.fullDue || !this.state.current) return false;
    if (this.inFlight !== undefined && this.inFlight >= number) return false;
    return !this.pending.some((b) => b.block.number <= number);
  }

  /** Starts the loop unless it runs, has nothing to do, or waits out a backoff. */
  private kick(): void {
    if (this.running || this.stopped || !this.hasWork()) return;
    const wait = this.retryAt - Date.now();
    if (wait > 0) {
      this.retryTimer ??= setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, wait);
      this.retryTimer.unref();
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
      this.kick(); // work that arrived as the loop ended, or the retry after a failure
    });
  }

  /** Passes one at a time, each at the newest head, until nothing is left. */
  private async loop(): Promise<void> {
    while (!this.stopped && this.hasWork() && Date.now() >= this.retryAt) {
      const head = this.head!;
      this.inFlight = head.number;
      try {
        await this.pass(head);
        this.retryMs = RETRY_MS;
      } catch (err) {
        this.stats.failed++;
        // Rebuilt from the chain at the next pass: whatever the failed pass changed is dropped.
        this.fullDue = true;
        this.state.reset();
        this.retryAt = Date.now() + this.retryMs;
        this.o.log.error({ err, block: head.number, retryMs: this.retryMs }, 'controller pass failed; retrying with a full read');
        this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
        this.inFlight = undefined;
        return;
      }
      this.inFlight = undefined;
    }
  }

  // ---------------------------------------------------------------- one pass

  private async pass(head: BlockRef): Promise<void> {
    const t0 = performance.now();
    const since = this.state.held?.block.number ?? -1;
    const taken = this.pending.filter((b) => b.block.number <= head.number);
    this.pending = this.pending.filter((b) => b.block.number > head.number);
    const touches = taken.filter((b) => b.block.number > since).flatMap((b) => b.touches);
    const ms = { read: 0, compile: 0 };
    const { compiled, verified } = await this.compileAt(head, touches, ms);

    const p0 = performance.now();
    const republish = this.republishDue;
    this.republishDue = false; // this pass publishes; a request arriving from here on gets another
    if (this.o.beforePublish) {
      const snapshot = this.state.held!.read().snapshot;
      await withDeadline(Promise.resolve(this.o.beforePublish(snapshot, compiled.result)), this.o.publishTimeoutMs ?? 60_000, 'beforePublish');
    }
    // A republish compares every node with the sink, not only those the compile reassembled.
    const report = await this.publish(compiled.result, republish ? undefined : compiled.changed);
    const publishMs = performance.now() - p0;
    this.fullDue = false;
    this.verifyDue = false;
    this.prunePending();

    const record: PassRecord = {
      block: head,
      kind: compiled.kind,
      touches: touches.length,
      itemsChanged: compiled.itemsChanged,
      nodes: compiled.result.configs.size,
      published: report.published.length,
      withdrawn: report.withdrawn.length,
      issues: compiled.issues.length,
      ...(verified ? { verified } : {}),
      ms: { read: Math.round(ms.read), compile: Math.round(ms.compile), publish: Math.round(publishMs), total: Math.round(performance.now() - t0) },
    };
    this.stats.passes++;
    this.stats.byKind[compiled.kind]++;
    this.stats.last = record;
    this.logIssues(head, compiled.issues);
    const refused = report.notAuthorized.join(' ');
    if (refused !== this.notAuthorized && refused) this.o.log.warn({ block: head.number, dvcis: report.notAuthorized }, `the chain does not authorize this controller's key for DVCI ${refused}: its nodes' configs are left to the controllers it names`);
    this.notAuthorized = refused;
    this.o.log.info({ ...record, block: head.number, unchanged: report.unchanged }, 'network published');
    this.o.onPublished?.(head, report);
    this.o.onPass?.(record);
  }

  /**
   * The network at `head`: the touched items patched into the held snapshot when they can be,
   * else (and when a periodic check is due) a full read, compared with the incremental result.
   */
  private async compileAt(head: BlockRef, touches: readonly Touch[], ms: { read: number; compile: number }): Promise<{ compiled: Compiled; verified?: NodeId[] }> {
    const timed = async <T>(f: () => Promise<T> | T, into: 'read' | 'compile'): Promise<T> => {
      const s = performance.now();
      try {
        return await f();
      } finally {
        ms[into] += performance.now() - s;
      }
    };
    const held = this.state.held;
    const refs = itemRefs(touches);
    let incremental: Compiled | undefined;
    if (!this.fullDue && held && refs && refs.length <= (this.o.maxItemReads ?? 2000)) {
      // No touch at all (a republish, a periodic check): the held items, stamped with the head.
      const read = touches.length === 0 ? { block: head, network: held.network, items: [] } : await timed(() => this.deadline(this.o.registry.readItems(head.hash, refs), `registry items at #${head.number}`), 'read');
      incremental = await timed(() => this.state.apply(read), 'compile');
      if (incremental && !this.verifyDue) return { compiled: incremental };
    }
    const full = await timed(() => this.deadline(this.o.registry.readSnapshot(head.hash), `registry at #${head.number}`), 'read');
    const compiled = await timed(() => this.state.adopt(full), 'compile');
    if (!incremental) return { compiled };
    const verified = differingNodes(incremental.result, compiled.result);
    const sameIssues = canonicalJson(incremental.issues) === canonicalJson(compiled.issues);
    this.stats.verified++;
    if (verified.length > 0 || !sameIssues) {
      this.stats.mismatches++;
      this.o.log.error({ block: head.number, nodes: verified, issuesDiffer: !sameIssues }, 'the incremental state differs from a full read: the full read is adopted');
    }
    return { compiled, verified };
  }

  /** One publish at a time: a publish that outlived its deadline is waited for (within one more) before the next. */
  private async publish(result: CompileResult, changed: ReadonlySet<NodeId> | undefined): Promise<PublishReport> {
    const ms = this.o.publishTimeoutMs ?? 60_000;
    if (this.publishing) await withDeadline(this.publishing, ms, 'the previous publish, still running');
    const p = this.o.publisher.publish(result, changed);
    const settled: Promise<void> = p.then(
      () => undefined,
      () => undefined,
    );
    this.publishing = settled;
    void settled.then(() => {
      if (this.publishing === settled) this.publishing = undefined;
    });
    return withDeadline(p, ms, 'publish');
  }

  private deadline<T>(p: Promise<T>, what: string): Promise<T> {
    return withDeadline(p, this.o.readTimeoutMs ?? 60_000, what);
  }

  /** Warns once per issue while it lasts, not at every pass. */
  private logIssues(block: BlockRef, issues: readonly Issue[]): void {
    const now = new Set<string>();
    for (const i of issues) {
      const key = `${i.code} ${i.path} ${i.entryId ?? ''} ${i.message}`;
      now.add(key);
      if (this.knownIssues.has(key)) continue;
      // Errors leave the entry out; warnings keep it (an address moved, a selector matches nothing).
      const what = i.severity === 'error' ? `registry entry left out: ${i.path}` : `registry warning: ${i.path}`;
      this.o.log.warn({ block: block.number, issue: i }, `${what}: ${i.message}`);
    }
    this.knownIssues = now;
  }
}

/** The items to read again, or undefined when a touch cannot be patched in (a 'network' change: read in full). */
function itemRefs(touches: readonly Touch[]): ItemRef[] | undefined {
  const refs = new Map<string, ItemRef>();
  for (const t of touches) {
    if (t.kind === 'network') return undefined;
    // Collection-level changes of the other collections (their `next` counter, their `kind`):
    // readItems checks the registry's frame at every read.
    if (t.item === undefined) continue;
    refs.set(`${t.kind}/${t.item}`, { kind: t.kind, item: t.item });
  }
  return [...refs.values()];
}
