/**
 * What a node's data plane holds, in one shape for both sides of a plan: the desired state derived
 * from a NodeConfig, and the observed state the drivers read back from the kernel.
 */
import type { AclEntry, NodeConfig } from './node-config.js';

export interface PeerState {
  readonly publicKey: string;
  /** Desired: acceptable endpoints, preferred first. Observed: the current one, or none. */
  readonly endpoints: readonly string[];
  readonly allowedIps: readonly string[];
  readonly keepalive: number;
  /** Observed only: the last handshake (seconds since the epoch; 0 or absent: none). Never planned. */
  readonly lastHandshake?: number;
}

/** One (src, dst, proto, dst port range) of an ACL entry, without its provenance: what the kernel holds. */
export interface AclTuple {
  readonly src: string;
  readonly dst: string;
  readonly proto: AclEntry['proto'];
  readonly ports: AclEntry['ports'];
}

export interface DataplaneState {
  readonly addresses: ReadonlySet<string>;
  readonly listenPort: number;
  /** Keyed by public key. */
  readonly peers: ReadonlyMap<string, PeerState>;
  /** Destination prefixes routed into the WireGuard interface. */
  readonly routes: ReadonlySet<string>;
  /** Keyed by aclKey(). */
  readonly acl: ReadonlyMap<string, AclTuple>;
}

/** The identity of an ACL tuple: two rules that allow the same tuple give one kernel entry. */
export function aclKey(t: AclTuple): string {
  return `${t.src}>${t.dst}/${t.proto}:${t.ports[0]}-${t.ports[1]}`;
}

const isV6 = (cidr: string) => cidr.includes(':');

/**
 * Calls `visit` with each tuple an entry allows and its aclKey(): every (src, dst) pair of one
 * address family. `canonical` respells each address first (once per address, not per pair).
 */
export function eachAclTuple(e: AclEntry, visit: (key: string, t: AclTuple) => void, canonical?: (cidr: string) => string): void {
  const rest = `/${e.proto}:${e.ports[0]}-${e.ports[1]}`;
  const src = canonical ? e.src.map(canonical) : e.src;
  const dst = canonical ? e.dst.map(canonical) : e.dst;
  const dst6 = dst.map(isV6);
  for (const s of src) {
    const v6 = isV6(s);
    for (let j = 0; j < dst.length; j++) {
      if (dst6[j] !== v6) continue;
      const d = dst[j]!;
      visit(`${s}>${d}${rest}`, { src: s, dst: d, proto: e.proto, ports: e.ports });
    }
  }
}

/** How many tuples an ACL allows, both families (pairs that two entries allow count twice). */
export function aclTupleCount(acl: readonly AclEntry[]): number {
  let n = 0;
  for (const e of acl) {
    const v6 = e.dst.filter(isV6).length;
    for (const s of e.src) n += isV6(s) ? v6 : e.dst.length - v6;
  }
  return n;
}

export function emptyState(listenPort = 0): DataplaneState {
  return { addresses: new Set(), listenPort, peers: new Map(), routes: new Set(), acl: new Map() };
}

/**
 * The data plane a NodeConfig asks for. A quarantined node keeps its interface and nothing else.
 * `acl: false` leaves the ACL empty, for callers that keep it incrementally (DesiredAcl).
 */
export function desiredState(config: NodeConfig, opts: { readonly acl?: boolean } = {}): DataplaneState {
  const active = config.mode === 'active';
  const peers = new Map<string, PeerState>();
  const routes = new Set<string>();
  const acl = new Map<string, AclTuple>();
  if (active) {
    for (const p of config.peers) {
      peers.set(p.publicKey, { publicKey: p.publicKey, endpoints: p.endpoints, allowedIps: p.allowedIps, keepalive: p.keepalive });
      // A host route into the interface for every address behind a peer.
      for (const d of p.allowedIps) routes.add(d);
    }
    const add = (key: string, t: AclTuple) => void (acl.has(key) || acl.set(key, t));
    for (const e of opts.acl === false ? [] : config.acl) eachAclTuple(e, add);
  }
  return { addresses: new Set(config.interface.addresses), listenPort: config.interface.listenPort, peers, routes, acl };
}
