/**
 * What a node's ACL costs in the kernel, checked at compile time: the agent's eBPF rule map holds
 * one entry per (source address, destination address of the same family, protocol) of the node's
 * ACL entries (ports are in the entry's value), and it has room for ACL_KERNEL_ENTRIES. A config over that would make
 * every apply fail on the node; instead the compiler keeps the node's entries in rule order while
 * they fit, leaves the rest out (deny by default: fail closed) and raises an issue naming them.
 */
import type { AclEntry } from './node-config.js';

/** max_entries of acl_rules in overlay/acl/bpf/acl.bpf.c (a test keeps the two equal). */
export const ACL_KERNEL_ENTRIES = 65_536;

export interface AclFit {
  readonly kept: AclEntry[];
  /** The rules whose entries were left out (in order, once each). */
  readonly dropped: readonly string[];
  /** Kernel entries the kept ones use, and the ones all would have needed (at least); counted only when the quick bound is over capacity. */
  readonly used?: number;
  readonly wanted?: number;
}

/** Fits `entries` into `capacity` kernel entries (pure); cheap when they fit by a wide margin. */
export function fitAcl(entries: AclEntry[], capacity = ACL_KERNEL_ENTRIES): AclFit {
  // An upper bound first: a node's ACL almost always fits far below it.
  // Pairs of both families counted: an over-estimate, as cheap as it gets (every node, every compile).
  let rough = 0;
  for (const e of entries) rough += e.src.length * e.dst.length;
  if (rough <= capacity) return { kept: entries, dropped: [] };
  const keys = new Set<string>();
  const kept: AclEntry[] = [];
  const dropped: string[] = [];
  let left = 0; // kernel entries of the entries left out (shared ones counted again: "at least")
  for (const e of entries) {
    const fresh: string[] = [];
    for (const s of e.src) {
      const v6 = s.includes(':');
      for (const d of e.dst) {
        if (d.includes(':') !== v6) continue; // pairs of one family only, as the agent expands them
        const k = `${s} ${d} ${e.proto}`;
        if (!keys.has(k)) fresh.push(k);
      }
    }
    if (keys.size + fresh.length > capacity) {
      left += fresh.length;
      if (!dropped.includes(e.rule)) dropped.push(e.rule);
      continue;
    }
    for (const k of fresh) keys.add(k);
    kept.push(e);
  }
  return { kept, dropped, used: keys.size, wanted: keys.size + left };
}
