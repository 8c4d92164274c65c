/**
 * Who may use a DVCI's broker, from the chain alone: every node that gets an active config from
 * the compiler (registered, active, in a known DVCI, not a duplicate) and has an identity key. A
 * node the chain retires, quarantines or forgets drops out; its broker access is revoked with it.
 * Each broker implementation (embedded aedes, Mosquitto's password and ACL files) enforces the
 * same table: a node logs in as itself with the password only it (and this controller) can
 * derive, reads only its config topic and writes only its status topic.
 */
import type { CompileResult } from '../../fabric/compile.js';
import type { ChainSnapshot, NodeId } from '../../fabric/schema.js';

/** node id -> its identity key (hex), as registered on chain. */
export type Admission = ReadonlyMap<NodeId, string>;

export function admissionOf(snapshot: ChainSnapshot, result: CompileResult): Admission {
  const keys = new Map<NodeId, string>();
  for (const n of snapshot.nodes) if (n.identityKey && !keys.has(n.id)) keys.set(n.id, n.identityKey);
  const out = new Map<NodeId, string>();
  for (const [id, config] of result.configs) {
    const key = keys.get(id);
    if (config.mode === 'active' && key) out.set(id, key);
  }
  return out;
}

/** What a broker implementation offers the controller. */
export interface BrokerAdmission {
  /**
   * Makes the broker admit exactly these nodes of `network`: new ones may log in, nodes that left
   * (or whose identity key changed) are disconnected and refused from now on. Idempotent.
   */
  admit(network: string, nodes: Admission): Promise<void>;
}

export function sameAdmission(a: Admission | undefined, b: Admission): boolean {
  if (!a || a.size !== b.size) return false;
  for (const [k, v] of b) if (a.get(k) !== v) return false;
  return true;
}
