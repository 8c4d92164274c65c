/**
 * Schemas of the network as the chain defines it. Everything that enters the core (chain entries,
 * snapshot files, wire messages) is parsed by these into read-only typed objects first.
 * Field limits follow what one chain attribute can hold (ids <= 32 bytes).
 */
import * as z from 'zod';

/** Slug ids: they double as chain attribute values and interface-name suffixes. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,31}$/;
export const Id = z.string().regex(ID_PATTERN, 'must be 1-32 of a-z 0-9 . _ - starting with a letter or digit');

/** SS58 account address (base58, no 0 O I l). */
export const Account = z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{32,64}$/, 'must be an SS58 account address');

/** WireGuard public key: base64 of exactly 32 bytes (the last char carries 4 zero bits). */
export const WG_KEY_PATTERN = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
export const WgKey = z.string().regex(WG_KEY_PATTERN, 'must be a WireGuard public key (base64 of 32 bytes)');

/** An ed25519 public key (a node's identity key, a controller's signing key): 64 lower-case hex digits. */
export const Ed25519Key = z.string().regex(/^[0-9a-f]{64}$/, 'must be an ed25519 public key: 64 lower-case hex digits');

const HOST_PORT = /^(?:(?<v4>\d{1,3}(?:\.\d{1,3}){3})|\[(?<v6>[0-9a-fA-F:.]+)\]|(?<dns>[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,62})(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,62}))*)):(?<port>\d{1,5})$/;

const IPV4 = z.ipv4();
const IPV6 = z.ipv6();
/** A valid IPv4 address in dotted decimal (no leading zeros), parsed for real by zod. */
export const isIpv4 = (s: string): boolean => IPV4.safeParse(s).success;
/** A valid IPv6 address in any of its text forms, parsed for real by zod. */
export const isIpv6 = (s: string): boolean => IPV6.safeParse(s).success;

/** `203.0.113.7:51820`, `[2001:db8::1]:51820` or `node.example.org:51820`. */
export const Endpoint = z.string().refine((s) => {
  const m = HOST_PORT.exec(s);
  if (!m?.groups) return false;
  const port = Number(m.groups.port);
  if (port < 1 || port > 65535) return false;
  if (m.groups.v4) return isIpv4(m.groups.v4);
  if (m.groups.v6) return isIpv6(m.groups.v6);
  return true;
}, 'must be host:port (a valid IPv4, [IPv6] or a DNS name, port 1-65535)');

export const Port = z.number().int().min(1).max(65535);

/** `80` or `8000-8100`, as text (compact on chain) or as a [from, to] pair. */
export const PortRange = z
  .union([
    z.string().regex(/^\d{1,5}(?:-\d{1,5})?$/, 'must be PORT or FROM-TO'),
    z.tuple([z.number().int(), z.number().int()]),
  ])
  .transform((v, ctx) => {
    const [from, to] = typeof v === 'string' ? (v.split('-').map(Number) as [number, number?]) : v;
    const range = { from, to: to ?? from };
    if (range.from < 1 || range.to > 65535 || range.from > range.to) {
      ctx.addIssue({ code: 'custom', message: `port range ${range.from}-${range.to} is not within 1-65535 in order` });
      return z.NEVER;
    }
    return range;
  });
export type PortRange = z.output<typeof PortRange>;

export const Proto = z.enum(['tcp', 'udp', 'icmp', 'any']);
export type Proto = z.output<typeof Proto>;

/** Where an entry came from on chain, so every enforced rule traces back to a transaction. */
export const Origin = z.object({
  block: z.number().int().nonnegative(),
  extrinsic: z.string().optional(),
});

export const Dvci = z.object({
  id: Id,
  operator: Account,
  name: z.string().max(64).optional(),
  region: z.string().max(32).optional(),
  /**
   * The controller keys allowed to sign the configs of this DVCI's nodes. Every config carries
   * the set, so agents follow its changes from configs they already trust. Empty: the chain
   * names none, and agents keep trusting the keys they were installed with.
   */
  controllers: z
    .array(Ed25519Key)
    .max(8, 'at most 8 controller keys per DVCI')
    .default([])
    .refine((l) => new Set(l).size === l.length, 'controller keys must not repeat'),
  origin: Origin.optional(),
});

export const NodeState = z.enum(['pending', 'active', 'quarantined', 'retired']);

export const Resources = z.object({
  vcpus: z.number().int().min(1).max(1024),
  memoryMiB: z.number().int().min(64).max(16 * 1024 * 1024),
  diskGiB: z.number().int().min(1).max(1024 * 1024),
});

/** Ordering and collision salt for address allocation (see address.ts). */
const AllocFields = {
  /** Creation order on chain (the registry item number): older entries win address collisions. */
  seq: z.number().int().nonnegative().optional(),
  /** Chosen at registration so that the entry's hashed address is free; 0 when absent. */
  salt: z.number().int().min(0).max(255).optional(),
};

export const Node = z.object({
  id: Id,
  owner: Account,
  dvci: Id,
  wgPublicKey: WgKey,
  /**
   * The node's ed25519 identity key, generated on the node (it never leaves it): what the node
   * publishes is signed with it, and it is how the node logs in to its DVCI's broker. A node
   * without one is in the registry but gets no broker access.
   */
  identityKey: Ed25519Key.optional(),
  endpoints: z.array(Endpoint).max(8).default([]),
  listenPort: Port.default(51820),
  state: NodeState,
  /** What the machine offers to slots; absent means "not declared", and nothing is checked. */
  capacity: Resources.optional(),
  ...AllocFields,
  origin: Origin.optional(),
});

export const SlotState = z.enum(['defined', 'assigned', 'retired']);

export const Slot = z
  .object({
    id: Id,
    owner: Account,
    /** The node hosting the slot; null while the slot is defined but not placed. */
    node: Id.nullable().default(null),
    vcpus: z.number().int().min(1, 'a slot needs at least 1 vCPU').max(256, 'more than 256 vCPUs'),
    memoryMiB: z.number().int().min(64, 'a slot needs at least 64 MiB').max(4 * 1024 * 1024, 'more than 4 TiB of memory'),
    diskGiB: z.number().int().min(1, 'a slot needs at least 1 GiB of disk').max(64 * 1024, 'more than 64 TiB of disk'),
    image: z.string().min(1).max(64),
    state: SlotState,
    groups: z.array(Id).max(8).default([]),
    ...AllocFields,
    origin: Origin.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.state === 'assigned' && s.node === null)
      ctx.addIssue({ code: 'custom', path: ['node'], message: 'an assigned slot must name its node' });
  });

/** `slot:ID`, `group:NAME` or `owner:ACCOUNT`. */
const SELECTOR = /^(slot|group|owner):(.+)$/;
function selector(kinds: readonly ('slot' | 'group' | 'owner')[]) {
  return z.string().transform((s, ctx) => {
    const m = SELECTOR.exec(s);
    const kind = m?.[1] as 'slot' | 'group' | 'owner' | undefined;
    const value = m?.[2] ?? '';
    const valid = kind !== undefined && kinds.includes(kind) && (kind === 'owner' ? Account : Id).safeParse(value).success;
    if (!valid) {
      ctx.addIssue({ code: 'custom', message: `selector must be one of ${kinds.map((k) => `${k}:…`).join(', ')}, got "${s}"` });
      return z.NEVER;
    }
    return { kind: kind as NonNullable<typeof kind>, value };
  });
}
export type Selector = { readonly kind: 'slot' | 'group' | 'owner'; readonly value: string };

export const AclRule = z
  .object({
    id: Id,
    owner: Account,
    from: selector(['slot', 'group', 'owner']),
    to: selector(['slot', 'group']),
    proto: Proto,
    ports: z.array(PortRange).max(16).default([]),
    origin: Origin.optional(),
  })
  .superRefine((r, ctx) => {
    const ported = r.proto === 'tcp' || r.proto === 'udp';
    if (ported && r.ports.length === 0)
      ctx.addIssue({ code: 'custom', path: ['ports'], message: `a ${r.proto} rule needs at least one port range` });
    if (!ported && r.ports.length > 0)
      ctx.addIssue({ code: 'custom', path: ['ports'], message: `a ${r.proto} rule takes no ports` });
    if (r.ports.length < 2) return;
    const sorted = r.ports.map((p, i) => ({ ...p, i })).sort((a, b) => a.from - b.from);
    for (let k = 1; k < sorted.length; k++) {
      const prev = sorted[k - 1]!;
      const cur = sorted[k]!;
      if (cur.from <= prev.to)
        ctx.addIssue({
          code: 'custom',
          path: ['ports', cur.i],
          message: `ports ${cur.from}-${cur.to} overlap ${prev.from}-${prev.to}`,
          params: { sub0: 'overlapping-ports' },
        });
    }
  });

export const BlockRef = z.object({
  number: z.number().int().nonnegative(),
  hash: z.string().regex(/^0x[0-9a-f]{64}$/, 'must be a 0x-prefixed 32-byte hex hash'),
});

export const Network = z.object({
  id: Id,
  /** The network operator (registry admin): may write rules into any slot. */
  operator: Account.optional(),
  name: z.string().max(64).optional(),
});

export type Dvci = Readonly<z.output<typeof Dvci>>;
export type Node = Readonly<z.output<typeof Node>>;
export type Slot = Readonly<z.output<typeof Slot>>;
export type AclRule = Readonly<z.output<typeof AclRule>>;
export type BlockRef = Readonly<z.output<typeof BlockRef>>;
export type Network = Readonly<z.output<typeof Network>>;
export type Resources = Readonly<z.output<typeof Resources>>;
export type NodeId = string;
export type SlotId = string;
export type RuleId = string;

/** The whole network as read from the chain at one (finalized) block. */
export interface ChainSnapshot {
  readonly network: Network;
  readonly block: BlockRef;
  readonly dvcis: readonly Dvci[];
  readonly nodes: readonly Node[];
  readonly slots: readonly Slot[];
  readonly rules: readonly AclRule[];
}
