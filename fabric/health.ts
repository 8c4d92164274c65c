/**
 * The gatekeeper's judgment of nodes, pure: what each node's agent reported (its signed status, as
 * received, with the receiver's clock), against what was published for it. A node is
 *   ok        heard within the heartbeat timeout, running the config published for it (or a newer
 *             one: another controller of the DVCI got there first);
 *   degraded  silent beyond the heartbeat timeout, offline (its last will), or behind or on a
 *             config other than the one published for its revision beyond the settling time;
 *   quarantine (due) degraded for longer than the grace; never for a node never heard since its
 *             watch began (it has not joined: it is degraded until it does).
 * Times are the receiver's (ms): a node's own clock says nothing the gatekeeper can trust. A
 * watch starts when a node becomes judged (the gatekeeper's start, or the node's admission), so a
 * node is never degraded for a silence older than the watch.
 */
import type { NodeStatus } from './node-status.js';
import type { BlockRef, NodeId } from './schema.js';

export interface HealthPolicy {
  /** No heartbeat for this long: degraded. */
  readonly heartbeatTimeoutMs: number;
  /** A node behind, or on another config than the one published, for this long: degraded. */
  readonly settleMs: number;
  /** Degraded for this long: quarantine is due. */
  readonly graceMs: number;
}

/** A config as published for a node: its revision and hash (the envelope's payload digest). */
export interface PublishedRef {
  readonly revision: BlockRef;
  readonly hash: string;
  /** When it was published (ms). */
  readonly at: number;
}

export type DeviationReason = 'silent' | 'offline' | 'wrong-hash' | 'behind' | 'failing';

export type Verdict =
  | { readonly health: 'ok' }
  | { readonly health: 'degraded' | 'quarantine-due'; readonly reason: DeviationReason; readonly since: number; readonly detail: string };

interface Watch {
  since: number;
  published: PublishedRef | undefined;
  heard: number | undefined;
  status: NodeStatus | undefined;
  /** Since when (receiver's clock) its reports have not matched what was published. */
  offSince: number | undefined;
}

/** How a wrong hash is told, wherever it is found. */
export function wrongHashDetail(applied: { readonly revision: { readonly number: number }; readonly hash: string }, pub: { readonly hash: string }): string {
  return `reports config ${applied.hash.slice(0, 12)} for revision #${applied.revision.number}, published ${pub.hash.slice(0, 12)}`;
}

/**
 * Whether a node's report matches what was published for it: another config for the published
 * revision is a wrong hash; an older one (or none) is behind; the same or a newer one (another
 * controller got there first) is ok.
 */
export function conformity(pub: { readonly revision: { readonly number: number }; readonly hash: string } | undefined, s: NodeStatus | undefined): 'ok' | 'wrong-hash' | 'behind' {
  if (!pub || !s) return 'ok';
  const a = s.applied;
  if (a && a.revision.number === pub.revision.number && a.hash !== pub.hash) return 'wrong-hash';
  if (!a || a.revision.number < pub.revision.number) return 'behind';
  return 'ok';
}

export class HealthBook {
  private readonly nodes = new Map<NodeId, Watch>();

  constructor(readonly policy: HealthPolicy) {}

  /**
   * The nodes to judge now and what was published for each (undefined: nothing yet). Nodes left
   * out are forgotten (retired, quarantined, or no longer this gatekeeper's); a node coming back
   * starts a new watch.
   */
  watch(published: ReadonlyMap<NodeId, PublishedRef | undefined>, now: number): void {
    for (const id of [...this.nodes.keys()]) if (!published.has(id)) this.nodes.delete(id);
    for (const [id, ref] of published) {
      let w = this.nodes.get(id);
      if (w) w.published = ref;
      else this.nodes.set(id, (w = { since: now, published: ref, heard: undefined, status: undefined, offSince: undefined }));
      this.track(w, now);
    }
  }

  /** Restarts every watch at `now` (statuses kept): the watcher itself was not running. */
  rewatch(now: number): void {
    for (const w of this.nodes.values()) {
      w.since = now;
      if (w.offSince !== undefined) w.offSince = now;
    }
  }

  private track(w: Watch, now: number): void {
    if (conformity(w.published, w.status) === 'ok') w.offSince = undefined;
    else w.offSince ??= now;
  }

  /**
   * A verified status from `node`, received at `now`. Live statuses count in the order they
   * arrive (a last will carries the time its connection began); a retained one (read at a
   * subscription) only when newer, by the node's own order, than what was heard. Statuses of
   * nodes not watched are ignored.
   */
  heard(node: NodeId, status: NodeStatus, now: number, retained = false): void {
    const w = this.nodes.get(node);
    if (!w) return;
    if (retained && w.status && status.at <= w.status.at) return;
    w.status = status;
    w.heard = now;
    this.track(w, now);
  }

  get watched(): ReadonlySet<NodeId> {
    return new Set(this.nodes.keys());
  }

  /** The last status heard from a node, and when (receiver's clock). */
  lastHeard(node: NodeId): { readonly status: NodeStatus; readonly at: number } | undefined {
    const w = this.nodes.get(node);
    return w?.status && w.heard !== undefined ? { status: w.status, at: w.heard } : undefined;
  }

  judge(node: NodeId, now: number): Verdict | undefined {
    const w = this.nodes.get(node);
    if (!w) return undefined;
    const p = this.policy;
    const deviation = this.deviation(w, now);
    if (!deviation) return { health: 'ok' };
    const { reason, since, detail } = deviation;
    const joined = w.heard !== undefined;
    return { health: joined && now - since >= p.graceMs ? 'quarantine-due' : 'degraded', reason, since, detail };
  }

  judgeAll(now: number): Map<NodeId, Verdict> {
    const out = new Map<NodeId, Verdict>();
    for (const id of this.nodes.keys()) out.set(id, this.judge(id, now)!);
    return out;
  }

  /** The first deviation of a node at `now`, and since when it counts; undefined when none. */
  private deviation(w: Watch, now: number): { reason: DeviationReason; since: number; detail: string } | undefined {
    const p = this.policy;
    const s = w.status;
    // Its last word was "offline": degraded from then on, however long the silence that follows.
    if (s?.state === 'offline') return { reason: 'offline', since: Math.max(w.since, w.heard!), detail: 'its agent went offline (last will, or a stop)' };
    const lastSign = Math.max(w.since, w.heard ?? w.since);
    if (now - lastSign > p.heartbeatTimeoutMs) {
      const ago = w.heard === undefined ? 'never heard since the watch began' : `last heard ${Math.round((now - w.heard) / 1000)} s ago`;
      return { reason: 'silent', since: lastSign + p.heartbeatTimeoutMs, detail: `no heartbeat for ${Math.round(p.heartbeatTimeoutMs / 1000)} s (${ago})` };
    }
    const pub = w.published;
    if (!pub || !s) return undefined;
    const kind = conformity(pub, s);
    if (kind === 'ok' || w.offSince === undefined) return undefined;
    // It counts once it has lasted the settling time from the later of the publication, the start
    // of the watch and the first report that did not match.
    const settledAt = Math.max(pub.at, w.since, w.offSince) + p.settleMs;
    if (now < settledAt) return undefined;
    const applied = s.applied;
    if (kind === 'wrong-hash')
      return { reason: 'wrong-hash', since: settledAt, detail: wrongHashDetail(applied!, pub) };
    const failing = s.reconcile?.status === 'failed';
    const where = applied ? `#${applied.revision.number}` : 'no config';
    return {
      reason: failing ? 'failing' : 'behind',
      since: settledAt,
      detail: failing ? `cannot apply #${pub.revision.number}: ${s.reconcile!.errors[0] ?? 'reconcile failed'}` : `applied ${where}, published #${pub.revision.number}`,
    };
  }
}
