/**
 * The ACL half of a compilation: expands each chain rule once into the (src, dst, proto, ports)
 * tuples it allows, filed under the nodes that host either end, and counts which node pairs
 * need a WireGuard peering because of it. Kept per rule, so that one changed rule is re-expanded
 * alone (see Compiler.updateRules). Deny by default: nothing is allowed that no rule names.
 */
import { issue, type Issue } from './issues.js';
import type { NetworkIndex, PlacedSlot } from './network-index.js';
import type { AclEntry } from './node-config.js';
import type { AclRule, NodeId, RuleId, Selector } from './schema.js';

interface Expanded {
  readonly rule: AclRule;
  /** The node pairs (a < b) this rule makes peers. */
  readonly pairs: readonly (readonly [NodeId, NodeId])[];
  readonly perNode: ReadonlyMap<NodeId, readonly AclEntry[]>;
}

const ALL_PORTS = [{ from: 0, to: 65535 }] as const;

export class RuleTable {
  private readonly expanded = new Map<RuleId, Expanded>();
  private readonly ruleIssues = new Map<RuleId | number, Issue[]>();
  /** node -> rule -> the entries that node enforces for that rule */
  readonly nodeAcl = new Map<NodeId, Map<RuleId, readonly AclEntry[]>>();
  /** node -> peer node -> number of rules that need the peering */
  readonly peerNeed = new Map<NodeId, Map<NodeId, number>>();

  constructor(private readonly net: NetworkIndex, private readonly operator: string | undefined) {}

  /** Loads a whole rule list; the first entry with an id wins, later ones are reported. */
  load(rules: readonly AclRule[]): Set<NodeId> {
    const touched = new Set<NodeId>();
    rules.forEach((r, i) => {
      if (this.expanded.has(r.id)) {
        this.ruleIssues.set(i, [issue('duplicate-id', `rules[${i}].id`, `rule id "${r.id}" is already taken by an earlier entry`, r.id)]);
        return;
      }
      this.put(r, `rules[${i}]`, touched);
    });
    return touched;
  }

  /** Replaces or removes single rules; returns the nodes whose ACL or peers changed. */
  update(upserted: readonly AclRule[], removed: readonly RuleId[]): Set<NodeId> {
    const touched = new Set<NodeId>();
    for (const id of removed) this.remove(id, touched);
    for (const r of upserted) {
      this.remove(r.id, touched);
      this.put(r, `rules[id=${r.id}]`, touched);
    }
    return touched;
  }

  get issues(): Issue[] {
    return [...this.ruleIssues.values()].flat();
  }

  private remove(id: RuleId, touched: Set<NodeId>): void {
    this.ruleIssues.delete(id);
    const ex = this.expanded.get(id);
    if (!ex) return;
    this.expanded.delete(id);
    for (const n of ex.perNode.keys()) {
      this.nodeAcl.get(n)?.delete(id);
      touched.add(n);
    }
    for (const [a, b] of ex.pairs) {
      this.unneed(a, b);
      this.unneed(b, a);
    }
  }

  private put(r: AclRule, at: string, touched: Set<NodeId>): void {
    const found: Issue[] = [];
    const src = this.resolve(r.from, `${at}.from`, r, found);
    const dst = this.resolve(r.to, `${at}.to`, r, found).filter((d) => {
      if (this.operator === r.owner || d.slot.owner === r.owner) return true;
      if (r.to.kind === 'slot')
        found.push(issue('not-owner', `${at}.to`, `slot "${d.slot.id}" is owned by ${d.slot.owner}, not by the rule's owner ${r.owner}`, r.id));
      return false;
    });
    if (found.some((f) => f.severity === 'error')) {
      this.ruleIssues.set(r.id, found);
      return;
    }
    if (src.length === 0 && r.from.kind !== 'slot')
      found.push(issue('empty-selector', `${at}.from`, `${r.from.kind} "${r.from.value}" matches no placed slot`, r.id, 'warning'));
    if (dst.length === 0 && r.to.kind !== 'slot')
      found.push(issue('empty-selector', `${at}.to`, `${r.to.kind} "${r.to.value}" matches no placed slot that ${r.owner} owns`, r.id, 'warning'));
    if (found.length > 0) this.ruleIssues.set(r.id, found);

    const ranges = r.ports.length > 0 ? r.ports : ALL_PORTS;
    const perNode = new Map<NodeId, AclEntry[]>();
    const pairs: [NodeId, NodeId][] = [];
    const seenPair = new Set<string>();
    for (const s of src) {
      for (const d of dst) {
        if (s === d) continue;
        const entries: AclEntry[] = [];
        for (const p of ranges) {
          entries.push({ rule: r.id, src: s.v4, dst: d.v4, proto: r.proto, ports: [p.from, p.to] });
          entries.push({ rule: r.id, src: s.v6, dst: d.v6, proto: r.proto, ports: [p.from, p.to] });
        }
        file(perNode, s.host, entries);
        if (d.host !== s.host) {
          file(perNode, d.host, entries);
          const [a, b] = s.host < d.host ? [s.host, d.host] : [d.host, s.host];
          const k = `${a}\0${b}`;
          if (!seenPair.has(k)) {
            seenPair.add(k);
            pairs.push([a, b]);
          }
        }
      }
    }
    this.expanded.set(r.id, { rule: r, pairs, perNode });
    for (const [n, entries] of perNode) {
      let m = this.nodeAcl.get(n);
      if (!m) this.nodeAcl.set(n, (m = new Map()));
      m.set(r.id, entries);
      touched.add(n);
    }
    for (const [a, b] of pairs) {
      this.need(a, b);
      this.need(b, a);
    }
  }

  private resolve(sel: Selector, at: string, r: AclRule, found: Issue[]): readonly PlacedSlot[] {
    switch (sel.kind) {
      case 'slot': {
        const p = this.net.placed.get(sel.value);
        if (p) return [p];
        if (!this.net.slotIds.has(sel.value)) found.push(issue('unknown-slot', at, `slot "${sel.value}" does not exist`, r.id));
        return []; // exists but is not placed on an active node now
      }
      case 'group':
        return this.net.groups.get(sel.value) ?? [];
      case 'owner':
        return this.net.owners.get(sel.value) ?? [];
    }
  }

  private need(a: NodeId, b: NodeId): void {
    let m = this.peerNeed.get(a);
    if (!m) this.peerNeed.set(a, (m = new Map()));
    m.set(b, (m.get(b) ?? 0) + 1);
  }

  private unneed(a: NodeId, b: NodeId): void {
    const m = this.peerNeed.get(a);
    const c = m?.get(b);
    if (m === undefined || c === undefined) return;
    if (c <= 1) m.delete(b);
    else m.set(b, c - 1);
  }
}

function file(perNode: Map<NodeId, AclEntry[]>, node: NodeId, entries: readonly AclEntry[]): void {
  const list = perNode.get(node);
  if (list) list.push(...entries);
  else perNode.set(node, [...entries]);
}
