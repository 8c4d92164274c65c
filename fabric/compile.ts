/**
 * compile(snapshot) -> one NodeConfig per node, plus the issues found. Pure: plain data in, plain
 * data out, compiled once per snapshot; each node receives only what it must enforce, resolved to
 * addresses.
 *
 * Who peers with whom: every active node of a DVCI with every other one (the DVCI's mesh), plus
 * any two nodes whose slots an ACL rule connects. Peers carry the addresses of all slots behind
 * them: routing is reachability, the ACL is permission.
 */
import type { Issue } from './issues.js';
import { indexNetwork, type NetworkIndex } from './network-index.js';
import type { AclEntry, NodeConfig, Peer, Route } from './node-config.js';
import { RuleTable } from './rule-table.js';
import type { AclRule, BlockRef, ChainSnapshot, NodeId, RuleId } from './schema.js';

export interface CompileResult {
  readonly configs: ReadonlyMap<NodeId, NodeConfig>;
  readonly issues: readonly Issue[];
}

export function compile(snapshot: ChainSnapshot): CompileResult {
  return new Compiler().compile(snapshot);
}

/**
 * Keeps the index of the last compilation so that a change to a few rules recompiles only the
 * nodes they touch. `compile` and `updateRules` give the same configs for the same chain state.
 */
export class Compiler {
  private snap: ChainSnapshot | undefined;
  private net: NetworkIndex | undefined;
  private rules: RuleTable | undefined;
  private configs = new Map<NodeId, NodeConfig>();

  compile(snapshot: ChainSnapshot): CompileResult {
    this.snap = snapshot;
    this.net = indexNetwork(snapshot);
    this.rules = new RuleTable(this.net, snapshot.network.operator, snapshot.rules);
    this.rules.load();
    this.configs = new Map();
    for (const n of this.net.nodes.values()) {
      if (n.state === 'active' || n.state === 'quarantined') this.configs.set(n.id, this.assemble(n.id, snapshot.block));
    }
    return this.result();
  }

  /**
   * Applies rule changes from one block on top of the last compilation (nodes and slots as they
   * were). Returns every config, and which nodes' configs changed content.
   */
  updateRules(block: BlockRef, upserted: readonly AclRule[], removed: readonly RuleId[]): CompileResult & { changed: ReadonlySet<NodeId> } {
    if (!this.snap || !this.net || !this.rules) throw new Error('updateRules before compile');
    const touched = this.rules.update(upserted, removed);
    const changed = new Set<NodeId>();
    const next = new Map<NodeId, NodeConfig>();
    for (const [id, cfg] of this.configs) {
      if (touched.has(id)) {
        next.set(id, this.assemble(id, block));
        changed.add(id);
      } else {
        next.set(id, { ...cfg, revision: block });
      }
    }
    this.configs = next;
    this.snap = { ...this.snap, block };
    return { ...this.result(), changed };
  }

  private result(): CompileResult {
    return { configs: this.configs, issues: [...this.net!.issues, ...this.rules!.issues] };
  }

  private assemble(id: NodeId, block: BlockRef): NodeConfig {
    const net = this.net!;
    const snap = this.snap!;
    const node = net.nodes.get(id)!;
    const addresses = [...net.nodeCidrs.get(id)!];
    const base = {
      version: 1 as const,
      network: snap.network.id,
      node: id,
      dvci: node.dvci,
      revision: block,
      interface: { addresses, listenPort: node.listenPort },
    };
    if (node.state !== 'active') return { ...base, mode: 'quarantined', peers: [], routes: [], slots: [], acl: [] };

    const nodeAcl = this.rules!.nodeAcl.get(id);
    const peerIds = new Set<NodeId>(net.dvciMembers.get(node.dvci));
    if (nodeAcl) {
      for (const o of nodeAcl.others) {
        if (typeof o === 'string') peerIds.add(o);
        else if (o) for (const p of o) peerIds.add(p);
      }
    }
    peerIds.delete(id);
    const peers: Peer[] = [];
    const routes: Route[] = [];
    for (const p of [...peerIds].sort()) {
      peers.push(net.peerEntry.get(p)!);
      routes.push(net.peerRoutes.get(p)!);
    }

    const acl: AclEntry[] = [];
    if (nodeAcl) {
      for (const i of nodeAcl.order()) {
        const l = nodeAcl.lists[i]!;
        if ('rule' in l) acl.push(l);
        else for (const e of l) acl.push(e);
      }
    }

    const slots = (net.placedOn.get(id) ?? []).map((p) => ({
      id: p.slot.id,
      ipv4: p.v4,
      ipv6: p.v6,
      vcpus: p.slot.vcpus,
      memoryMiB: p.slot.memoryMiB,
      diskGiB: p.slot.diskGiB,
      image: p.slot.image,
    }));
    return { ...base, mode: 'active', peers, routes, slots, acl };
  }
}
