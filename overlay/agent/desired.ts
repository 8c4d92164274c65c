/**
 * The desired DataplaneState of a NodeConfig, in the exact spelling the drivers read back: CIDRs
 * canonical (RFC 5952), endpoints as IP literals. wireguard-go and the kernel take no DNS names,
 * so named endpoints are resolved here, before planning; otherwise the plan would see every
 * resolved endpoint as a change and never settle.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { aclKey, desiredState, type AclTuple, type DataplaneState, type PeerState } from '../../fabric/dataplane-state.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { canonicalCidr, joinHostPort, splitHostPort } from '../net/ip.js';

export type Resolver = (host: string) => Promise<string | undefined>;

/** Resolves with the system resolver; a name that does not resolve yields undefined. */
export const systemResolver: Resolver = async (host) => {
  try {
    return (await lookup(host)).address;
  } catch {
    return undefined;
  }
};

/** `host:port` with the host an IP literal in canonical form, or undefined when it cannot resolve. */
export async function resolveEndpoint(endpoint: string, resolve: Resolver): Promise<string | undefined> {
  const { host, port } = splitHostPort(endpoint);
  if (isIP(host)) return joinHostPort(host, port);
  const ip = await resolve(host);
  return ip === undefined ? undefined : joinHostPort(ip, port);
}

export async function desiredDataplane(config: NodeConfig, resolve: Resolver = systemResolver): Promise<DataplaneState> {
  return canonicalState(desiredState(config), resolve);
}

/** The same state with every CIDR canonical and every endpoint an IP literal. */
export async function canonicalState(s: DataplaneState, resolve: Resolver = systemResolver): Promise<DataplaneState> {
  const peers = new Map<string, PeerState>();
  for (const p of s.peers.values()) {
    const endpoints: string[] = [];
    for (const e of p.endpoints) {
      const r = await resolveEndpoint(e, resolve);
      if (r !== undefined && !endpoints.includes(r)) endpoints.push(r);
    }
    peers.set(p.publicKey, { ...p, endpoints, allowedIps: p.allowedIps.map(canonicalCidr) });
  }
  // fabric already spells CIDRs canonically: then the tuples and their keys (aclKey(), as every
  // DataplaneState keys its ACL) are taken as they are, without rebuilding 20,000 of them.
  let acl: ReadonlyMap<string, AclTuple> = s.acl;
  for (const t of s.acl.values()) {
    if (canonicalCidr(t.src) !== t.src || canonicalCidr(t.dst) !== t.dst) {
      acl = canonicalAcl(s.acl);
      break;
    }
  }
  return {
    addresses: new Set([...s.addresses].map(canonicalCidr)),
    listenPort: s.listenPort,
    peers,
    routes: new Set([...s.routes].map(canonicalCidr)),
    acl,
  };
}

function canonicalAcl(from: ReadonlyMap<string, AclTuple>): Map<string, AclTuple> {
  const acl = new Map<string, AclTuple>();
  for (const [k, t] of from) {
    const src = canonicalCidr(t.src);
    const dst = canonicalCidr(t.dst);
    if (src === t.src && dst === t.dst) {
      acl.set(k, t);
      continue;
    }
    const c: AclTuple = { ...t, src, dst };
    acl.set(aclKey(c), c);
  }
  return acl;
}
