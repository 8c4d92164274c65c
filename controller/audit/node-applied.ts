/**
 * What one node runs, as the broker holds it: the config published for it (read, not trusted:
 * what vouches for it is the node's own signed status naming its hash) and that status, checked
 * against the node's identity key on chain, as `sub0 mesh status` checks it (mesh-status.ts).
 */
import { OBSERVER_LOGIN } from '../../fabric/broker-login.js';
import { open } from '../../fabric/envelope.js';
import { parseNodeConfig, type NodeConfig } from '../../fabric/node-config.js';
import { verifyStatus, type NodeStatus } from '../../fabric/node-status.js';
import { CONFIG_MAGIC, payloadJson } from '../../fabric/signing.js';
import { configTopic, markerTopic, statusTopic } from '../../fabric/topics.js';
import type { MqttLink } from '../../overlay/mqtt/mqtt-link.js';
import { readRetained } from '../../overlay/mqtt/read-retained.js';

export interface NodeApplied {
  /** The config published for the node, with its content hash; null when none is (readable). */
  readonly published: { readonly config: NodeConfig; readonly hash: string } | null;
  /** Its last signed status, verified; null when there is none (or it did not verify: `statusError`). */
  readonly status: NodeStatus | null;
  readonly statusError: string | null;
}

export async function readNodeApplied(link: MqttLink, network: string, node: string, identityKey: string | undefined, timeoutMs = 10_000): Promise<NodeApplied> {
  const held = await readRetained(link, [configTopic(network, node), statusTopic(network, node)], markerTopic(network, OBSERVER_LOGIN), timeoutMs);
  let published: NodeApplied['published'] = null;
  const wire = held.get(configTopic(network, node));
  if (wire) {
    try {
      const o = open(CONFIG_MAGIC, wire, () => true);
      const parsed = parseNodeConfig(payloadJson(o.payload));
      if (parsed.success) published = { config: parsed.data, hash: o.hash };
    } catch {
      // Not a config: shown as none; the rules then come from the chain.
    }
  }
  let status: NodeStatus | null = null;
  let statusError: string | null = null;
  const s = held.get(statusTopic(network, node));
  if (s && identityKey) {
    try {
      status = verifyStatus(s, identityKey, node);
    } catch (e) {
      statusError = (e as Error).message;
    }
  } else if (s) statusError = 'a status, but no identity key on chain to check it with';
  return { published, status, statusError };
}
