/**
 * plan(desired, observed): the fewest operations that turn what a node has into what it must have.
 * Pure. Adds and updates come before removes (a peer is never torn down before its replacement is
 * up), and planning again against the result of a plan yields no operations.
 */
import type { AclTuple, DataplaneState, PeerState } from './dataplane-state.js';

export type Op =
  | { readonly op: 'address-add'; readonly cidr: string }
  | { readonly op: 'listen-port'; readonly port: number }
  | { readonly op: 'peer-add'; readonly peer: PeerState }
  | { readonly op: 'peer-update'; readonly peer: PeerState; readonly changes: readonly PeerChange[] }
  | { readonly op: 'route-add'; readonly dst: string }
  | { readonly op: 'acl-add'; readonly key: string; readonly entry: AclTuple }
  | { readonly op: 'acl-remove'; readonly key: string; readonly entry: AclTuple }
  | { readonly op: 'route-remove'; readonly dst: string }
  | { readonly op: 'peer-remove'; readonly publicKey: string }
  | { readonly op: 'address-remove'; readonly cidr: string };

export type PeerChange = 'endpoint' | 'allowed-ips' | 'keepalive';

/** Order of application: everything that adds first, then everything that takes away. */
const ORDER: Record<Op['op'], number> = {
  'address-add': 0,
  'listen-port': 1,
  'peer-add': 2,
  'peer-update': 3,
  'route-add': 4,
  'acl-add': 5,
  'acl-remove': 6,
  'route-remove': 7,
  'peer-remove': 8,
  'address-remove': 9,
};

export interface PlanOptions {
  /**
   * The only ACL keys where desired and observed may differ (DesiredAcl.update() gives them when
   * the data plane holds the previous config): the ACL part looks at these alone, not at every
   * tuple of both sides. Omitted: every tuple is compared.
   */
  readonly aclKeys?: Iterable<string>;
}

export function plan(desired: DataplaneState, observed: DataplaneState, opts: PlanOptions = {}): Op[] {
  const ops: Op[] = [];
  for (const cidr of desired.addresses) if (!observed.addresses.has(cidr)) ops.push({ op: 'address-add', cidr });
  for (const cidr of observed.addresses) if (!desired.addresses.has(cidr)) ops.push({ op: 'address-remove', cidr });
  if (desired.listenPort !== observed.listenPort) ops.push({ op: 'listen-port', port: desired.listenPort });

  for (const [key, want] of desired.peers) {
    const have = observed.peers.get(key);
    if (!have) {
      ops.push({ op: 'peer-add', peer: want });
      continue;
    }
    const changes = peerChanges(want, have);
    if (changes.length > 0) ops.push({ op: 'peer-update', peer: want, changes });
  }
  for (const key of observed.peers.keys()) if (!desired.peers.has(key)) ops.push({ op: 'peer-remove', publicKey: key });

  for (const dst of desired.routes) if (!observed.routes.has(dst)) ops.push({ op: 'route-add', dst });
  for (const dst of observed.routes) if (!desired.routes.has(dst)) ops.push({ op: 'route-remove', dst });

  if (opts.aclKeys) {
    for (const key of opts.aclKeys) {
      const want = desired.acl.get(key);
      const have = observed.acl.get(key);
      if (want && !have) ops.push({ op: 'acl-add', key, entry: want });
      else if (have && !want) ops.push({ op: 'acl-remove', key, entry: have });
    }
  } else {
    for (const [key, entry] of desired.acl) if (!observed.acl.has(key)) ops.push({ op: 'acl-add', key, entry });
    for (const [key, entry] of observed.acl) if (!desired.acl.has(key)) ops.push({ op: 'acl-remove', key, entry });
  }

  // Stable sort: within one kind the order of the desired state is kept.
  return ops.sort((a, b) => ORDER[a.op] - ORDER[b.op]);
}

function peerChanges(want: PeerState, have: PeerState): PeerChange[] {
  const changes: PeerChange[] = [];
  // A peer that roamed to one of its acceptable endpoints stays where it is: resetting it would flap.
  const current = have.endpoints[0];
  if (want.endpoints.length > 0 && (current === undefined || !want.endpoints.includes(current))) changes.push('endpoint');
  if (!sameSet(want.allowedIps, have.allowedIps)) changes.push('allowed-ips');
  if (want.keepalive !== have.keepalive) changes.push('keepalive');
  return changes;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(b);
  return a.every((x) => s.has(x));
}

/** The state reached by applying ops to a state: what a perfect driver would leave behind. */
export function applyOps(state: DataplaneState, ops: readonly Op[]): DataplaneState {
  const addresses = new Set(state.addresses);
  const peers = new Map(state.peers);
  const routes = new Set(state.routes);
  const acl = new Map(state.acl);
  let listenPort = state.listenPort;
  for (const o of ops) {
    switch (o.op) {
      case 'address-add': addresses.add(o.cidr); break;
      case 'address-remove': addresses.delete(o.cidr); break;
      case 'listen-port': listenPort = o.port; break;
      case 'peer-add':
      case 'peer-update': peers.set(o.peer.publicKey, o.peer); break;
      case 'peer-remove': peers.delete(o.publicKey); break;
      case 'route-add': routes.add(o.dst); break;
      case 'route-remove': routes.delete(o.dst); break;
      case 'acl-add': acl.set(o.key, o.entry); break;
      case 'acl-remove': acl.delete(o.key); break;
    }
  }
  return { addresses, listenPort, peers, routes, acl };
}

