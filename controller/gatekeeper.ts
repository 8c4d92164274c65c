/**
 * The gatekeeper: watches every node this controller serves through the signed statuses their
 * agents publish (heartbeats, and the last will that says a node vanished), judges them
 * (fabric/health.ts), and quarantines a node that stays degraded beyond the grace by a chain
 * transaction: its own account, acting for the network operator through the Proxy pallet, sets
 * the node's state to `quarantined`. The chain stays the one authority: every controller then
 * compiles the node out of its peers' configs and out of the broker. It decides nothing else and
 * holds nothing the chain or the statuses cannot give it again.
 *
 * Several gatekeepers of one DVCI judge alike and would decide alike: each waits its rank (its key
 * among the DVCI's controller keys) times `staggerMs` beyond the grace, and reads the node's state
 * on chain right before it submits, so that the first decision stands and the others find it done.
 * What it thinks of each node is published, signed, on its own retained topic for `sub0 mesh status`.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import { canonicalJson } from '../fabric/encoding.js';
import { seal, type SigningKey } from '../fabric/envelope.js';
import { isSub0Error } from '../fabric/errors.js';
import { HealthBook, type HealthPolicy, type PublishedRef, type Verdict } from '../fabric/health.js';
import { verifyStatus } from '../fabric/node-status.js';
import type { ChainSnapshot, NodeId } from '../fabric/schema.js';
import { allStatuses, gatekeeperTopic, nodeOfTopic } from '../fabric/topics.js';
import { withDeadline } from '../overlay/deadline.js';
import type { MqttLink } from '../overlay/mqtt/mqtt-link.js';
import type { LogosRegistry, Signer } from './chain/registry.js';

export const HEALTH_MAGIC = 'sub0/gatekeeper-health/v1';

export interface GatekeeperOptions {
  readonly link: MqttLink;
  readonly registry: LogosRegistry;
  /** The controller's key: signs the health report, and ranks this gatekeeper among its DVCI's. */
  readonly key: SigningKey;
  readonly policy: HealthPolicy;
  /** The gatekeeper's chain key; without one, nodes are judged and reported, never quarantined. */
  readonly signer?: Signer['pair'];
  /** Extra wait per rank among the DVCI's controllers (default 2 s). */
  readonly staggerMs?: number;
  /** How often nodes are judged (default 100 ms). */
  readonly tickMs?: number;
  readonly log: Logger;
}

/** One quarantine the gatekeeper took (or found taken). */
export interface Decision {
  readonly node: NodeId;
  readonly reason: string;
  readonly at: number;
  readonly outcome: 'submitted' | 'already' | 'failed';
  readonly block?: number;
  readonly extrinsic?: string;
  readonly error?: string;
}

/** The signed, retained report of what a gatekeeper thinks of each node. */
export interface HealthReport {
  readonly version: 1;
  readonly network: string;
  readonly controller: string;
  readonly at: number;
  readonly policy: HealthPolicy;
  readonly nodes: Record<NodeId, { readonly health: Verdict['health']; readonly reason?: string; readonly since?: number; readonly detail?: string; readonly heardAgoMs: number | null }>;
}

const RETRY_MS = 5000;

export class Gatekeeper {
  readonly book: HealthBook;
  readonly decisions: Decision[] = [];
  private readonly keyHex: string;
  private network: string | undefined;
  /**
   * What the chain says of each watched node: its identity key (checks its statuses), its registry
   * item (the quarantine reads that item alone), and this gatekeeper's rank among its DVCI's.
   */
  private watched = new Map<NodeId, { readonly identityKey: string; readonly item: number | undefined; readonly rank: number }>();
  private operator: string | undefined;
  private verdicts = new Map<NodeId, string>();
  /** Nodes whose quarantine is being submitted, or may be tried again after this time. */
  private inFlight = new Set<NodeId>();
  private retryAt = new Map<NodeId, number>();
  private timer: NodeJS.Timeout | undefined;
  private reportDue = false;
  private reporting = false;
  private warnedNoSigner = false;
  private lastTick: number | undefined;
  /** Chain submissions, one at a time: one account, one nonce sequence. */
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly o: GatekeeperOptions) {
    this.book = new HealthBook(o.policy);
    this.keyHex = bytesToHex(o.key.publicKey);
    o.link.onMessage((topic, payload, retained) => this.onMessage(topic, payload, retained));
    o.link.onConnect((sessionPresent) => {
      if (!sessionPresent && this.network) this.subscribe(this.network);
      this.reportDue = true;
    });
  }

  /**
   * After each published pass: the nodes to watch are those the chain has active, with an
   * identity key, that this controller published a config for.
   */
  update(snapshot: ChainSnapshot, published: ReadonlyMap<NodeId, PublishedRef>, now = Date.now()): void {
    const network = snapshot.network.id;
    if (this.network !== network) {
      this.network = network;
      this.subscribe(network);
    }
    this.operator = snapshot.network.operator;
    const controllers = new Map(snapshot.dvcis.map((d) => [d.id, [...d.controllers].sort()]));
    const watch = new Map<NodeId, PublishedRef | undefined>();
    this.watched = new Map();
    for (const n of snapshot.nodes) {
      if (n.state !== 'active' || !n.identityKey || !published.has(n.id) || watch.has(n.id)) continue;
      watch.set(n.id, published.get(n.id));
      this.watched.set(n.id, { identityKey: n.identityKey, item: n.seq, rank: Math.max(0, controllers.get(n.dvci)?.indexOf(this.keyHex) ?? 0) });
    }
    this.book.watch(watch, now);
    for (const id of [...this.verdicts.keys()]) if (!watch.has(id)) this.verdicts.delete(id);
    for (const id of [...this.retryAt.keys()]) if (!watch.has(id)) this.retryAt.delete(id);
    this.reportDue = true;
    this.timer ??= setInterval(() => this.tick(), this.o.tickMs ?? 100);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private subscribe(network: string): void {
    this.o.link.subscribe([allStatuses(network)]).catch((e: unknown) => this.o.log.error({ err: (e as Error).message }, 'gatekeeper: cannot subscribe to the nodes\' statuses'));
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    if (!this.network || payload.length === 0) return;
    const t = nodeOfTopic(this.network, topic);
    if (t?.kind !== 'status') return;
    const key = this.watched.get(t.node)?.identityKey;
    if (!key) return;
    try {
      this.book.heard(t.node, verifyStatus(payload, key, t.node), Date.now(), retained);
    } catch (e) {
      // A status that does not verify is no heartbeat: the node stays silent in the book.
      this.o.log.warn({ node: t.node, err: (e as Error).message }, 'gatekeeper: a status on the node\'s topic did not verify');
    }
  }

  /** Judges every node; logs changes; quarantines what is due. */
  tick(now = Date.now()): void {
    if (this.stopped) return;
    // A gatekeeper that did not run (a stalled process, a suspended machine) heard nothing, and
    // that says nothing about the nodes: their watches start again.
    const gap = this.lastTick === undefined ? 0 : now - this.lastTick;
    this.lastTick = now;
    if (gap > Math.max(2000, 20 * (this.o.tickMs ?? 100))) {
      this.o.log.warn({ stalledMs: gap }, 'gatekeeper: this process did not run for a while; watches start again');
      this.book.rewatch(now);
    }
    const verdicts = this.book.judgeAll(now);
    for (const [node, v] of verdicts) {
      const label = v.health === 'ok' ? 'ok' : `${v.health}:${v.reason}`;
      const before = this.verdicts.get(node);
      if (before !== label) {
        this.verdicts.set(node, label);
        this.reportDue = true;
        if (v.health === 'ok') {
          if (before !== undefined) this.o.log.info({ node }, 'gatekeeper: node healthy again');
        } else if (v.health === 'degraded') this.o.log.warn({ node, reason: v.reason, detail: v.detail, graceS: this.o.policy.graceMs / 1000 }, `gatekeeper: node degraded: ${v.detail}`);
      }
      if (v.health === 'quarantine-due') this.maybeQuarantine(node, v, now);
    }
    if (this.reportDue) this.report(now, verdicts);
  }

  private maybeQuarantine(node: NodeId, v: Exclude<Verdict, { health: 'ok' }>, now: number): void {
    if (this.inFlight.has(node) || now < (this.retryAt.get(node) ?? 0)) return;
    const signer = this.o.signer;
    if (!signer || !this.operator) {
      if (!this.warnedNoSigner) this.o.log.warn({ node }, 'gatekeeper: quarantine due, but this controller has no gatekeeper key (--gatekeeper-suri): the node is only reported');
      this.warnedNoSigner = true;
      return;
    }
    const rank = this.watched.get(node)?.rank ?? 0;
    if (now < v.since + this.o.policy.graceMs + rank * (this.o.staggerMs ?? 2000)) return;
    this.inFlight.add(node);
    const reason = `${v.reason}: ${v.detail}`;
    this.o.log.warn({ node, reason }, 'gatekeeper: quarantining the node on chain');
    const operator = this.operator;
    const item = this.watched.get(node)?.item;
    const change = { op: 'update' as const, kind: 'node' as const, id: node, fields: { state: 'quarantined' }, ...(item !== undefined ? { item } : {}) };
    const submit = this.queue.then(() => withDeadline(this.o.registry.submit([change], { pair: signer, proxy: { real: operator } }), 60_000, `quarantine of node ${node}`));
    this.queue = submit.catch(() => undefined);
    submit
      .then(
        (r) => {
          this.decide({ node, reason, at: Date.now(), outcome: 'submitted', block: r.block.number, extrinsic: r.extrinsic });
          this.o.log.warn({ node, block: r.block.number, extrinsic: r.extrinsic }, `gatekeeper: node ${node} quarantined at block #${r.block.number}`);
        },
        (e: unknown) => {
          // Another gatekeeper got there first: the registry refuses a change that changes nothing.
          if (isSub0Error(e, 'invalid-input') && /nothing to change/.test((e as Error).message)) {
            this.decide({ node, reason, at: Date.now(), outcome: 'already' });
            this.o.log.info({ node }, 'gatekeeper: the node is already quarantined on chain');
          } else {
            this.decide({ node, reason, at: Date.now(), outcome: 'failed', error: (e as Error).message });
            this.o.log.error({ node, err: (e as Error).message, retryMs: RETRY_MS }, 'gatekeeper: the quarantine transaction failed');
          }
          this.retryAt.set(node, Date.now() + RETRY_MS);
        },
      )
      .finally(() => this.inFlight.delete(node));
  }

  private decide(d: Decision): void {
    this.decisions.push(d);
    if (this.decisions.length > 1000) this.decisions.splice(0, this.decisions.length - 1000);
  }

  /** Publishes the verdicts of this tick (retained, signed); one at a time, the newest wins. */
  private report(now: number, verdicts: ReadonlyMap<NodeId, Verdict>): void {
    if (this.reporting || !this.network || !this.o.link.connected) return;
    this.reportDue = false;
    const nodes: HealthReport['nodes'] = {};
    for (const [node, v] of verdicts) {
      const heard = this.book.lastHeard(node);
      nodes[node] = v.health === 'ok' ? { health: 'ok', heardAgoMs: heard ? now - heard.at : null } : { health: v.health, reason: v.reason, since: v.since, detail: v.detail, heardAgoMs: heard ? now - heard.at : null };
    }
    const body: HealthReport = { version: 1, network: this.network, controller: this.keyHex, at: now, policy: this.o.policy, nodes };
    this.reporting = true;
    this.o.link
      .publish(gatekeeperTopic(this.network, this.keyHex), seal(HEALTH_MAGIC, new TextEncoder().encode(canonicalJson(body)), this.o.key), { retain: true })
      .catch((e: unknown) => {
        this.reportDue = true;
        this.o.log.debug({ err: (e as Error).message }, 'gatekeeper: health report not published');
      })
      .finally(() => {
        this.reporting = false;
      });
  }
}
