/**
 * The reconcile loop (controller-runtime's contract): level-based, one reconcile at a time, the
 * newest desired state wins. setDesired() and trigger() only mark the loop dirty; triggers that
 * arrive while a reconcile runs collapse into one more pass, against whatever config is newest
 * then. A failed pass is retried with exponential backoff (with jitter); a periodic resync
 * re-checks the kernel anyway, which heals drift (a route deleted by hand, a crashed wireguard-go).
 *
 * Fresh and shadow passes: a pass for a new config (setDesired) lets the ACL driver answer from
 * its shadow of what it wrote (AclDriver.observe), which keeps a rule change at 10,000s of entries
 * fast; the first pass, the periodic resync, a retry after a failure and an explicit trigger() are
 * fresh: every driver reads the kernel in full, so drift behind a shadow lasts at most one resync.
 */
import type { Logger } from 'pino';
import { slotPrefixes } from '../../fabric/address.js';
import { configHash } from '../../fabric/encoding.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import type { BlockRef } from '../../fabric/schema.js';
import type { DataplaneState } from '../../fabric/dataplane-state.js';
import { DesiredTracker, systemResolver, type Resolver } from './desired.js';
import { reconcileStep, stepErrorText, type Dataplane, type StepResult } from './reconcile-step.js';
import { codedError } from '../../fabric/errors.js';
import { withDeadline } from '../deadline.js';
import { InitiatorPolicy } from './initiator.js';
import { keyFromBase64, keyToBase64, publicKeyOf } from '../wireguard/keys.js';

export interface ReconcileResult extends Omit<StepResult, 'state'> {
  readonly revision: number;
  /** The block of that revision (its number and hash). */
  readonly block: BlockRef;
  readonly configHash: string;
  readonly startedAt: number;
  readonly durationMs: number;
  /** Consecutive failures so far (0 after a success). */
  readonly attempt: number;
  /** When failed: the delay before the retry. */
  readonly retryInMs?: number;
}

export interface ReconcilerOptions {
  readonly ifname: string;
  readonly privateKey: string;
  readonly logger?: Logger;
  readonly resolve?: Resolver;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Periodic re-check; 0 disables it. */
  readonly resyncMs?: number;
  /** A pass that takes longer is reported failed ('timeout'); the next waits until it ends. */
  readonly passTimeoutMs?: number;
  /** One initiating end per link (initiator.ts); the agent turns it on. */
  readonly oneInitiator?: { readonly waitMs?: number };
  readonly onResult?: (r: ReconcileResult) => void;
}

/** A pass normally takes well under a second; one past this has stalled somewhere. */
const PASS_TIMEOUT_MS = 120_000;

export class Reconciler {
  private readonly initiator: InitiatorPolicy | undefined;
  private releaseTimer: NodeJS.Timeout | undefined;
  /** A pass past its deadline, still running: the next pass waits for it. */
  private straggler: Promise<void> | undefined;
  private desired: NodeConfig | undefined;
  private desiredHash: string | undefined;
  private running = false;
  private dirty = false;
  /** The next pass reads the kernel in full (see the file comment). */
  private fresh = true;
  private stopped = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private idleWaiters: (() => void)[] = [];
  private last: ReconcileResult | undefined;
  private tracker: DesiredTracker;
  /** What the last pass that did not fail left the kernel holding; the next non-fresh pass plans against it. */
  private held: DataplaneState | undefined;

  constructor(
    private readonly dp: Dataplane,
    private readonly opts: ReconcilerOptions,
  ) {
    this.tracker = new DesiredTracker(opts.resolve ?? systemResolver);
    this.initiator = opts.oneInitiator ? new InitiatorPolicy(keyToBase64(publicKeyOf(keyFromBase64(opts.privateKey, 'private key'))), opts.oneInitiator.waitMs) : undefined;
    if (opts.resyncMs) {
      this.resyncTimer = setInterval(() => this.trigger(), opts.resyncMs);
      this.resyncTimer.unref();
    }
  }

  /**
   * The config to converge to; replaces any earlier one, even one not yet applied. `hash` is its
   * configHash() when the caller has it already (computing it costs ~60 ms at 10,000 entries).
   */
  setDesired(config: NodeConfig, hash?: string): void {
    this.desired = config;
    this.desiredHash = hash ?? configHash(config);
    this.kick(false);
  }

  get current(): NodeConfig | undefined {
    return this.desired;
  }

  get lastResult(): ReconcileResult | undefined {
    return this.last;
  }

  /** Asks for a fresh pass (every driver reads the kernel); a no-op while stopped or before any config. */
  trigger(): void {
    this.kick(true);
  }

  private kick(fresh: boolean): void {
    if (this.stopped || !this.desired) return;
    this.fresh ||= fresh;
    this.dirty = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.running) void this.loop();
  }

  /** Resolves once no pass runs and none is pending (retries scheduled for later do not count). */
  idle(): Promise<void> {
    if (!this.running && !this.dirty) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops the loop after the pass in flight; leaves the data plane as it is. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.releaseTimer);
    clearInterval(this.resyncTimer);
    this.dirty = false;
    await this.idle();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.dirty && !this.stopped && this.desired) {
        this.dirty = false;
        const config = this.desired;
        const fresh = this.fresh;
        this.fresh = false;
        await this.straggler;
        const r = await this.pass(config, this.desiredHash!, fresh);
        this.last = r;
        this.opts.onResult?.(r);
        this.scheduleRelease();
        if (r.status === 'failed') {
          this.fresh = true; // whatever comes next, it re-reads the kernel
          if (!this.dirty && !this.stopped) this.retryTimer = setTimeout(() => this.trigger(), r.retryInMs);
        }
      }
    } finally {
      this.running = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** A pass when the earliest held keepalive is due (its peer never shook hands in time). */
  private scheduleRelease(): void {
    clearTimeout(this.releaseTimer);
    const at = this.initiator?.nextRelease();
    if (at === undefined || this.stopped) return;
    this.releaseTimer = setTimeout(() => this.trigger(), Math.max(0, at - Date.now()));
    this.releaseTimer.unref();
  }

  private backoffMs(): number {
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 200, maxMs: 30_000 };
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures - 1, 20));
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  private async pass(config: NodeConfig, hash: string, fresh: boolean): Promise<ReconcileResult> {
    const startedAt = Date.now();
    const t0 = performance.now();
    const log = this.opts.logger;
    let step: StepResult;
    let desiredMs = 0;
    try {
      const { state: desired, aclChanged } = await this.tracker.next(config);
      desiredMs = performance.now() - t0;
      const known = !fresh && this.held ? { observed: this.held, aclKeys: aclChanged } : undefined;
      this.held = undefined; // until this pass says what it left
      const initiator = this.initiator;
      // The state observed in this pass (handshake times, keepalives set) releases the keepalives held back.
      const shape = initiator ? (d: DataplaneState, o: DataplaneState) => initiator.apply(d, o, Date.now()) : undefined;
      const running = reconcileStep(this.dp, { ifname: this.opts.ifname, privateKey: this.opts.privateKey, guarded: slotPrefixes(config.network), desired, fresh, ...(known ? { known } : {}), ...(shape ? { shape } : {}) });
      // Every call inside has its own deadline; this one bounds their sum, so that a stall shows
      // in the status instead of a pass that never reports. The kernel has one writer: the next
      // pass waits for this one to end (late), whatever it did then is re-read.
      this.straggler = running.then(() => undefined, () => undefined);
      step = await withDeadline(running, this.opts.passTimeoutMs ?? PASS_TIMEOUT_MS, 'reconcile pass');
      this.straggler = undefined;
    } catch (e) {
      this.tracker = new DesiredTracker(this.opts.resolve ?? systemResolver); // it may be half-way through a config
      step = { status: 'failed', applied: {}, remaining: {}, errors: [{ phase: 'pass', ...codedError(e) }], reached: { peers: 0, routes: 0, acl: 0, addresses: 0, listenPort: 0 } };
    }
    const { state, ...result } = step;
    if (step.status !== 'failed') this.held = state;
    this.failures = step.status === 'failed' ? this.failures + 1 : 0;
    const r: ReconcileResult = {
      ...result,
      timings: { desired: Math.round(desiredMs * 10) / 10, ...step.timings },
      revision: config.revision.number,
      block: config.revision,
      configHash: hash,
      startedAt,
      durationMs: Math.round((performance.now() - t0) * 10) / 10,
      attempt: this.failures,
      ...(step.status === 'failed' ? { retryInMs: this.backoffMs() } : {}),
    };
    if (r.status === 'failed') log?.warn({ revision: r.revision, errors: r.errors.map(stepErrorText), remaining: r.remaining, attempt: r.attempt, retryInMs: r.retryInMs }, 'reconcile failed');
    else if (r.status === 'changed') log?.info({ revision: r.revision, applied: r.applied, reached: r.reached, ms: r.durationMs, timings: r.timings }, 'reconciled');
    else log?.debug({ revision: r.revision, ms: r.durationMs, fresh }, 'unchanged');
    return r;
  }
}
