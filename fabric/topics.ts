/**
 * The MQTT topics of a sub0 network. Every node has its own: it reads only its config topic and
 * writes only its status topic; the broker's ACL says so, the signed payloads make it irrelevant
 * what the broker lets through. Ids are fabric Ids (no `/`, `+` or `#`), so a topic never holds a
 * wildcard.
 */
import type { NodeId } from './schema.js';

export const TOPIC_ROOT = 'sub0';

/** The node's signed config: one retained message, replaced whole; an empty one withdraws it. */
export function configTopic(network: string, node: NodeId): string {
  return `${TOPIC_ROOT}/${network}/node/${node}/config`;
}

/** The node's signed status: retained, replaced at every change (and its last will). */
export function statusTopic(network: string, node: NodeId): string {
  return `${TOPIC_ROOT}/${network}/node/${node}/status`;
}

/** Every node's config topic (the controller's view). */
export function allConfigs(network: string): string {
  return `${TOPIC_ROOT}/${network}/node/+/config`;
}

/** Every node's status topic (the controller's and `sub0 mesh status`'s view). */
export function allStatuses(network: string): string {
  return `${TOPIC_ROOT}/${network}/node/+/status`;
}

/** Everything of the network: the controller's grant. */
export function networkTree(network: string): string {
  return `${TOPIC_ROOT}/${network}/#`;
}

/** Where a login writes the markers of its retained reads (overlay/mqtt/read-retained.ts). */
export function markerTopic(network: string, login: string): string {
  return `${TOPIC_ROOT}/${network}/login/${login}/sync`;
}

/** Everything under the observer login's own branch (its markers). */
export function observerTree(network: string): string {
  return `${TOPIC_ROOT}/${network}/login/_observer/#`;
}

/** The node a config or status topic belongs to, or undefined for any other topic. */
export function nodeOfTopic(network: string, topic: string): { node: NodeId; kind: 'config' | 'status' } | undefined {
  const prefix = `${TOPIC_ROOT}/${network}/node/`;
  if (!topic.startsWith(prefix)) return undefined;
  const rest = topic.slice(prefix.length).split('/');
  if (rest.length !== 2 || !rest[0]) return undefined;
  const kind = rest[1];
  return kind === 'config' || kind === 'status' ? { node: rest[0], kind } : undefined;
}

/** A gatekeeper's signed report of the nodes' health (retained), one per controller key. */
export function gatekeeperTopic(network: string, controllerKey: string): string {
  return `${TOPIC_ROOT}/${network}/gatekeeper/${controllerKey}/health`;
}

/** Every gatekeeper's report (`sub0 mesh status`). */
export function allGatekeepers(network: string): string {
  return `${TOPIC_ROOT}/${network}/gatekeeper/+/health`;
}
