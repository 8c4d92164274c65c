/**
 * Where the controller puts each node's signed config. Full state per node, replaced whole: a node
 * that (re)starts reads its current config and nothing is replayed: a retained MQTT message per
 * node (mqtt-sink.ts), or a file per node (directory-sink.ts: tests, air-gapped sites).
 */
import type { NodeId } from '../../fabric/schema.js';

export interface ConfigSink {
  /** Replaces the node's config with this signed envelope; idempotent. */
  publish(node: NodeId, wire: Uint8Array): Promise<void>;
  /** Removes the node's config (node retired or refused); removing what is gone is not an error. */
  withdraw(node: NodeId): Promise<void>;
  /** What is published now: node -> envelope, so that a restarted controller publishes only changes. */
  current(): Promise<ReadonlyMap<NodeId, Uint8Array>>;
}
