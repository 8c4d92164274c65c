/**
 * What a node's ACL costs, checked at compile time. The agent's eBPF program holds an identity
 * per address (acl_ident) and a policy entry per (source identity, destination identity)
 * (acl_policy, protocols and ports in the value), where addresses the rules treat alike share an
 * identity (overlay/acl/identities.ts); the agent itself expands entries into (src, dst) tuples
 * first. A config over either map's size, or over ACL_MAX_TUPLES, would make every apply fail on
 * the node; instead the compiler keeps the node's entries in rule order while they fit, leaves
 * the rest out (deny by default: fail closed) and raises an issue naming them.
 *
 * The count here is an upper bound of the agent's: it gives one identity to the addresses of one
 * family that stand in exactly the same entries on the same sides, which the agent's identities
 * (equal peers, protocols and ports) merge at least as far, and counts a policy entry per
 * identity pair and protocol, where the agent's hold all protocols of a pair in one. Pure, and
 * cheap where it matters: a rule between a group of 10,000 slots and a group of 10 is two
 * identities and one policy key.
 */
import type { AclEntry } from './node-config.js';

/** max_entries of acl_ident and acl_policy in overlay/acl/bpf/acl.bpf.c (a test keeps them equal). */
export const ACL_IDENT_ENTRIES = 65_536;
export const ACL_POLICY_ENTRIES = 65_536;
/**
 * The agent expands entries into (src, dst) tuples before its driver turns them into identities
 * (and the nftables fallback holds the tuples themselves): their number bounds its memory and its
 * apply time, whatever the kernel maps hold. A group of 10,000 to a group of 10 is 100,000.
 */
export const ACL_MAX_TUPLES = 262_144;

export interface AclCost {
  readonly ident: number;
  readonly policy: number;
  /** (src, dst) pairs of one family, summed over the entries. */
  readonly tuples: number;
}

export interface AclFit {
  readonly kept: AclEntry[];
  /** The rules whose entries were left out (in order, once each). */
  readonly dropped: readonly string[];
  /** Kernel entries the kept ones use and all would need (upper bounds); counted only when the quick bound is over capacity. */
  readonly used?: AclCost;
  readonly wanted?: AclCost;
}

export type AclCapacity = AclCost;

const CAPACITY: AclCapacity = { ident: ACL_IDENT_ENTRIES, policy: ACL_POLICY_ENTRIES, tuples: ACL_MAX_TUPLES };

/** Fits `entries` into the kernel maps (pure): the longest prefix, in rule order, that fits. */
export function fitAcl(entries: AclEntry[], capacity: AclCapacity = CAPACITY): AclFit {
  // Upper bounds first: a node's ACL almost always fits far below them.
  let addrs = 0;
  let pairs = 0;
  for (const e of entries) {
    addrs += e.src.length + e.dst.length;
    pairs += e.src.length * e.dst.length;
  }
  if (addrs <= capacity.ident && pairs <= capacity.policy && pairs <= capacity.tuples) return { kept: entries, dropped: [] };
  const fits = (c: AclCost) => c.ident <= capacity.ident && c.policy <= capacity.policy && c.tuples <= capacity.tuples;
  const wanted = aclCost(entries);
  if (fits(wanted)) return { kept: entries, dropped: [] };
  // Costs only grow with a longer prefix (more addresses, finer identities, more keys): bisect.
  let lo = 0;
  let hi = entries.length - 1; // entries[0, lo) fit; the whole list does not
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (fits(aclCost(entries.slice(0, mid)))) lo = mid;
    else hi = mid - 1;
  }
  const kept = entries.slice(0, lo);
  const dropped: string[] = [];
  for (const e of entries.slice(lo)) if (!dropped.includes(e.rule)) dropped.push(e.rule);
  return { kept, dropped, used: aclCost(kept), wanted };
}

/** Identity and policy entries `entries` need at most (see the file comment). */
export function aclCost(entries: readonly AclEntry[]): AclCost {
  // Each address's places: which entries name it, on which side.
  const places = new Map<string, string>();
  entries.forEach((e, i) => {
    for (const a of e.src) places.set(a, `${places.get(a) ?? ''}s${i},`);
    for (const a of e.dst) places.set(a, `${places.get(a) ?? ''}d${i},`);
  });
  const ids = new Map<string, number>();
  const idOf = new Map<string, number>();
  for (const [a, p] of places) {
    const key = `${a.includes(':') ? 6 : 4}|${p}`;
    let id = ids.get(key);
    if (id === undefined) ids.set(key, (id = ids.size));
    idOf.set(a, id);
  }
  const keys = new Set<string>();
  const named = new Set<string>();
  let tuples = 0;
  for (const e of entries) {
    for (const v6 of [false, true]) {
      const s = e.src.filter((a) => a.includes(':') === v6);
      const d = e.dst.filter((a) => a.includes(':') === v6);
      tuples += s.length * d.length;
      if (s.length === 0 || d.length === 0) continue; // no pair of this family: no kernel entry
      for (const a of s) named.add(a);
      for (const a of d) named.add(a);
      const sids = new Set(s.map((a) => idOf.get(a)!));
      const dids = new Set(d.map((a) => idOf.get(a)!));
      for (const x of sids) for (const y of dids) keys.add(`${x}:${y}:${e.proto}`);
    }
  }
  return { ident: named.size, policy: keys.size, tuples };
}

/** The figures of a fit over capacity, for issues and refusals. */
export function describeOverflow(fit: AclFit): string {
  const w = fit.wanted ?? { ident: 0, policy: 0, tuples: 0 };
  return `needs up to ${w.ident} address and ${w.policy} policy entries in the kernel and ${w.tuples} tuples in the agent, over the ${ACL_IDENT_ENTRIES}, ${ACL_POLICY_ENTRIES} and ${ACL_MAX_TUPLES} a node holds`;
}
