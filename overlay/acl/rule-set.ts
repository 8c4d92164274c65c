/**
 * The ACL as both drivers store it: tuples grouped by (src, dst, protocol number), each group with
 * its list of inclusive destination-port ranges. Pure. One group is one eBPF map entry, and one
 * group's ranges are what the nftables driver merges into its interval set. Grouping makes 10,000
 * tuples about 10,000 keys whatever their port ranges, with no expansion of ranges into ports.
 */
import { aclKey, type AclTuple } from '../../fabric/dataplane-state.js';
import { Sub0Error } from '../../fabric/errors.js';
import { formatHost, parseHost } from './addr.js';

export type ProtoName = AclTuple['proto'];
export type PortRange = readonly [number, number];

export const IPPROTO = { any: 0, icmp: 1, tcp: 6, udp: 17, icmpv6: 58 } as const;

export interface RuleGroup {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  /** IANA number: 0 = any; 1 or 58 = icmp for the family. */
  readonly proto: number;
  readonly ranges: readonly PortRange[];
}

/** The protocol number a tuple's proto means for its address family ('icmp' is ICMPv6 for v6). */
export function protoNumber(proto: ProtoName, family: 4 | 6): number {
  if (proto === 'icmp') return family === 4 ? IPPROTO.icmp : IPPROTO.icmpv6;
  return IPPROTO[proto];
}

export function protoName(n: number): ProtoName | undefined {
  if (n === IPPROTO.any) return 'any';
  if (n === IPPROTO.tcp) return 'tcp';
  if (n === IPPROTO.udp) return 'udp';
  if (n === IPPROTO.icmp || n === IPPROTO.icmpv6) return 'icmp';
  return undefined;
}

export function groupId(src: Uint8Array, dst: Uint8Array, proto: number): string {
  return `${hexOf(src)}>${hexOf(dst)}/${proto}`;
}

/*
 * Memos: a node's 10,000s of tuples name a few hundred addresses, and parsing and formatting them
 * again for every tuple is most of an apply's time. The memoized byte arrays are shared: never
 * written to (ruleKey() copies them into its key).
 */
const hosts = new Map<string, ReturnType<typeof parseHost>>();
const hexes = new WeakMap<Uint8Array, string>();
const texts = new WeakMap<Uint8Array, string>();

function hostOf(text: string): ReturnType<typeof parseHost> {
  let p = hosts.get(text);
  if (p === undefined) {
    p = parseHost(text);
    if (hosts.size >= 100_000) hosts.clear();
    hosts.set(text, p);
  }
  return p;
}

/** The address as 32 hex digits (memoized per array). */
export function hexOf(b: Uint8Array): string {
  let h = hexes.get(b);
  if (h === undefined) {
    h = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
    hexes.set(b, h);
  }
  return h;
}

function textOf(b: Uint8Array): string {
  let s = texts.get(b);
  if (s === undefined) {
    s = formatHost(b);
    texts.set(b, s);
  }
  return s;
}

/** Parses a tuple into its group coordinates; throws Sub0Error 'invalid-input' naming the tuple. */
export function locate(t: AclTuple): { src: Uint8Array; dst: Uint8Array; proto: number; range: PortRange; id: string } {
  const s = hostOf(t.src);
  const d = hostOf(t.dst);
  if (s.family !== d.family) throw new Sub0Error('invalid-input', `mixes IPv4 and IPv6: ${aclKey(t)}`, { where: 'acl' });
  const [lo, hi] = t.ports;
  if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && lo <= hi && hi <= 65535)) {
    throw new Sub0Error('invalid-input', `bad port range: ${aclKey(t)}`, { where: 'acl' });
  }
  // Ports bind TCP and UDP only; the kernel keeps no ranges for the others (see the wire schema).
  if (t.proto !== 'tcp' && t.proto !== 'udp' && (lo !== 0 || hi !== 65535)) {
    throw new Sub0Error('invalid-input', `${t.proto} takes no ports: ${aclKey(t)}`, { where: 'acl' });
  }
  const proto = protoNumber(t.proto, s.family);
  return { src: s.bytes, dst: d.bytes, proto, range: [lo, hi], id: groupId(s.bytes, d.bytes, proto) };
}

/** The tuples a group stands for, keyed by fabric's aclKey(). */
export function groupTuples(g: RuleGroup): AclTuple[] {
  const proto = protoName(g.proto);
  if (proto === undefined) return []; // not one of ours: observe() reports only what we write
  const src = textOf(g.src);
  const dst = textOf(g.dst);
  return g.ranges.map((r) => ({ src, dst, proto, ports: [r[0], r[1]] as [number, number] }));
}

/** Sorted, with overlapping and adjacent ranges joined: what an interval set can hold. */
export function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** A mutable table of groups: the driver's picture of its kernel map, also its decision model. */
export class RuleSet {
  readonly groups = new Map<string, RuleGroup>();

  static of(groups: Iterable<RuleGroup>): RuleSet {
    const s = new RuleSet();
    for (const g of groups) s.groups.set(groupId(g.src, g.dst, g.proto), g);
    return s;
  }

  /** A copy that can change without changing this one (groups are immutable and shared). */
  clone(): RuleSet {
    const s = new RuleSet();
    for (const [id, g] of this.groups) s.groups.set(id, g);
    return s;
  }

  /**
   * The group after adding (true) or removing (false) the tuple; the table itself is unchanged.
   * With `base`, a group this table does not hold is taken from there (this table an overlay of
   * changes over base: only the touched groups, empty ones included, are copied into it).
   */
  with(t: AclTuple, add: boolean, base?: ReadonlyMap<string, RuleGroup>): { id: string; group: RuleGroup } {
    const at = locate(t);
    const cur = this.groups.has(at.id) ? this.groups.get(at.id) : base?.get(at.id);
    const ranges = (cur?.ranges ?? []).filter((r) => !(r[0] === at.range[0] && r[1] === at.range[1]));
    if (add) ranges.push(at.range);
    return { id: at.id, group: { src: at.src, dst: at.dst, proto: at.proto, ranges } };
  }

  set(id: string, g: RuleGroup): void {
    if (g.ranges.length === 0) this.groups.delete(id);
    else this.groups.set(id, g);
  }

  tuples(): Map<string, AclTuple> {
    const out = new Map<string, AclTuple>();
    for (const g of this.groups.values()) for (const t of groupTuples(g)) out.set(aclKey(t), t);
    return out;
  }

  /** The kernel program's decision for a packet, rule part (acl.bpf.c rule_allows). */
  allows(src: Uint8Array, dst: Uint8Array, proto: number, dport: number): boolean {
    const g = this.groups.get(groupId(src, dst, proto));
    const ported = proto === IPPROTO.tcp || proto === IPPROTO.udp;
    if (g && (!ported || g.ranges.some(([lo, hi]) => dport >= lo && dport <= hi))) return true;
    return this.groups.has(groupId(src, dst, IPPROTO.any));
  }
}

/**
 * A driver's shadow of its kernel table (see AclDriver.observe): the groups it wrote or read, and
 * their tuples keyed by aclKey(), kept in step group by group so that serving them costs a copy,
 * not a re-format of 10,000s of groups.
 */
export class ShadowTable {
  rules = new RuleSet();
  private byKey = new Map<string, AclTuple>();

  /** A copy of the tuples, keyed by aclKey(); only those under `keys` when given. */
  tuples(keys?: Iterable<string>): Map<string, AclTuple> {
    if (!keys) return new Map(this.byKey);
    const out = new Map<string, AclTuple>();
    for (const k of keys) {
      const t = this.byKey.get(k);
      if (t) out.set(k, t);
    }
    return out;
  }

  /**
   * Replaces the shadow with a full read of the kernel; returns how many groups differed
   * (added, removed, or with other ranges). Without a difference (and unless `force`), the shadow
   * and its tuples stay as they are.
   */
  replace(read: RuleSet, force = false): number {
    let drift = 0;
    for (const [id, g] of this.rules.groups) if (!sameRanges(g, read.groups.get(id))) drift++;
    for (const id of read.groups.keys()) if (!this.rules.groups.has(id)) drift++;
    if (drift > 0 || force) {
      this.rules = read;
      this.byKey = read.tuples();
    }
    return drift;
  }

  /** Records one group as now held by the kernel (undefined or no ranges: deleted). */
  remember(id: string, g: RuleGroup | undefined): void {
    const old = this.rules.groups.get(id);
    if (old) for (const t of groupTuples(old)) this.byKey.delete(aclKey(t));
    if (g && g.ranges.length > 0) {
      this.rules.groups.set(id, g);
      for (const t of groupTuples(g)) this.byKey.set(aclKey(t), t);
    } else {
      this.rules.groups.delete(id);
    }
  }
}

/** Same ranges, in any order (the nftables record lists them in its own order). */
function sameRanges(a: RuleGroup, b: RuleGroup | undefined): boolean {
  if (b === undefined || a.ranges.length !== b.ranges.length) return false;
  return a.ranges.every((r, i) => (r[0] === b.ranges[i]![0] && r[1] === b.ranges[i]![1]) || b.ranges.some((x) => x[0] === r[0] && x[1] === r[1]));
}
