/**
 * compile(snapshot) -> one NodeConfig per node, plus the issues found. Pure: plain data in, plain
 * data out, compiled once per snapshot; each node receives only what it must enforce, resolved to
 * addresses.
 *
 * Who peers with whom: every active node of a DVCI with every other one (the DVCI's mesh), plus
 * any two nodes whose slots an ACL rule connects. Peers carry the addresses of all slots behind
 * them: routing is reachability, the ACL is permission.
 */
import { issue, type Issue } from './issues.js';
import { describeOverflow, fitAcl } from './acl-capacity.js';
import { indexNetwork, reindexNodes, sameIdentity, type NetworkIndex } from './network-index.js';
import type { NodeConfig, Peer } from './node-config.js';
import { RuleTable } from './rule-table.js';
import type { AclRule, BlockRef, ChainSnapshot, Node, NodeId, RuleId, Slot } from './schema.js';
import { sameList } from './same-list.js';

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
  /** An updateRules without the new rule list: `snap.rules` is stale, updateNodes cannot check against it. */
  private rulesUnknown = false;
  private net: NetworkIndex | undefined;
  private rules: RuleTable | undefined;
  private configs = new Map<NodeId, NodeConfig>();
  /** Nodes whose ACL does not fit the kernel's map, with their issue (fabric/acl-capacity.ts). */
  private readonly capacity = new Map<NodeId, Issue>();
  /** Scratch for assembling peer lists: which nodes this pass has seen, and their id ranks. */
  private seenIn = new Int32Array(0);
  private pass = 0;
  private ranks = new Int32Array(0);

  compile(snapshot: ChainSnapshot): CompileResult {
    this.snap = snapshot;
    this.rulesUnknown = false;
    this.net = indexNetwork(snapshot);
    this.rules = new RuleTable(this.net, snapshot.network.operator, snapshot.rules);
    this.rules.load();
    this.configs = new Map();
    this.capacity.clear();
    const nodes = this.net.nodeList;
    this.seenIn = new Int32Array(nodes.length);
    this.pass = 0;
    this.ranks = new Int32Array(nodes.length);
    for (let ix = 0; ix < nodes.length; ix++) {
      const n = nodes[ix]!;
      if (n.state === 'active' || n.state === 'quarantined') this.configs.set(n.id, this.assemble(ix, snapshot.block));
    }
    return this.result();
  }

  /**
   * Applies rule changes from one block on top of the last compilation (nodes and slots as they
   * were). Returns every config, and which nodes' configs changed content; configs and issues
   * (paths included) are those a full compile of the new rule list gives, provided that list
   * keeps the surviving rules in their order with the new ones after them, in `upserted` order,
   * and that no id in `upserted` or `removed` is held by two rules before or after (the first of
   * two wins in a full compile, which an update cannot tell). Callers that cannot promise this
   * compile in full (the controller does). `rules`, the new rule list when the caller has it,
   * lets a later updateNodes know the snapshot it compiles against (without it, it compiles in full).
   */
  updateRules(block: BlockRef, upserted: readonly AclRule[], removed: readonly RuleId[], rules?: readonly AclRule[]): CompileResult & { changed: ReadonlySet<NodeId> } {
    if (!this.snap || !this.net || !this.rules) throw new Error('updateRules before compile');
    const nodes = this.net.nodeList;
    const touched = new Map([...this.rules.update(upserted, removed)].map((ix) => [nodes[ix]!.id, ix]));
    const changed = new Set<NodeId>();
    const next = new Map<NodeId, NodeConfig>();
    for (const [id, cfg] of this.configs) {
      const ix = touched.get(id);
      if (ix !== undefined) {
        next.set(id, this.assemble(ix, block));
        changed.add(id);
      } else {
        next.set(id, { ...cfg, revision: block });
      }
    }
    this.configs = next;
    this.snap = { ...this.snap, block, ...(rules ? { rules } : {}) };
    if (!rules) this.rulesUnknown = true;
    return { ...this.result(), changed };
  }

  /**
   * Moves to `snapshot`, which differs from the last compiled one only in some nodes' state,
   * endpoints, listen port, capacity or other fields that neither validity nor addresses depend
   * on: the nodes' slots are placed again, the rules that can name those slots resolved again, and
   * only the configs that can differ reassembled (the nodes themselves, their DVCIs' members, the
   * other ends of their rules). Gives what compile(snapshot) gives; undefined when `snapshot`
   * differs in anything else (the caller compiles in full).
   */
  updateNodes(snapshot: ChainSnapshot): (CompileResult & { changed: ReadonlySet<NodeId> }) | undefined {
    const prevSnap = this.snap;
    const prev = this.net;
    const rules = this.rules;
    if (!prevSnap || !prev || !rules || this.rulesUnknown) return undefined;
    if (snapshot.network !== prevSnap.network || !sameList(snapshot.dvcis, prevSnap.dvcis) || !sameList(snapshot.slots, prevSnap.slots) || !sameList(snapshot.rules, prevSnap.rules)) return undefined;
    if (snapshot.nodes.length !== prevSnap.nodes.length) return undefined;
    const changedNodes: Node[] = [];
    for (let i = 0; i < snapshot.nodes.length; i++) {
      const a = prevSnap.nodes[i]!;
      const b = snapshot.nodes[i]!;
      if (a === b) continue;
      if (!sameIdentity(a, b)) return undefined;
      // An entry refused before (a repeated id or key) is refused again, with the same issue.
      if (prev.nodeList[prev.base.ixOf.get(a.id) ?? -1] === a) changedNodes.push(b);
    }
    const next = reindexNodes(prev, snapshot.slots, changedNodes);
    if (!next) return undefined;

    const moved: Slot[] = [];
    prev.base.slotList.forEach((s, si) => prev.placed[si] !== next.placed[si] && moved.push(s));
    const own = new Set<number>(); // nodes whose own config or peer entry changed
    for (let ix = 0; ix < next.nodeList.length; ix++) if (prev.nodeList[ix] !== next.nodeList[ix] || prev.peerEntry[ix] !== next.peerEntry[ix]) own.add(ix);
    const again = new Set<number>(own);
    const add = (ix: number) => again.add(ix);
    for (const ix of own) rules.othersEach(ix, add);
    for (const ix of rules.reindex(next, moved)) again.add(ix);
    for (const ix of own) {
      rules.othersEach(ix, add);
      const dvci = next.nodeList[ix]!.dvci;
      for (const m of prev.dvciMembers.get(dvci) ?? []) again.add(m);
      for (const m of next.dvciMembers.get(dvci) ?? []) again.add(m);
    }

    this.snap = snapshot;
    this.net = next;
    const changed = new Set<NodeId>();
    const configs = new Map<NodeId, NodeConfig>();
    next.nodeList.forEach((n, ix) => {
      if (n.state !== 'active' && n.state !== 'quarantined') return;
      const old = this.configs.get(n.id);
      if (old && !again.has(ix)) configs.set(n.id, { ...old, revision: snapshot.block });
      else {
        configs.set(n.id, this.assemble(ix, snapshot.block));
        changed.add(n.id);
      }
    });
    this.configs = configs;
    return { ...this.result(), changed };
  }

  private result(): CompileResult {
    return { configs: this.configs, issues: [...this.net!.issues, ...this.rules!.issues, ...[...this.capacity].flatMap(([id, i]) => (this.configs.has(id) ? [i] : []))] };
  }

  private assemble(ix: number, block: BlockRef): NodeConfig {
    const net = this.net!;
    const snap = this.snap!;
    const node = net.nodeList[ix]!;
    const addresses = [...net.nodeCidrs[ix]!];
    const base = {
      version: 1 as const,
      network: snap.network.id,
      node: node.id,
      dvci: node.dvci,
      controllers: net.dvciControllers.get(node.dvci) ?? [],
      revision: block,
      interface: { addresses, listenPort: node.listenPort },
    };
    if (node.state !== 'active') {
      this.capacity.delete(node.id);
      return { ...base, mode: 'quarantined', peers: [], slots: [], acl: [] };
    }

    // Peers: the DVCI's mesh and the other ends of this node's rules, once each, in id order.
    const rules = this.rules!;
    const seen = this.seenIn;
    const ranks = this.ranks;
    const pass = ++this.pass;
    seen[ix] = pass;
    let count = 0;
    const visit = (p: number) => {
      if (seen[p] !== pass) {
        seen[p] = pass;
        ranks[count++] = net.idRank[p]!;
      }
    };
    for (const p of net.dvciMembers.get(node.dvci)!) visit(p);
    rules.othersEach(ix, visit);
    ranks.subarray(0, count).sort();
    const peers = new Array<Peer>(count);
    for (let k = 0; k < count; k++) {
      const p = net.byId[ranks[k]!]!;
      peers[k] = net.peerEntry[p]!;
    }
    const fit = fitAcl(rules.entriesOf(ix));
    const acl = fit.kept;
    if (fit.dropped.length === 0) this.capacity.delete(node.id);
    else {
      const at = `nodes[${snap.nodes.indexOf(node)}]`;
      this.capacity.set(node.id, issue('acl-over-capacity', at, `node "${node.id}"'s ACL ${describeOverflow(fit)}: rule${fit.dropped.length > 1 ? 's' : ''} ${fit.dropped.slice(0, 5).join(', ')}${fit.dropped.length > 5 ? ` and ${fit.dropped.length - 5} more` : ''} left out on this node (denied) until it fits`, node.id));
    }

    const slots = (net.placedOn[ix] ?? []).map((p) => ({
      id: p.slot.id,
      ipv4: p.v4,
      ipv6: p.v6,
      vcpus: p.slot.vcpus,
      memoryMiB: p.slot.memoryMiB,
      diskGiB: p.slot.diskGiB,
      image: p.slot.image,
    }));
    return { ...base, mode: 'active', peers, slots, acl };
  }
}
