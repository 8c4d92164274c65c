/**
 * The mesh as the broker and the chain show it, for `sub0 mesh status` (and later the web view):
 * every node the chain knows, its state there, the config published for it, and what its agent
 * last reported in its signed status (checked against the identity key on chain, never taken on
 * the broker's word). Plain data: the CLI prints it as a table or as JSON.
 */
import { OBSERVER_LOGIN } from '../fabric/broker-login.js';
import { open } from '../fabric/envelope.js';
import { verifyStatus, type NodeStatus } from '../fabric/node-status.js';
import type { ChainSnapshot } from '../fabric/schema.js';
import { CONFIG_MAGIC, payloadJson } from '../fabric/signing.js';
import { allConfigs, allGatekeepers, allStatuses, configTopic, markerTopic, statusTopic } from '../fabric/topics.js';
import { conformity, wrongHashDetail } from '../fabric/health.js';
import { HEALTH_MAGIC, type HealthReport } from './gatekeeper.js';
import type { MqttLink } from '../overlay/mqtt/mqtt-link.js';
import { readRetained } from '../overlay/mqtt/read-retained.js';

export interface MeshNode {
  readonly node: string;
  readonly dvci: string;
  /** The node's state on chain. */
  readonly chainState: string;
  /** The config published for it: its revision, hash and signer (a short key), if any. */
  readonly published: { readonly revision: number; readonly hash: string; readonly signer: string } | null;
  /** What its agent reported last, verified; null when it never reported (or not verifiably). */
  readonly status: NodeStatus | null;
  /** Why a status on its topic was not accepted, if one was not. */
  readonly statusError: string | null;
  /** Seconds since that status, the node's heartbeat, was written (by the node's clock). */
  readonly statusAgeS: number | null;
  /**
   * ok: heard, and runs the config published for it; degraded: the gatekeeper's verdict (or, with
   * no gatekeeper report, silent, offline, failing or behind); quarantined, retired, pending: its
   * state on chain; not-served: active, but no config is published for it.
   */
  readonly health: 'ok' | 'converging' | 'degraded' | 'quarantined' | 'retired' | 'pending' | 'not-served';
  /** Why it is not ok, in a few words (e.g. `offline`, `wrong-hash: …`); null when ok. */
  readonly reason: string | null;
  /** What the gatekeepers reported (one per controller key that judged it), newest report each. */
  readonly gatekeepers: readonly { readonly controller: string; readonly health: string; readonly reason?: string; readonly since?: number; readonly detail?: string; readonly reportAgeS: number }[];
}

export interface MeshStatus {
  readonly network: string;
  readonly block: { readonly number: number; readonly hash: string };
  readonly nodes: readonly MeshNode[];
}

/** Reads the retained configs and statuses (as the observer login) and joins them with the chain. */
export async function readMeshStatus(link: MqttLink, snapshot: ChainSnapshot, now = Date.now(), timeoutMs = 10_000): Promise<MeshStatus> {
  const net = snapshot.network.id;
  const held = await readRetained(link, [allConfigs(net), allStatuses(net), allGatekeepers(net)], markerTopic(net, OBSERVER_LOGIN), timeoutMs);
  const reports = gatekeeperReports(held, snapshot, now);
  const seen = new Set<string>();
  const nodes: MeshNode[] = [];
  for (const n of snapshot.nodes) {
    if (seen.has(n.id)) continue;
    seen.add(n.id);
    const published = configOf(held.get(configTopic(net, n.id)));
    let status: NodeStatus | null = null;
    let statusError: string | null = null;
    const wire = held.get(statusTopic(net, n.id));
    if (wire && n.identityKey) {
      try {
        status = verifyStatus(wire, n.identityKey, n.id);
      } catch (e) {
        statusError = (e as Error).message;
      }
    } else if (wire) statusError = 'a status, but no identity key on chain to check it with';
    const gatekeepers = reports.flatMap((r) => {
      const v = r.report.nodes[n.id];
      return v ? [{ controller: r.report.controller.slice(0, 16), health: v.health, ...(v.reason ? { reason: v.reason } : {}), ...(v.since ? { since: v.since } : {}), ...(v.detail ? { detail: v.detail } : {}), reportAgeS: r.ageS }] : [];
    });
    const [health, reason] = healthOf(n.state, n.identityKey !== undefined, published, status, gatekeepers);
    nodes.push({
      node: n.id,
      dvci: n.dvci,
      chainState: n.state,
      published,
      status,
      statusError,
      statusAgeS: status ? Math.max(0, Math.round((now - status.at) / 1000)) : null,
      health,
      reason,
      gatekeepers,
    });
  }
  return { network: net, block: snapshot.block, nodes };
}

function configOf(wire: Buffer | undefined): MeshNode['published'] {
  if (!wire) return null;
  try {
    // Shown, not trusted: the signature is checked against the key it names.
    const o = open(CONFIG_MAGIC, wire, () => true);
    const body = payloadJson(o.payload) as { revision?: { number?: number } };
    return { revision: body.revision?.number ?? -1, hash: o.hash, signer: o.key.slice(0, 16) };
  } catch {
    return null;
  }
}

/**
 * The gatekeepers' signed reports, from keys the chain authorizes for some DVCI (a report signed
 * by anyone else is not shown: anyone with broker rights could write one).
 */
function gatekeeperReports(held: ReadonlyMap<string, Buffer>, snapshot: ChainSnapshot, now: number): { report: HealthReport; ageS: number }[] {
  const authorized = new Set(snapshot.dvcis.flatMap((d) => d.controllers));
  const out: { report: HealthReport; ageS: number }[] = [];
  for (const [topic, wire] of held) {
    if (!topic.endsWith('/health')) continue;
    try {
      const report = payloadJson(open(HEALTH_MAGIC, wire, (k) => authorized.has(k)).payload) as HealthReport;
      out.push({ report, ageS: Math.max(0, Math.round((now - report.at) / 1000)) });
    } catch {
      /* not from an authorized controller, or unreadable: not shown */
    }
  }
  return out;
}

function healthOf(chainState: string, hasIdentity: boolean, published: MeshNode['published'], s: NodeStatus | null, gatekeepers: MeshNode['gatekeepers']): [MeshNode['health'], string | null] {
  if (chainState === 'quarantined' || chainState === 'retired' || chainState === 'pending') return [chainState, null];
  if (!published) return ['not-served', 'no config published for it'];
  if (!hasIdentity) return ['degraded', 'no identity key on chain: no broker access'];
  const judged = gatekeepers.find((g) => g.health !== 'ok');
  if (judged) return ['degraded', judged.reason ? `${judged.reason}${judged.detail ? `: ${judged.detail}` : ''}` : judged.health];
  if (!s) return ['degraded', 'silent: never reported'];
  if (s.state === 'offline') return ['degraded', 'offline'];
  if (s.applied?.hash === published.hash) return ['ok', null];
  if (s.reconcile?.status === 'failed') return ['degraded', `failing: ${s.reconcile.errors[0] ?? 'reconcile failed'}`];
  if (s.accepted?.hash === published.hash) return ['converging', null];
  // The gatekeeper's judgment, at this instant: a newer config (another controller's) is fine.
  switch (conformity({ revision: { number: published.revision }, hash: published.hash }, s)) {
    case 'ok':
      return ['ok', null];
    case 'wrong-hash':
      return ['degraded', `wrong-hash: ${wrongHashDetail(s.applied!, published)}`];
    case 'behind':
      return ['degraded', `behind: applied ${s.applied ? `#${s.applied.revision.number}` : 'nothing'}, published #${published.revision}`];
  }
}
