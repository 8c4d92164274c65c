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
import { allConfigs, allStatuses, configTopic, markerTopic, statusTopic } from '../fabric/topics.js';
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
  /** Seconds since that status was written (by the node's clock). */
  readonly statusAgeS: number | null;
  /** ok: runs the published config; converging; behind; failed; offline; silent (no status); unregistered identity. */
  readonly health: 'ok' | 'converging' | 'behind' | 'failed' | 'offline' | 'silent' | 'no-identity' | 'not-served';
}

export interface MeshStatus {
  readonly network: string;
  readonly block: { readonly number: number; readonly hash: string };
  readonly nodes: readonly MeshNode[];
}

/** Reads the retained configs and statuses (as the observer login) and joins them with the chain. */
export async function readMeshStatus(link: MqttLink, snapshot: ChainSnapshot, now = Date.now(), timeoutMs = 10_000): Promise<MeshStatus> {
  const net = snapshot.network.id;
  const held = await readRetained(link, [allConfigs(net), allStatuses(net)], markerTopic(net, OBSERVER_LOGIN), timeoutMs);
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
    nodes.push({
      node: n.id,
      dvci: n.dvci,
      chainState: n.state,
      published,
      status,
      statusError,
      statusAgeS: status ? Math.max(0, Math.round((now - status.at) / 1000)) : null,
      health: healthOf(n.state, n.identityKey !== undefined, published, status),
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

function healthOf(chainState: string, hasIdentity: boolean, published: MeshNode['published'], s: NodeStatus | null): MeshNode['health'] {
  if (chainState !== 'active' || !published) return 'not-served';
  if (!hasIdentity) return 'no-identity';
  if (!s) return 'silent';
  if (s.state === 'offline') return 'offline';
  if (s.applied?.hash === published.hash) return 'ok';
  if (s.reconcile?.status === 'failed') return 'failed';
  if (s.accepted?.hash === published.hash) return 'converging';
  return 'behind';
}
