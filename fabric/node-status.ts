/**
 * What a node's agent reports about itself: the config it accepted and the one it applied, how
 * the last reconcile went, what its data plane holds, how fresh its WireGuard handshakes are, and
 * why it refused a config. Published on the node's own status topic, signed with the node's
 * identity key (registered on chain), so that whoever reads it (`sub0 mesh status`, the
 * gatekeeper) checks it against the chain, not against the broker that carried it.
 */
import * as z from 'zod';
import { canonicalJson } from './encoding.js';
import { open, seal, type SigningKey } from './envelope.js';
import { Sub0Error } from './errors.js';
import { BlockRef, Id } from './schema.js';
import { payloadJson } from './signing.js';

export const STATUS_MAGIC = 'sub0/node-status/v1';

const Hash = z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 in hex');
const Count = z.number().int().nonnegative();
/** A config as a node names it: the block it was compiled from and its configHash. */
const ConfigRef = z.strictObject({ revision: BlockRef, hash: Hash });
/** Where a slot's VM is in its life on its node. */
export const SlotPhase = z.enum(['starting', 'running', 'backoff', 'failed', 'stopping']);
export type SlotPhase = z.output<typeof SlotPhase>;

export const NodeStatus = z.strictObject({
  version: z.literal(1),
  network: Id,
  node: Id,
  /** The agent's clock, ms since the epoch; increases with every status it publishes. */
  at: Count,
  /** running: the agent is up; offline: its last will (or a clean stop). */
  state: z.enum(['running', 'offline']),
  /** The config accepted last (it may still be converging). */
  accepted: ConfigRef.nullable(),
  /** The config the data plane fully converged to last. */
  applied: ConfigRef.nullable(),
  /** The last reconcile pass. */
  reconcile: z.strictObject({ status: z.enum(['unchanged', 'changed', 'failed']), at: Count, errors: z.array(z.string().max(300)).max(8) }).nullable(),
  /** What the data plane holds now. */
  counts: z.strictObject({ peers: Count, routes: Count, aclEntries: Count, aclTuples: Count }),
  /** Seconds since the last WireGuard handshake with each peer node; null: none yet. */
  handshakes: z.array(z.strictObject({ node: Id, ageS: Count.nullable() })).max(100_000),
  /** Why the last config was refused, if one was. */
  rejected: z.strictObject({ code: z.string().max(32), message: z.string().max(300), at: Count }).nullable(),
  backends: z.strictObject({ wireguard: z.string().max(32), acl: z.string().max(32) }),
  /** The slots the node runs as VMs (absent: the agent runs none, e.g. without --slots). */
  slots: z
    .array(
      z.strictObject({
        slot: Id,
        phase: SlotPhase,
        /** Seconds since the VM last started, while it runs. */
        upS: Count.nullable(),
        restarts: Count,
        error: z.strictObject({ code: z.string().max(32), message: z.string().max(300) }).nullable(),
      }),
    )
    .max(4096)
    .optional(),
});
export type NodeStatus = Readonly<z.output<typeof NodeStatus>>;

/** The status of an agent that has done nothing yet: what every status starts from. */
export function blankStatus(network: string, node: string, backends: NodeStatus['backends']): NodeStatus {
  return {
    version: 1,
    network,
    node,
    at: 0,
    state: 'running',
    accepted: null,
    applied: null,
    reconcile: null,
    counts: { peers: 0, routes: 0, aclEntries: 0, aclTuples: 0 },
    handshakes: [],
    rejected: null,
    backends,
  };
}

/** Signs a status with the node's identity key. */
export function signStatus(status: NodeStatus, key: SigningKey): Uint8Array {
  return seal(STATUS_MAGIC, new TextEncoder().encode(canonicalJson(status)), key);
}

/**
 * Opens a status: signed by `identityKey` (hex, from the chain), about `node`. Throws Sub0Error
 * 'bad-signature' or 'invalid-input'.
 */
export function verifyStatus(wire: Uint8Array, identityKey: string, node: string): NodeStatus {
  const { payload } = open(STATUS_MAGIC, wire, (k) => k === identityKey);
  const r = NodeStatus.safeParse(payloadJson(payload));
  if (!r.success) throw new Sub0Error('invalid-input', `node status: ${z.prettifyError(r.error)}`);
  if (r.data.node !== node) throw new Sub0Error('invalid-input', `a status about node "${r.data.node}" on the topic of "${node}"`);
  return r.data;
}
