/**
 * Identities for the eBPF ACL's maps (acl.bpf.c: acl_ident, address -> identity; acl_policy,
 * (source identity, destination identity) -> what the first may send the second, by protocol),
 * computed from the driver's groups. Pure: the driver writes the plans this returns.
 *
 * An address's signature is what the rules say about it: the (peer, protocol, ranges) of every
 * group it is the source of, and of every group it is the destination of. Addresses with equal
 * signatures share an identity, and policy(id(s), id(d), p) holds the ranges of group (s, d, p).
 * Exact: if some group (s', d', p, r) put (id(s), id(d), p) -> r in the policy, then s's signature,
 * equal to s''s, holds (d', p, r) as a source, so the group (s, d', p, r) exists; and d's, equal to
 * d''s, holds (s, p, r) as a destination, so (s, d, p, r) exists. A rule between a group of 10,000
 * slots and a group of 10 is 10,010 identity entries and one policy entry.
 *
 * Changes are incremental. An identity keeps its number while one of its members keeps its
 * signature; a member whose signature changed leaves it and joins the identity of its new
 * signature (found by a hash of the signature, confirmed by comparing the two in full, so a hash
 * collision can only cost time) or a new one. An identity's signature therefore never changes, a
 * policy entry is added or removed but never rewritten, and the driver's write order (policy
 * entries added, addresses moved, addresses removed, policy entries removed) lets each packet
 * through by the rules before the change or after it, never by a mix that neither allowed.
 * A number freed by one plan is reused only after that plan was written in full.
 */
import { Sub0Error } from '../../fabric/errors.js';
import { isMappedV4 } from './addr.js';
import { hexOf, type PortRange, type RuleGroup } from './rule-set.js';

/** One protocol of a policy entry: its number (0 = any) and destination port ranges. */
export interface PolicyProto {
  readonly proto: number;
  readonly ranges: readonly PortRange[];
}

/** One acl_policy entry: what identity `sid` may send identity `did`. */
export interface PolicyEntry {
  readonly sid: number;
  readonly did: number;
  readonly protos: readonly PolicyProto[];
}

/** Kernel writes, to be made in this order. */
export interface IdentityPlan {
  readonly policyPut: readonly PolicyEntry[];
  readonly identPut: readonly { readonly addr: Uint8Array; readonly id: number }[];
  readonly identDel: readonly Uint8Array[];
  readonly policyDel: readonly PolicyEntry[];
}

/** One group seen from one of its ends: the other end, the protocol, the ranges key, its hashes. */
interface Elem {
  readonly peer: Addr;
  readonly proto: number;
  readonly rk: string;
  readonly h0: number;
  readonly h1: number;
}

interface Addr {
  readonly hex: string;
  readonly bytes: Uint8Array;
  /** A number of its own in this index: elements are keyed by peer number x 256 + protocol. */
  readonly n: number;
  /** Groups with this address as source, by destination and protocol. */
  readonly out: Map<number, Elem>;
  /** Groups with this address as destination, by source and protocol. */
  readonly in: Map<number, Elem>;
  /** Sums (mod 2^32) of two hashes of each element: out, out, in, in. */
  readonly h: Uint32Array;
  cls: Cls | undefined;
}

interface Cls {
  readonly id: number;
  readonly key: string;
  readonly members: Set<Addr>;
}

/** A policy entry and, per protocol, its ranges and how many groups need them. */
interface Policy {
  readonly sid: number;
  readonly did: number;
  readonly protos: Map<number, { readonly rk: string; refs: number }>;
}

/** Canonical text of a policy entry's value, to compare with what the kernel holds. */
function valueKey(protos: Iterable<readonly [number, string]>): string {
  return [...protos].sort((a, b) => a[0] - b[0]).map(([p, rk]) => `${p}=${rk}`).join(';');
}

/** Canonical text of a range list: sorted, `lo-hi` joined by commas. */
export function rangesKey(ranges: readonly PortRange[]): string {
  return [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([lo, hi]) => `${lo}-${hi}`).join(',');
}

function rangesOf(rk: string): PortRange[] {
  return rk.split(',').map((r) => {
    const [lo, hi] = r.split('-');
    return [Number(lo), Number(hi)] as const;
  });
}

/** rangesKey's hashes, memoized: a node's groups share a handful of range lists. */
const rkHashes = new Map<string, readonly [number, number]>();
let lastRk = '';
let lastHash: readonly [number, number] = [0, 0];
function rkHash(rk: string): readonly [number, number] {
  if (rk === lastRk) return lastHash; // the groups of one rule come in a row
  let h = rkHashes.get(rk);
  if (h === undefined) {
    let a = 0x811c9dc5;
    let b = 0x9747b28c;
    for (let i = 0; i < rk.length; i++) {
      a = Math.imul(a ^ rk.charCodeAt(i), 0x01000193);
      b = Math.imul(b ^ rk.charCodeAt(i), 0x5bd1e995);
      b ^= b >>> 13;
    }
    h = [a >>> 0, b >>> 0];
    if (rkHashes.size >= 10_000) rkHashes.clear();
    rkHashes.set(rk, h);
  }
  lastRk = rk;
  lastHash = h;
  return h;
}

/** An element with its two 32-bit hashes (of peer, protocol and ranges: murmur3-style finalizers). */
function elem(peer: Addr, proto: number, rk: string): Elem {
  const [r0, r1] = rkHash(rk);
  const k = Math.imul(peer.n, 0x9e3779b1) ^ (proto << 24);
  let a = Math.imul(k ^ r0, 0x85ebca6b);
  a ^= a >>> 13;
  a = Math.imul(a, 0xc2b2ae35);
  a ^= a >>> 16;
  let b = Math.imul(k + r1, 0xcc9e2d51);
  b ^= b >>> 15;
  b = Math.imul(b, 0x1b873593);
  b ^= b >>> 16;
  return { peer, proto, rk, h0: a >>> 0, h1: b >>> 0 };
}

/** The single-range case without sorting: almost every group. */
function rangesKeyOf(ranges: readonly PortRange[]): string {
  return ranges.length === 1 ? `${ranges[0]![0]}-${ranges[0]![1]}` : rangesKey(ranges);
}

export class IdentityIndex {
  private readonly addrs = new Map<string, Addr>();
  private readonly buckets = new Map<string, Cls[]>();
  private readonly policy = new Map<PairKey, Policy>();
  /** What the kernel holds, as far as written plans and the last load say (policy: value keys). */
  private readonly identK = new Map<string, number>();
  private readonly policyK = new Map<PairKey, string>();
  private readonly dirtyAddr = new Set<string>();
  private readonly dirtyPolicy = new Set<PairKey>();
  private nextId = 1;
  private nextN = 1;
  private free: number[] = [];
  private released: number[] = [];

  /** Entries the kernel maps will hold once the pending plan is written. */
  get counts(): { readonly ident: number; readonly policy: number } {
    return { ident: this.addrs.size, policy: this.policy.size };
  }

  /**
   * Applies changed groups (no ranges: the group is gone). Costs the degree of the addresses whose
   * signature changed: their groups move from the policy keys of their old identities to those of
   * their new ones.
   */
  change(groups: Iterable<RuleGroup>): void {
    const real: { g: RuleGroup; rk: string | undefined; s: Addr; d: Addr }[] = [];
    const was = new Set<Addr>(); // existing addresses whose signature changes
    const fresh = new Set<Addr>(); // addresses new to the index
    for (const g of groups) {
      const rk = g.ranges.length > 0 ? rangesKeyOf(g.ranges) : undefined;
      let s = this.addrs.get(hexOf(g.src));
      let d = this.addrs.get(hexOf(g.dst));
      if ((s && d ? s.out.get(d.n * 256 + g.proto)?.rk : undefined) === rk) continue;
      // A group that is not there and is not wanted has returned above: rk is set here.
      if (s) was.add(s);
      else fresh.add((s = this.addr(hexOf(g.src), g.src)));
      if (d) was.add(d);
      else fresh.add((d = this.addr(hexOf(g.dst), g.dst)));
      real.push({ g, rk, s, d });
    }
    if (real.length === 0) return;
    // Every group an end of which changes leaves its policy key (counted once: from its source
    // when the source changes, else from its destination).
    for (const a of was) {
      for (const e of a.out.values()) this.unref(a.cls!.id, e.peer.cls!.id, e.proto);
      for (const e of a.in.values()) if (!was.has(e.peer)) this.unref(e.peer.cls!.id, a.cls!.id, e.proto);
    }
    const changed = new Set<Addr>(was);
    for (const a of fresh) changed.add(a);
    for (const { g, rk, s, d } of real) {
      setElem(s, 0, d.n * 256 + g.proto, rk === undefined ? undefined : elem(d, g.proto, rk));
      setElem(d, 2, s.n * 256 + g.proto, rk === undefined ? undefined : elem(s, g.proto, rk));
    }
    for (const a of changed) this.leave(a);
    for (const a of changed) {
      this.dirtyAddr.add(a.hex);
      if (a.out.size === 0 && a.in.size === 0) this.addrs.delete(a.hex);
      else this.join(a);
    }
    // And takes the policy key of its ends' new identities.
    for (const a of changed) {
      if (!a.cls) continue;
      for (const e of a.out.values()) this.ref(a.cls.id, e.peer.cls!.id, e.proto, e.rk);
      for (const e of a.in.values()) if (!changed.has(e.peer)) this.ref(e.peer.cls!.id, a.cls.id, e.proto, e.rk);
    }
  }

  /** The kernel writes that take the maps from what they hold to what the groups need. */
  plan(): IdentityPlan {
    const policyPut: PolicyEntry[] = [];
    const policyDel: PolicyEntry[] = [];
    const identPut: { addr: Uint8Array; id: number }[] = [];
    const identDel: Uint8Array[] = [];
    for (const key of this.dirtyPolicy) {
      const want = this.policy.get(key);
      const held = this.policyK.get(key);
      if (want && held !== valueOf(want)) {
        policyPut.push({ sid: want.sid, did: want.did, protos: [...want.protos].map(([proto, e]) => ({ proto, ranges: rangesOf(e.rk) })) });
      } else if (!want && held !== undefined) {
        policyDel.push({ ...pairOf(key), protos: [] });
      }
    }
    for (const hex of this.dirtyAddr) {
      const a = this.addrs.get(hex);
      const held = this.identK.get(hex);
      if (a && held !== a.cls!.id) identPut.push({ addr: a.bytes, id: a.cls!.id });
      else if (!a && held !== undefined) identDel.push(Uint8Array.from(Buffer.from(hex, 'hex')));
    }
    return { policyPut, identPut, identDel, policyDel };
  }

  /** The kernel took every write of the last plan(): its numbers freed become reusable. */
  written(): void {
    for (const key of this.dirtyPolicy) {
      const want = this.policy.get(key);
      if (want) this.policyK.set(key, valueOf(want));
      else this.policyK.delete(key);
    }
    for (const hex of this.dirtyAddr) {
      const a = this.addrs.get(hex);
      if (a) this.identK.set(hex, a.cls!.id);
      else this.identK.delete(hex);
    }
    this.dirtyPolicy.clear();
    this.dirtyAddr.clear();
    this.free.push(...this.released);
    this.released = [];
  }

  /** Whether the kernel maps, as read, hold exactly what this index believes they hold. */
  holds(ident: ReadonlyMap<string, number>, policy: readonly PolicyEntry[]): boolean {
    if (ident.size !== this.identK.size || policy.length !== this.policyK.size) return false;
    for (const [hex, id] of ident) if (this.identK.get(hex) !== id) return false;
    return policy.every((p) => this.policyK.get(pairKey(p.sid, p.did)) === valueKey(p.protos.map((x) => [x.proto, rangesKey(x.ranges)])));
  }

  /**
   * Starts over from a read of the kernel maps (ident: address hex -> id) and returns the groups
   * they enforce: every (s, d) of one family whose identities a policy entry joins. The kernel's
   * numbers are kept for the identities whose members all have one signature (what this index
   * writes); the members of any other are given new ones, and the next plan rewrites them.
   */
  load(ident: ReadonlyMap<string, number>, policy: readonly PolicyEntry[]): RuleGroup[] {
    this.addrs.clear();
    this.buckets.clear();
    this.policy.clear();
    this.identK.clear();
    this.policyK.clear();
    this.dirtyAddr.clear();
    this.dirtyPolicy.clear();
    this.free = [];
    this.released = [];
    let max = 0;
    const members = new Map<number, Uint8Array[]>();
    for (const [hex, id] of ident) {
      this.identK.set(hex, id);
      this.dirtyAddr.add(hex);
      max = Math.max(max, id);
      const bytes = Uint8Array.from(Buffer.from(hex, 'hex'));
      let m = members.get(id);
      if (!m) members.set(id, (m = []));
      m.push(bytes);
    }
    const groups: RuleGroup[] = [];
    for (const p of policy) {
      const key = pairKey(p.sid, p.did);
      this.policyK.set(key, valueKey(p.protos.map((x) => [x.proto, rangesKey(x.ranges)])));
      this.dirtyPolicy.add(key);
      max = Math.max(max, p.sid, p.did);
      for (const s of members.get(p.sid) ?? []) {
        for (const d of members.get(p.did) ?? []) {
          if (isMappedV4(s) !== isMappedV4(d)) continue;
          for (const x of p.protos) groups.push({ src: s, dst: d, proto: x.proto, ranges: x.ranges });
        }
      }
    }
    this.nextId = max + 1;
    for (const g of groups) {
      const rk = rangesKey(g.ranges);
      const s = this.addr(hexOf(g.src), g.src);
      const d = this.addr(hexOf(g.dst), g.dst);
      setElem(s, 0, d.n * 256 + g.proto, elem(d, g.proto, rk));
      setElem(d, 2, s.n * 256 + g.proto, elem(s, g.proto, rk));
    }
    // Keep the kernel's numbers where they are what this index would write; place the rest after.
    const homeless: Addr[] = [];
    for (const [id, bytes] of members) {
      const as = bytes.map((b) => this.addrs.get(hexOf(b))).filter((a): a is Addr => a !== undefined);
      if (as.length === 0) continue;
      // The members with the signature most of them share keep the number.
      const parts: Addr[][] = [];
      const byKey = new Map<string, Addr[][]>();
      for (const a of as) {
        const k = classKey(a);
        const same = byKey.get(k) ?? [];
        const part = same.find((p) => sameSignature(p[0]!, a));
        if (part) part.push(a);
        else {
          same.push([a]);
          byKey.set(k, same);
          parts.push(same[same.length - 1]!);
        }
      }
      const keep = parts.reduce((x, y) => (y.length > x.length ? y : x));
      const cls: Cls = { id, key: classKey(keep[0]!), members: new Set(keep) };
      for (const a of keep) a.cls = cls;
      this.bucket(cls.key).push(cls);
      for (const p of parts) if (p !== keep) homeless.push(...p);
    }
    for (const a of homeless) this.join(a);
    for (const a of this.addrs.values()) {
      this.dirtyAddr.add(a.hex);
      for (const e of a.out.values()) this.ref(a.cls!.id, e.peer.cls!.id, e.proto, e.rk);
    }
    return groups;
  }

  private addr(hex: string, bytes: Uint8Array): Addr {
    let a = this.addrs.get(hex);
    if (!a) {
      a = { hex, bytes, n: this.nextN++, out: new Map(), in: new Map(), h: new Uint32Array(4), cls: undefined };
      this.addrs.set(hex, a);
    }
    return a;
  }

  private bucket(key: string): Cls[] {
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = []));
    return b;
  }

  private leave(a: Addr): void {
    const c = a.cls;
    if (!c) return;
    a.cls = undefined;
    c.members.delete(a);
    if (c.members.size > 0) return;
    const b = this.buckets.get(c.key)!;
    b.splice(b.indexOf(c), 1);
    if (b.length === 0) this.buckets.delete(c.key);
    this.released.push(c.id);
  }

  private join(a: Addr): void {
    const key = classKey(a);
    const b = this.bucket(key);
    for (const c of b) {
      const rep = c.members.values().next().value as Addr;
      if (sameSignature(a, rep)) {
        c.members.add(a);
        a.cls = c;
        return;
      }
    }
    const c: Cls = { id: this.free.pop() ?? this.nextId++, key, members: new Set([a]) };
    if (c.id > 0xffffffff) throw new Sub0Error('unsupported', 'identity numbers exhausted', { where: 'acl/identities' });
    b.push(c);
    a.cls = c;
  }

  private unref(sid: number, did: number, proto: number): void {
    const key = pairKey(sid, did);
    const p = this.policy.get(key)!;
    const x = p.protos.get(proto)!;
    if (--x.refs > 0) return;
    p.protos.delete(proto);
    if (p.protos.size === 0) this.policy.delete(key);
    this.dirtyPolicy.add(key);
  }

  private ref(sid: number, did: number, proto: number, rk: string): void {
    const key = pairKey(sid, did);
    let p = this.policy.get(key);
    if (!p) this.policy.set(key, (p = { sid, did, protos: new Map() }));
    const x = p.protos.get(proto);
    if (!x) {
      p.protos.set(proto, { rk, refs: 1 });
      this.dirtyPolicy.add(key);
      return;
    }
    // Equal signatures give equal ranges (see the file comment): anything else is a bug here.
    if (x.rk !== rk) throw new Sub0Error('internal', `identity policy ${sid}:${did} protocol ${proto} holds ${x.rk}, a group needs ${rk}`, { where: 'acl/identities' });
    x.refs++;
  }
}

/** A policy entry's key: a number while both identities are below 2^21 (always, for the numbers this index gives). */
type PairKey = number | string;
const ID_BITS = 0x200000;

function pairKey(sid: number, did: number): PairKey {
  return sid < ID_BITS && did < ID_BITS ? sid * ID_BITS + did : `${sid}:${did}`;
}

function pairOf(key: PairKey): { sid: number; did: number } {
  if (typeof key === 'number') return { sid: Math.floor(key / ID_BITS), did: key % ID_BITS };
  const [sid, did] = key.split(':').map(Number) as [number, number];
  return { sid, did };
}

function valueOf(p: Policy): string {
  return valueKey([...p.protos].map(([proto, x]) => [proto, x.rk]));
}

/** Sets or deletes (undefined) one element of a signature side (0: out, 2: in), keeping its hash sums. */
function setElem(a: Addr, side: 0 | 2, key: number, e: Elem | undefined): void {
  const map = side === 0 ? a.out : a.in;
  const old = map.get(key);
  if (old !== undefined) {
    a.h[side] = a.h[side]! - old.h0;
    a.h[side + 1] = a.h[side + 1]! - old.h1;
  }
  if (e === undefined) {
    map.delete(key);
  } else {
    map.set(key, e);
    a.h[side] = a.h[side]! + e.h0;
    a.h[side + 1] = a.h[side + 1]! + e.h1;
  }
}

function classKey(a: Addr): string {
  return `${a.h[0]}.${a.h[1]}.${a.out.size}|${a.h[2]}.${a.h[3]}.${a.in.size}`;
}

function sameSignature(a: Addr, b: Addr): boolean {
  if (a.out.size !== b.out.size || a.in.size !== b.in.size) return false;
  for (const [k, v] of a.out) if (b.out.get(k)?.rk !== v.rk) return false;
  for (const [k, v] of a.in) if (b.in.get(k)?.rk !== v.rk) return false;
  return true;
}
