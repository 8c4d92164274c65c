/**
 * The desired DataplaneState of a NodeConfig, in the exact spelling the drivers read back: CIDRs
 * canonical (RFC 5952), endpoints as IP literals. wireguard-go and the kernel take no DNS names,
 * so named endpoints are resolved here, before planning; otherwise the plan would see every
 * resolved endpoint as a change and never settle.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { desiredState, type DataplaneState, type PeerState } from '../../fabric/dataplane-state.js';
import { DesiredAcl } from '../../fabric/desired-acl.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { canonicalCidr, joinHostPort, splitHostPort } from '../../fabric/ip.js';

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

/** The desired state of one config, on its own (the dry-run planner, benchmarks). */
export async function desiredDataplane(config: NodeConfig, resolve: Resolver = systemResolver): Promise<DataplaneState> {
  return (await new DesiredTracker(resolve).next(config)).state;
}

/**
 * The desired state of each config the agent takes on, in turn: the ACL kept incrementally
 * (fabric's DesiredAcl), so that a config that changes one rule of 10,000s costs that rule, and
 * the keys that rule touched, which is all a plan against the previous state has to look at.
 */
export class DesiredTracker {
  private readonly acl = new DesiredAcl(canonicalCidr);

  constructor(private readonly resolve: Resolver = systemResolver) {}

  /**
   * The state `config` asks for, and the ACL keys whose presence may differ from the previous
   * config's (every key, the first time). The state's ACL map is the tracker's own: it changes
   * with the next call.
   */
  async next(config: NodeConfig): Promise<{ state: DataplaneState; aclChanged: ReadonlySet<string> }> {
    const aclChanged = this.acl.update(config);
    const s = desiredState(config, { acl: false });
    const peers = new Map<string, PeerState>();
    for (const p of s.peers.values()) {
      const endpoints: string[] = [];
      for (const e of p.endpoints) {
        const r = await resolveEndpoint(e, this.resolve);
        if (r !== undefined && !endpoints.includes(r)) endpoints.push(r);
      }
      peers.set(p.publicKey, { ...p, endpoints, allowedIps: p.allowedIps.map(canonicalCidr) });
    }
    const state: DataplaneState = {
      addresses: new Set([...s.addresses].map(canonicalCidr)),
      listenPort: s.listenPort,
      peers,
      routes: new Set([...s.routes].map(canonicalCidr)),
      acl: this.acl.acl,
    };
    return { state, aclChanged };
  }
}
