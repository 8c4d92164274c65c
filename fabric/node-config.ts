/**
 * The wire schema of a NodeConfig: everything one node must enforce, already resolved to
 * addresses. The controller compiles it, signs its canonical encoding and publishes it; the agent
 * parses it with this schema, verifies it and reconciles the kernel to it. Full state, never deltas.
 */
import * as z from 'zod';
import { BlockRef, Ed25519Key, Endpoint, ID_PATTERN, Id, isIpv4, isIpv6, Proto, WG_KEY_PATTERN, WgKey } from './schema.js';

/**
 * `100.96.1.2/32` or `fd12:3456:789a:2::6460:102/128`: host routes only, the overlay is flat. The
 * address is parsed for real (zod's ipv4/ipv6): a config that passes the gate is one the kernel
 * takes; `999.1.1.1/32` or `:/128` never reaches a reconcile that would fail on it forever.
 * IPv6 is lower-case, as fabric writes it (one text per address: sets and maps compare text).
 */
export function isHostCidr(s: string): boolean {
  if (s.endsWith('/32')) return isIpv4(s.slice(0, -3));
  if (s.endsWith('/128')) {
    const a = s.slice(0, -4);
    return /^[0-9a-f:]+$/.test(a) && isIpv6(a);
  }
  return false;
}
export const HostCidr = z.string().refine(isHostCidr, 'must be a /32 or /128 host prefix of a valid address (IPv6 in lower case)');

export const Peer = z.strictObject({
  node: Id,
  publicKey: WgKey,
  /** Acceptable endpoints, preferred first. A peer that roamed to another one of these is not reset. */
  endpoints: z.array(Endpoint),
  /** The peer node's own addresses, then those of every slot it hosts. */
  allowedIps: z.array(HostCidr),
  keepalive: z.number().int().min(0).max(65535),
});

export const HostedSlot = z.strictObject({
  id: Id,
  ipv4: HostCidr,
  ipv6: HostCidr,
  vcpus: z.number().int().positive(),
  memoryMiB: z.number().int().positive(),
  diskGiB: z.number().int().positive(),
  image: z.string(),
});

/**
 * What one rule allows on this node, factored as Tailscale's FilterRule is: every (src, dst) pair
 * of one address family across the two address lists, for one protocol and destination port
 * range. Each slot is listed with its IPv4 and its IPv6 address. Everything else is dropped.
 * A rule between two groups of 100 slots is one entry of 200 + 200 addresses here, where a list
 * of pairs would take 10,000 entries (2 MB a config); the agent expands it into kernel tuples.
 */
export const AclEntry = z.strictObject({
  /** The chain rule this entry comes from, for audit. */
  rule: Id,
  /** The source slots' addresses. */
  src: z.array(HostCidr).min(1),
  /** The destination slots' addresses. */
  dst: z.array(HostCidr).min(1),
  proto: Proto,
  /** Inclusive destination port range; [0, 65535] for icmp and any. */
  ports: z.tuple([z.number().int().min(0).max(65535), z.number().int().min(0).max(65535)]),
}).refine((e) => portsFit(e.proto, e.ports), { message: 'ports: lo <= hi, and [0, 65535] for icmp and any', path: ['ports'] });

export const NodeConfig = z.strictObject({
  version: z.literal(1),
  network: Id,
  node: Id,
  dvci: Id,
  /**
   * The controller keys the chain authorizes for this node's DVCI (sorted hex): the agent accepts
   * configs signed by these from now on. Empty: the chain names none, the agent keeps its own.
   */
  controllers: z.array(Ed25519Key).max(8),
  /** The finalized block this config was compiled from; agents never go back to an older one. */
  revision: BlockRef,
  /** active: in the mesh; quarantined: cut off, the agent removes every peer and rule. */
  mode: z.enum(['active', 'quarantined']),
  interface: z.strictObject({
    addresses: z.array(HostCidr),
    listenPort: z.number().int().min(1).max(65535),
  }),
  /**
   * Routing is reachability: the node routes each peer's allowed IPs into the WireGuard
   * interface (host routes), so the routes are not sent apart: they would double the config.
   */
  peers: z.array(Peer),
  slots: z.array(HostedSlot),
  acl: z.array(AclEntry),
});

export type Peer = Readonly<z.output<typeof Peer>>;
export type HostedSlot = Readonly<z.output<typeof HostedSlot>>;
export type AclEntry = Readonly<z.output<typeof AclEntry>>;
export type NodeConfig = Readonly<z.output<typeof NodeConfig>>;

/** The frame of a NodeConfig, its peers and ACL entries left to isPeer() and isAclEntry(). */
const NodeConfigFrame = NodeConfig.extend({ peers: z.array(z.unknown()), acl: z.array(z.unknown()) });
const PROTOS: ReadonlySet<unknown> = new Set(Proto.options);
const isPort = (x: unknown) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 65535;
/**
 * Strings already found valid. An address or an endpoint is valid or not whatever config carries
 * it, and successive configs (and, at scale, the configs of one process's many agents) repeat the
 * same ones: each is tested once. Bounded: past the limit the set starts over.
 */
class Seen {
  private set = new Set<string>();
  constructor(private readonly test: (s: string) => boolean, private readonly limit = 200_000) {}
  has(x: unknown): boolean {
    if (typeof x !== 'string') return false;
    if (this.set.has(x)) return true;
    if (!this.test(x)) return false;
    if (this.set.size >= this.limit) this.set = new Set();
    this.set.add(x);
    return true;
  }
}
const knownCidrs = new Seen(isHostCidr);
const knownEndpoints = new Seen((s) => Endpoint.safeParse(s).success);
const isCidrList = (l: unknown) => Array.isArray(l) && l.length > 0 && l.every((c) => knownCidrs.has(c));

/**
 * AclEntry's schema as one predicate. An agent may parse 10,000s of entries per config, and zod
 * costs ~1.3 µs each; this costs a tenth. It accepts nothing the schema refuses
 * (test/fabric/node-config.test.ts checks both on the same inputs); what it does not accept goes
 * through zod, which decides and explains.
 */
function isAclEntry(e: unknown): boolean {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return false;
  const o = e as Record<string, unknown>;
  let keys = 0;
  for (const _ in o) keys++;
  const { rule, src, dst, proto, ports } = o;
  return (
    keys === 5 &&
    typeof rule === 'string' &&
    ID_PATTERN.test(rule) &&
    isCidrList(src) &&
    isCidrList(dst) &&
    PROTOS.has(proto) &&
    Array.isArray(ports) &&
    ports.length === 2 &&
    isPort(ports[0]) &&
    isPort(ports[1]) &&
    portsFit(proto, ports as [number, number])
  );
}

/** Ports bind TCP and UDP only: an icmp or any entry spans them all (the kernel keeps no ranges for them). */
function portsFit(proto: unknown, [lo, hi]: readonly [number, number]): boolean {
  return lo <= hi && (proto === 'tcp' || proto === 'udp' || (lo === 0 && hi === 65535));
}


/** Peer's schema as one predicate, as isAclEntry is AclEntry's (a node has 100s of peers). */
function isPeer(e: unknown): boolean {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return false;
  const o = e as Record<string, unknown>;
  let keys = 0;
  for (const _ in o) keys++;
  const { node, publicKey, endpoints, allowedIps, keepalive } = o;
  return (
    keys === 5 &&
    typeof node === 'string' &&
    ID_PATTERN.test(node) &&
    typeof publicKey === 'string' &&
    WG_KEY_PATTERN.test(publicKey) &&
    Array.isArray(endpoints) &&
    endpoints.every((x) => knownEndpoints.has(x)) &&
    Array.isArray(allowedIps) &&
    allowedIps.every((c) => knownCidrs.has(c)) &&
    Number.isInteger(keepalive) &&
    (keepalive as number) >= 0 &&
    (keepalive as number) <= 65535
  );
}

/** NodeConfig.safeParse, the same verdict and errors, faster on large configs (see isAclEntry, isPeer). */
export function parseNodeConfig(body: unknown): { success: true; data: NodeConfig } | { success: false; error: z.ZodError } {
  const frame = NodeConfigFrame.safeParse(body);
  if (frame.success && frame.data.acl.every(isAclEntry) && frame.data.peers.every(isPeer))
    return { success: true, data: { ...frame.data, peers: frame.data.peers as Peer[], acl: frame.data.acl as AclEntry[] } };
  return NodeConfig.safeParse(body);
}
