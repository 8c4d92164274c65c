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
}

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

  // Placement, in snapshot order: the earlier slot gets the capacity.
  const used = new Map<NodeId, { vcpus: number; memoryMiB: number; diskGiB: number }>();
  const placed: PlacedSlot[] = [];
  const slotText = hostCidrText(net, 'slot');
  let valid = 0; // position of the next valid slot: the first of each id
  const placedOn: PlacedSlot[][] = [];
  const groups = new Map<string, PlacedSlot[]>();
  const owners = new Map<string, PlacedSlot[]>();
  snap.slots.forEach((s, i) => {
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
    const v4 = slotAllocation.v4[si]!;
    const a4 = slotText.v4(v4);
    const a6 = slotText.v6(v4);
    const p: PlacedSlot = { slot: s, host: host.id, hostIx, v4: a4, v6: a6, cidrs: [a4, a6] };
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
    const own = nodeCidrs[ix]!;
    const allowedIps = [own[0], own[1]];
    for (const p of placedOn[ix] ?? []) allowedIps.push(p.v4, p.v6);
    peerEntry[ix] = { node: n.id, publicKey: n.wgPublicKey, endpoints: n.endpoints, allowedIps, keepalive: KEEPALIVE_SECONDS };
  });

  return { nodeList, byId, idRank, nodeCidrs, slotIx, placed, placedOn, groups, owners, dvciMembers, dvciControllers, peerEntry, issues };
}

function fmtRes(r: { vcpus: number; memoryMiB: number; diskGiB: number }): string {
  return `${r.vcpus} vCPU / ${r.memoryMiB} MiB / ${r.diskGiB} GiB`;
}
