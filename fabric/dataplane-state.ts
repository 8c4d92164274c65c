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
}

/** One address family of an ACL entry, without its provenance: what the kernel holds. */
export type AclTuple = Pick<AclEntry, 'src' | 'dst' | 'proto' | 'ports'>;

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
    }
    for (const r of config.routes) for (const d of r.dsts) routes.add(d);
    // aclKey() of both tuples, spelled out (10,000s of entries: one shared suffix, no temporaries).
    for (const e of opts.acl === false ? [] : config.acl) {
      const rest = `/${e.proto}:${e.ports[0]}-${e.ports[1]}`;
      const k4 = `${e.src}>${e.dst}${rest}`;
      if (!acl.has(k4)) acl.set(k4, { src: e.src, dst: e.dst, proto: e.proto, ports: e.ports });
      const k6 = `${e.src6}>${e.dst6}${rest}`;
      if (!acl.has(k6)) acl.set(k6, { src: e.src6, dst: e.dst6, proto: e.proto, ports: e.ports });
    }
  }
  return { addresses: new Set(config.interface.addresses), listenPort: config.interface.listenPort, peers, routes, acl };
}
