/**
 * The node and slot half of a compilation: validates cross-references between DVCIs, nodes and
 * slots, allocates addresses, places slots on their hosts and builds each node's peer entry once
 * (shared by reference by every config that lists that peer). Pure.
 */
import { allocateV4, hostCidrText } from './address.js';
import { issue, type Issue } from './issues.js';
import type { Peer } from './node-config.js';
import type { ChainSnapshot, Node, NodeId, Slot } from './schema.js';
import { StringIndex } from './string-index.js';
import { sameList } from './same-list.js';

export const KEEPALIVE_SECONDS = 25;

export interface PlacedSlot {
  readonly slot: Slot;
  readonly host: NodeId;
  readonly hostIx: number; // the host's position in NetworkIndex.nodeList
  readonly v4: string; // host cidr
  readonly v6: string;
  /** [v4, v6]: an ACL entry's address list for this slot alone, shared by every entry of it. */
  readonly cidrs: readonly string[];
}

/**
 * Per-node and per-slot data is held in arrays by position (valid entries in snapshot order), so
 * that the rule loop and config assembly index arrays instead of hashing ids.
 */
export interface NetworkIndex {
  readonly nodeList: readonly Node[]; // valid nodes, any state
  /** Node positions sorted by node id (peer lists are in id order), and each node's rank there. */
  readonly byId: Int32Array;
  readonly idRank: Int32Array;
  readonly nodeCidrs: readonly (readonly [string, string])[];
  /** Every valid slot's position by id, placed or not; placed slots by position. */
  readonly slotIx: StringIndex;
  readonly placed: readonly (PlacedSlot | undefined)[];
  readonly placedOn: readonly (readonly PlacedSlot[] | undefined)[];
  readonly groups: ReadonlyMap<string, readonly PlacedSlot[]>;
  readonly owners: ReadonlyMap<string, readonly PlacedSlot[]>;
  readonly dvciMembers: ReadonlyMap<string, readonly number[]>; // active nodes per DVCI
  /** Each DVCI's authorized controller keys, sorted (one array shared by its nodes' configs). */
  readonly dvciControllers: ReadonlyMap<string, string[]>;
  readonly peerEntry: readonly (Peer | undefined)[]; // active nodes only
  readonly issues: readonly Issue[];
  /** What placement starts from: valid entries, their addresses, the issues found before placing. */
  readonly base: IndexBase;
}

/** The half of an index that a node's state, endpoints or capacity cannot change. */
interface IndexBase {
  readonly net: string;
  readonly ixOf: ReadonlyMap<NodeId, number>;
  readonly slotList: readonly Slot[];
  readonly slotV4: Uint32Array;
  readonly issues: readonly Issue[];
}

/** The node fields that decide validity and addresses: a change to any other leaves `base` as it is. */
const IDENTITY = ['id', 'dvci', 'wgPublicKey', 'seq', 'salt'] as const;

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

export function indexNetwork(snap: Pick<ChainSnapshot, 'network' | 'dvcis' | 'nodes' | 'slots'>): NetworkIndex {
  const issues: Issue[] = [];
  const net = snap.network.id;

  const dvcis = new Set<string>();
  const dvciControllers = new Map<string, string[]>();
  snap.dvcis.forEach((d, i) => {
    if (dvcis.has(d.id)) issues.push(issue('duplicate-id', `dvcis[${i}].id`, `DVCI id "${d.id}" is already taken by an earlier entry`, d.id));
    else {
      dvcis.add(d.id);
      dvciControllers.set(d.id, [...(d.controllers ?? [])].sort());
    }
  });

  const nodeList: Node[] = [];
  const ixOf = new Map<NodeId, number>();
  const keys = new Map<string, NodeId>();
  snap.nodes.forEach((n, i) => {
    const at = `nodes[${i}]`;
    if (ixOf.has(n.id)) return void issues.push(issue('duplicate-id', `${at}.id`, `node id "${n.id}" is already taken by an earlier entry`, n.id));
    if (!dvcis.has(n.dvci)) return void issues.push(issue('unknown-dvci', `${at}.dvci`, `DVCI "${n.dvci}" does not exist`, n.id));
    const holder = keys.get(n.wgPublicKey);
    if (holder !== undefined)
      return void issues.push(issue('duplicate-key', `${at}.wgPublicKey`, `WireGuard key is already used by node "${holder}"`, n.id));
    keys.set(n.wgPublicKey, n.id);
    ixOf.set(n.id, nodeList.length);
    nodeList.push(n);
  });

  const slotIx = new StringIndex(snap.slots.length);
  const slotList: Slot[] = [];
  snap.slots.forEach((s, i) => {
    if (slotIx.add(s.id) < 0) issues.push(issue('duplicate-id', `slots[${i}].id`, `slot id "${s.id}" is already taken by an earlier entry`, s.id));
    else slotList.push(s);
  });

  // Every entry that exists keeps its address reserved, whatever its state.
  const nodeV4 = allocateV4(net, 'node', nodeList).v4;
  const slotAllocation = allocateV4(net, 'slot', slotList);
  for (const m of slotAllocation.moved)
    issues.push(issue('address-collision', `slots`, `first-choice address is held by older slot "${m.heldBy}"; moved after ${m.attempts} attempts`, m.id, 'warning'));

  const nodeText = hostCidrText(net, 'node');
  const nodeCidrs = nodeList.map((_, ix): readonly [string, string] => [nodeText.v4(nodeV4[ix]!), nodeText.v6(nodeV4[ix]!)]);
  const byId = Int32Array.from(nodeList.keys()).sort((a, b) => (nodeList[a]!.id < nodeList[b]!.id ? -1 : 1));
  const idRank = new Int32Array(nodeList.length);
  byId.forEach((n, rank) => (idRank[n] = rank));

  const base: IndexBase = { net, ixOf, slotList, slotV4: slotAllocation.v4, issues };
  return place({ nodeList, byId, idRank, nodeCidrs, slotIx, dvciControllers, base }, snap.slots, undefined);
}

/**
 * The index after some valid nodes changed (`changed` replaces the valid node of the same id; the
 * slots are those indexed before), without validating and allocating again. Undefined when a
 * change touches what those decide (IDENTITY): index in full then. Unchanged slots and nodes keep
 * their PlacedSlot and Peer objects, so that what is built from them compares (and encodes, see
 * encoding.ts) as before.
 */
export function reindexNodes(prev: NetworkIndex, slots: readonly Slot[], changed: readonly Node[]): NetworkIndex | undefined {
  const nodeList = [...prev.nodeList];
  for (const n of changed) {
    const ix = prev.base.ixOf.get(n.id);
    if (ix === undefined) return undefined;
    if (!sameIdentity(nodeList[ix]!, n)) return undefined;
    nodeList[ix] = n;
  }
  return place({ ...prev, nodeList }, slots, prev);
}

/** Whether two entries of one node agree on everything that decides validity and addresses. */
export function sameIdentity(a: Node, b: Node): boolean {
  return IDENTITY.every((f) => a[f] === b[f]);
}

type Placeable = Pick<NetworkIndex, 'nodeList' | 'byId' | 'idRank' | 'nodeCidrs' | 'slotIx' | 'dvciControllers' | 'base'>;

/** Places slots on their hosts and builds each active node's peer entry; reuses `prev`'s objects where nothing changed. */
function place(ix0: Placeable, allSlots: readonly Slot[], prev: NetworkIndex | undefined): NetworkIndex {
  const { nodeList, nodeCidrs, base } = ix0;
  const { ixOf, slotList, slotV4 } = base;
  const issues = [...base.issues];
  // Placement, in snapshot order: the earlier slot gets the capacity.
  const used = new Map<NodeId, { vcpus: number; memoryMiB: number; diskGiB: number }>();
  const placed: (PlacedSlot | undefined)[] = [];
  const slotText = hostCidrText(base.net, 'slot');
  let valid = 0; // position of the next valid slot: the first of each id
  const placedOn: PlacedSlot[][] = [];
  const groups = new Map<string, PlacedSlot[]>();
  const owners = new Map<string, PlacedSlot[]>();
  allSlots.forEach((s, i) => {
    if (slotList[valid] !== s) return; // a duplicate id
    const si = valid++;
    if (s.state !== 'assigned' || s.node === null) return;
    const hostIx = ixOf.get(s.node);
    const host = hostIx === undefined ? undefined : nodeList[hostIx]!;
    if (hostIx === undefined || !host) return void issues.push(issue('unknown-node', `slots[${i}].node`, `node "${s.node}" does not exist or was refused`, s.id));
    if (host.state !== 'active') return; // placed again when its host is admitted
    if (host.capacity) {
      const cap = host.capacity;
      if (s.vcpus > cap.vcpus || s.memoryMiB > cap.memoryMiB || s.diskGiB > cap.diskGiB)
        return void issues.push(issue('impossible-resources', `slots[${i}]`, `needs ${fmtRes(s)} but node "${host.id}" has only ${fmtRes(cap)} in all`, s.id));
      const u = used.get(host.id) ?? { vcpus: 0, memoryMiB: 0, diskGiB: 0 };
      if (u.vcpus + s.vcpus > cap.vcpus || u.memoryMiB + s.memoryMiB > cap.memoryMiB || u.diskGiB + s.diskGiB > cap.diskGiB)
        return void issues.push(issue('over-capacity', `slots[${i}]`, `needs ${fmtRes(s)}; node "${host.id}" has ${fmtRes({ vcpus: cap.vcpus - u.vcpus, memoryMiB: cap.memoryMiB - u.memoryMiB, diskGiB: cap.diskGiB - u.diskGiB })} left`, s.id));
      used.set(host.id, { vcpus: u.vcpus + s.vcpus, memoryMiB: u.memoryMiB + s.memoryMiB, diskGiB: u.diskGiB + s.diskGiB });
    }
    const before = prev?.placed[si];
    let p: PlacedSlot;
    if (before && before.hostIx === hostIx && before.slot === s) p = before;
    else {
      const a4 = slotText.v4(slotV4[si]!);
      const a6 = slotText.v6(slotV4[si]!);
      p = { slot: s, host: host.id, hostIx, v4: a4, v6: a6, cidrs: [a4, a6] };
    }
    placed[si] = p;
    (placedOn[hostIx] ??= []).push(p);
    for (const g of s.groups) push(groups, g, p);
    push(owners, s.owner, p);
  });

  const dvciMembers = new Map<string, number[]>();
  const peerEntry: Peer[] = [];
  nodeList.forEach((n, ix) => {
    if (n.state !== 'active') return;
    push(dvciMembers, n.dvci, ix);
    const old = prev?.peerEntry[ix];
    if (old && prev!.nodeList[ix] === n && sameList(prev!.placedOn[ix], placedOn[ix])) return void (peerEntry[ix] = old);
    const own = nodeCidrs[ix]!;
    const allowedIps = [own[0], own[1]];
    for (const p of placedOn[ix] ?? []) allowedIps.push(p.v4, p.v6);
    peerEntry[ix] = { node: n.id, publicKey: n.wgPublicKey, endpoints: n.endpoints, allowedIps, keepalive: KEEPALIVE_SECONDS };
  });

  return { ...ix0, placed, placedOn, groups, owners, dvciMembers, peerEntry, issues };
}

function fmtRes(r: { vcpus: number; memoryMiB: number; diskGiB: number }): string {
  return `${r.vcpus} vCPU / ${r.memoryMiB} MiB / ${r.diskGiB} GiB`;
}
