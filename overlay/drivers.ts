/**
 * The small interfaces the reconcile loop drives. Each driver owns one part of the kernel state,
 * reads it back as fabric's DataplaneState pieces, and applies fabric's plan Ops to it.
 * Contract for every driver (cilium's reconciler ops): apply overwrites; removing what is already
 * gone is not an error; observe reports only state the agent owns (its interface, its routes,
 * its map entries), never anything else on the machine.
 */
import type { AclTuple, PeerState } from '../fabric/dataplane-state.js';
import type { Op } from '../fabric/plan.js';

export type PeerOp = Extract<Op, { op: 'peer-add' | 'peer-update' | 'peer-remove' | 'listen-port' }>;
export type RouteOp = Extract<Op, { op: 'route-add' | 'route-remove' | 'address-add' | 'address-remove' }>;
export type AclOp = Extract<Op, { op: 'acl-add' | 'acl-remove' }>;

export interface WireguardObserved {
  readonly listenPort: number;
  readonly peers: ReadonlyMap<string, PeerState>;
}

/** WireGuard device control: kernel genetlink or wireguard-go's UAPI socket. */
export interface WireguardBackend {
  readonly kind: 'kernel' | 'uapi';
  /** Creates the interface if it is missing and sets the private key; idempotent. */
  ensureInterface(ifname: string, privateKey: string, listenPort: number): Promise<void>;
  observe(ifname: string): Promise<WireguardObserved>;
  /** Unix seconds of the last handshake with each peer (by public key); 0 when none yet. */
  handshakes(ifname: string): Promise<ReadonlyMap<string, number>>;
  /** Applies all peer ops of one plan as one transaction. */
  apply(ifname: string, ops: readonly PeerOp[]): Promise<void>;
  deleteInterface(ifname: string): Promise<void>;
  close(): Promise<void>;
}

/** Addresses on, and routes into, the WireGuard interface (rtnetlink). */
export interface RouteDriver {
  observe(ifname: string): Promise<{ addresses: ReadonlySet<string>; routes: ReadonlySet<string> }>;
  apply(ifname: string, ops: readonly RouteOp[]): Promise<void>;
  close(): Promise<void>;
}

/** ACL enforcement on the WireGuard interface: eBPF tc programs + maps, or an nftables set. */
export interface AclObserveOptions {
  readonly fresh?: boolean;
  readonly keys?: Iterable<string>;
}

export interface AclDriver {
  readonly kind: 'ebpf' | 'nftables';
  /** Why this is not the eBPF driver, when it is the fallback: shown in the agent's status. */
  readonly fallbackReason?: string;
  /**
   * Attaches enforcement (ingress and egress) to the interface; idempotent, also after the
   * interface was re-created. `guarded` are the CIDR prefixes the ACL governs (fabric's
   * slotPrefixes): a packet whose source or destination is in one of them passes only if a tuple
   * allows it or it belongs to an allowed flow; a packet touching none of them passes.
   */
  attach(ifname: string, guarded: readonly string[]): Promise<void>;
  /**
   * The allowed tuples, keyed by fabric's aclKey(), as the kernel holds them — read from the kernel
   * or served from the driver's shadow. A driver may keep an in-memory shadow of what it wrote
   * (changed only after the kernel accepted the write) and serve it here, so that a pass over
   * 10,000s of tuples costs no full re-read. It must read the whole kernel state, and replace its
   * shadow with what it read, when `fresh` is asked for (the reconciler's periodic resync, a retry
   * after a failed pass, an explicit trigger), on its first observe after attach, and on the first
   * observe after any failed apply. So a change made behind the agent's back (an entry deleted by
   * hand) is invisible at most until the next fresh observe, and repaired by the pass that follows.
   * With `keys`, only the tuples held under those keys are reported (a pass that touched a few
   * tuples of 10,000s re-observes those). The map returned belongs to the caller: later applies
   * do not change it.
   */
  observe(opts?: AclObserveOptions): Promise<ReadonlyMap<string, AclTuple>>;
  /** Adds and removes tuples; a removed tuple also cuts the flows it had allowed. */
  apply(ops: readonly AclOp[]): Promise<void>;
  /** Detaches and removes everything this driver created. */
  destroy(): Promise<void>;
}
