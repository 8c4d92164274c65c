/**
 * The ACL half of a compilation: expands each chain rule into the (src, dst, proto, ports) tuples
 * it allows, filed under the nodes that host either end, together with the peer each tuple needs.
 * Filed per rule and in snapshot order, so that one changed rule is re-expanded alone (see
 * Compiler.updateRules) and the result is the same as a full compilation of the new state.
 * Deny by default: nothing is allowed that no rule names.
 *
 * This is the hot loop of compile (a million rules at 10,000 nodes): a rule allocates its entries
 * and little else, both ends of a pair share one entry array, and per-node lists are plain arrays.
 */
import { issue, type Issue } from './issues.js';
import type { NetworkIndex, PlacedSlot } from './network-index.js';
import type { AclEntry } from './node-config.js';
import type { AclRule, NodeId, RuleId, Selector } from './schema.js';

const ALL_PORTS: readonly (readonly [number, number])[] = [[0, 65535]];

/** What one node enforces, one item per rule, as parallel arrays (cheap to append to). */
export class NodeAcl {
  /** The rule's position in chain order: lists are assembled in this order. */
  readonly ords: number[] = [];
  /** One entry (the common case), or several for rules with many pairs or port ranges. */
  readonly lists: (AclEntry | readonly AclEntry[])[] = [];
  /** The other host(s) of the rule's pairs: peers this node needs (a lone id in the common case). */
  readonly others: (NodeId | readonly NodeId[] | null)[] = [];

  add(ord: number, entries: AclEntry | readonly AclEntry[], other: NodeId | readonly NodeId[] | null): void {
    this.ords.push(ord);
    this.lists.push(entries);
    this.others.push(other);
  }

  removeRule(id: RuleId): void {
    for (let i = this.lists.length - 1; i >= 0; i--) {
      const l = this.lists[i]!;
      if (('rule' in l ? l : l[0]!).rule === id) {
        this.ords.splice(i, 1);
        this.lists.splice(i, 1);
        this.others.splice(i, 1);
      }
    }
  }

  /** Indexes in chain order (lists are appended in order except after updates). */
  order(): number[] {
    const idx = this.ords.map((_, i) => i);
    for (let i = 1; i < this.ords.length; i++) if (this.ords[i]! < this.ords[i - 1]!) return idx.sort((a, b) => this.ords[a]! - this.ords[b]!);
    return idx;
  }
}

export class RuleTable {
  private readonly ruleIssues = new Map<RuleId | number, Issue[]>();
  /** id -> (rule, position): built on the first update, which is the only user. */
  private byId: Map<RuleId, { rule: AclRule; ord: number }> | undefined;
  private nextOrd = 0;
  readonly nodeAcl = new Map<NodeId, NodeAcl>();

  constructor(private readonly net: NetworkIndex, private readonly operator: string | undefined, private readonly source: readonly AclRule[]) {}

  /** Loads the whole rule list; the first entry with an id wins, later ones are reported. */
  load(): void {
    const seen = new Set<RuleId>();
    const rules = this.source;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (seen.has(r.id)) {
        this.ruleIssues.set(i, [issue('duplicate-id', `rules[${i}].id`, `rule id "${r.id}" is already taken by an earlier entry`, r.id)]);
        continue;
      }
      seen.add(r.id);
      this.put(r, i, i, undefined);
    }
    this.nextOrd = rules.length;
  }

  /** Replaces or removes single rules; returns the nodes whose ACL or peers may have changed. */
  update(upserted: readonly AclRule[], removed: readonly RuleId[]): Set<NodeId> {
    const byId = (this.byId ??= this.indexRules());
    const touched = new Set<NodeId>();
    for (const id of removed) {
      this.remove(id, touched);
      byId.delete(id);
    }
    for (const r of upserted) {
      const ord = byId.get(r.id)?.ord ?? this.nextOrd++;
      this.remove(r.id, touched);
      byId.set(r.id, { rule: r, ord });
      this.put(r, ord, `id=${r.id}`, touched);
    }
    return touched;
  }

  get issues(): Issue[] {
    return [...this.ruleIssues.values()].flat();
  }

  private indexRules(): Map<RuleId, { rule: AclRule; ord: number }> {
    const m = new Map<RuleId, { rule: AclRule; ord: number }>();
    this.source.forEach((rule, ord) => {
      if (!m.has(rule.id)) m.set(rule.id, { rule, ord });
    });
    return m;
  }

  private remove(id: RuleId, touched: Set<NodeId>): void {
    this.ruleIssues.delete(id);
    const known = this.byId?.get(id);
    if (!known) return;
    // The network index has not changed since put(), so resolving again finds the same hosts.
    const { src, dst } = this.endpoints(known.rule, 0, undefined);
    const hosts = new Set<NodeId>();
    for (const s of src) hosts.add(s.host);
    for (const d of dst) hosts.add(d.host);
    for (const h of hosts) {
      this.nodeAcl.get(h)?.removeRule(id);
      touched.add(h);
    }
  }

  /** `at` names the rule in issue paths: its index in the snapshot, or `id=…` for updates. */
  private put(r: AclRule, ord: number, at: number | string, touched: Set<NodeId> | undefined): void {
    const found: Issue[] = [];
    const { src, dst } = this.endpoints(r, at, found);
    if (found.length > 0) {
      this.ruleIssues.set(r.id, found);
      if (found.some((f) => f.severity === 'error')) return;
    }
    const ranges = r.ports.length > 0 ? r.ports.map((p) => [p.from, p.to] as const) : ALL_PORTS;

    if (src.length === 1 && dst.length === 1) {
      // The common case, slot to slot: one shared array, no bookkeeping.
      const s = src[0]!;
      const d = dst[0]!;
      if (s === d) return;
      const entries: AclEntry | AclEntry[] = ranges.length === 1 ? entry(r, s, d, ranges[0]!) : [];
      if (Array.isArray(entries)) expand(r, s, d, ranges, entries);
      if (s.host === d.host) this.acl(s.host).add(ord, entries, null);
      else {
        this.acl(s.host).add(ord, entries, d.host);
        this.acl(d.host).add(ord, entries, s.host);
      }
      touched?.add(s.host).add(d.host);
      return;
    }

    const perNode = new Map<NodeId, { entries: AclEntry[]; others: Set<NodeId> }>();
    const at_ = (n: NodeId) => {
      let v = perNode.get(n);
      if (!v) perNode.set(n, (v = { entries: [], others: new Set() }));
      return v;
    };
    for (const s of src) {
      for (const d of dst) {
        if (s === d) continue;
        const a = at_(s.host);
        expand(r, s, d, ranges, a.entries);
        if (s.host !== d.host) {
          const b = at_(d.host);
          expand(r, s, d, ranges, b.entries);
          a.others.add(d.host);
          b.others.add(s.host);
        }
      }
    }
    for (const [n, v] of perNode) {
      this.acl(n).add(ord, v.entries, [...v.others]);
      touched?.add(n);
    }
  }

  private acl(node: NodeId): NodeAcl {
    let a = this.nodeAcl.get(node);
    if (!a) this.nodeAcl.set(node, (a = new NodeAcl()));
    return a;
  }

  /** Resolves both selectors; only destination slots that the rule's owner may open count. */
  private endpoints(r: AclRule, i: number | string, found: Issue[] | undefined): { src: readonly PlacedSlot[]; dst: readonly PlacedSlot[] } {
    const at = `rules[${i}]`; // a cons string: only flattened if an issue is raised
    const src = this.resolve(r.from, `${at}.from`, r, found);
    let dst = this.resolve(r.to, `${at}.to`, r, found);
    if (this.operator !== r.owner && dst.some((d) => d.slot.owner !== r.owner)) {
      if (r.to.kind === 'slot')
        found?.push(issue('not-owner', `${at}.to`, `slot "${dst[0]!.slot.id}" is owned by ${dst[0]!.slot.owner}, not by the rule's owner ${r.owner}`, r.id));
      dst = dst.filter((d) => d.slot.owner === r.owner);
    }
    if (src.length === 0 && r.from.kind !== 'slot')
      found?.push(issue('empty-selector', `${at}.from`, `${r.from.kind} "${r.from.value}" matches no placed slot`, r.id, 'warning'));
    if (dst.length === 0 && r.to.kind !== 'slot')
      found?.push(issue('empty-selector', `${at}.to`, `${r.to.kind} "${r.to.value}" matches no placed slot that ${r.owner} owns`, r.id, 'warning'));
    return { src, dst };
  }

  private resolve(sel: Selector, at: string, r: AclRule, found: Issue[] | undefined): readonly PlacedSlot[] {
    switch (sel.kind) {
      case 'slot': {
        const p = this.net.placed.get(sel.value);
        if (p) return [p];
        if (!this.net.slotIds.has(sel.value)) found?.push(issue('unknown-slot', at, `slot "${sel.value}" does not exist`, r.id));
        return []; // exists but is not placed on an active node now
      }
      case 'group':
        return this.net.groups.get(sel.value) ?? [];
      case 'owner':
        return this.net.owners.get(sel.value) ?? [];
    }
  }
}

function entry(r: AclRule, s: PlacedSlot, d: PlacedSlot, ports: readonly [number, number]): AclEntry {
  return { rule: r.id, src: s.v4, dst: d.v4, src6: s.v6, dst6: d.v6, proto: r.proto, ports: ports as [number, number] };
}

function expand(r: AclRule, s: PlacedSlot, d: PlacedSlot, ranges: readonly (readonly [number, number])[], into: AclEntry[]): void {
  for (const p of ranges) into.push(entry(r, s, d, p));
}
