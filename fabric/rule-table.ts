/**
 * The ACL half of a compilation: resolves each chain rule to the slots it connects and files, under
 * each node that hosts either end, the entries for the pairs that touch that node (a source slot
 * there: its egress; a destination slot there: its ingress), with the peers those pairs need.
 * Entries are factored (fabric's AclEntry): a rule between two groups gives a node one entry per
 * direction and port range, with address lists, not one entry per pair.
 * Filed per rule and in snapshot order, so that one changed rule is re-expanded alone (see
 * Compiler.updateRules) and the result is the same as a full compilation of the new state.
 * Deny by default: nothing is allowed that no rule names.
 *
 * This is the hot loop of compile (a million rules at 10,000 nodes): a rule allocates its entries
 * and little else, and both ends of a pair share them (see filings.ts for where they are kept).
 */
import { issue, type Issue } from './issues.js';
import type { NetworkIndex, PlacedSlot } from './network-index.js';
import { FilingLog, NodeAcl, ruleOf, type Entries, type Others } from './filings.js';
import type { AclEntry } from './node-config.js';
import type { AclRule, PortRange, RuleId, Selector, Slot } from './schema.js';
import { repeatedIds } from './repeats.js';

const ALL_PORTS: readonly [number, number] = [0, 65535];

/** A rule's issues, keyed by its position (`ord`); `at` is the path prefix they were raised under. */
interface RuleIssues {
  readonly at: string;
  readonly list: readonly Issue[];
}

export class RuleTable {
  private readonly ruleIssues = new Map<number, RuleIssues>();
  /** Positions of rules removed by updates: the issue paths of later rules move down past them. */
  private readonly dead: number[] = [];
  /** id -> (rule, position): built on the first update, which is the only user. */
  private byId: Map<RuleId, { rule: AclRule; ord: number }> | undefined;
  private nextOrd = 0;
  /** The load's filings (two per rule in the common case). */
  private readonly log: FilingLog;
  /** By node position: the nodes that updates touched, with their filings copied out of the log. */
  private readonly edited: (NodeAcl | undefined)[] = [];

  constructor(private net: NetworkIndex, private readonly operator: string | undefined, private readonly source: readonly AclRule[]) {
    this.log = new FilingLog(2 * source.length);
  }

  /** Loads the whole rule list; the first entry with an id wins, later ones are reported. */
  load(): void {
    const rules = this.source;
    const repeated = repeatedIds(rules);
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (repeated[i]) {
        this.ruleIssues.set(i, { at: `rules[${i}]`, list: [issue('duplicate-id', `rules[${i}].id`, `rule id "${r.id}" is already taken by an earlier entry`, r.id)] });
        continue;
      }
      if (!this.putPair(r, i, undefined)) this.put(r, i, i, undefined);
    }
    this.nextOrd = rules.length;
    this.log.group(this.net.nodeList.length);
  }

  /** Node n's entries, in chain order. */
  entriesOf(n: number): AclEntry[] {
    return this.edited[n]?.entries() ?? this.log.entriesOf(n);
  }

  /** Calls `visit` with every other host of node n's rules (repeats included). */
  othersEach(n: number, visit: (node: number) => void): void {
    const e = this.edited[n];
    if (e) e.othersEach(visit);
    else this.log.othersEach(n, visit);
  }

  /** Files one rule's entries under a node: logged during a load, in the node's own list after. */
  private file(node: number, ord: number, entries: Entries, others: Others): void {
    if (this.byId === undefined) this.log.append(node, entries, others);
    else this.editable(node).add(ord, entries, others);
  }

  /**
   * A node's own list, copied out of the log on first use. A logged filing's position is that of
   * its rule id in byId: the rule has not changed since the load, or its hosts would have been
   * copied out then (removal and upsert resolve the old hosts first).
   */
  private editable(node: number): NodeAcl {
    let e = this.edited[node];
    if (e) return e;
    const copy = (this.edited[node] = new NodeAcl());
    this.log.each(node, (l, o) => copy.add(this.byId!.get(ruleOf(l))!.ord, l, o));
    return copy;
  }

  /** Replaces or removes single rules; returns the nodes (positions) whose ACL or peers may have changed. */
  update(upserted: readonly AclRule[], removed: readonly RuleId[]): Set<number> {
    const byId = (this.byId ??= this.indexRules());
    const touched = new Set<number>();
    for (const id of removed) {
      const ord = byId.get(id)?.ord;
      this.remove(id, touched);
      if (ord !== undefined) this.dead.push(ord);
      byId.delete(id);
    }
    for (const r of upserted) {
      const ord = byId.get(r.id)?.ord ?? this.nextOrd++;
      this.remove(r.id, touched);
      byId.set(r.id, { rule: r, ord });
      if (!this.putPair(r, ord, touched)) this.put(r, ord, `id=${r.id}`, touched);
    }
    return touched;
  }

  /**
   * Moves the table onto `next`, an index of the same slots in which only `moved` were placed
   * elsewhere, or no longer, or again (Compiler.updateNodes): the rules that can name any of them
   * are resolved again, in place (same positions). Returns the nodes whose ACL or peers may have
   * changed.
   */
  reindex(next: NetworkIndex, moved: readonly Slot[]): Set<number> {
    const byId = (this.byId ??= this.indexRules());
    const touched = new Set<number>();
    if (moved.length === 0) {
      this.net = next;
      return touched;
    }
    const slots = new Set<string>();
    const groups = new Set<string>();
    const owners = new Set<string>();
    for (const s of moved) {
      slots.add(s.id);
      owners.add(s.owner);
      for (const g of s.groups) groups.add(g);
    }
    const names = (sel: Selector) => (sel.kind === 'slot' ? slots : sel.kind === 'group' ? groups : owners).has(sel.value);
    const affected = [...byId.values()].filter(({ rule }) => names(rule.from) || names(rule.to)).sort((a, b) => a.ord - b.ord);
    // Removal resolves each rule against the index it was filed with, to find its old hosts.
    for (const { rule } of affected) this.remove(rule.id, touched);
    this.net = next;
    for (const { rule, ord } of affected) if (!this.putPair(rule, ord, touched)) this.put(rule, ord, `id=${rule.id}`, touched);
    return touched;
  }

  /**
   * The rules' issues in chain order, each path naming the rule's index in the current rule list
   * (`rules[12].to`), as a full compilation of the same rules names it: updates append new rules
   * and remove others, so the indexes are worked out here, from the positions.
   */
  get issues(): Issue[] {
    const ords = [...this.ruleIssues.keys()].sort((a, b) => a - b);
    const dead = this.dead.sort((a, b) => a - b);
    const out: Issue[] = [];
    let below = 0; // removed positions before `ord`
    for (const ord of ords) {
      while (below < dead.length && dead[below]! < ord) below++;
      const { at, list } = this.ruleIssues.get(ord)!;
      const want = `rules[${ord - below}]`;
      for (const i of list) out.push(at === want ? i : { ...i, path: want + i.path.slice(at.length) });
    }
    return out;
  }

  private indexRules(): Map<RuleId, { rule: AclRule; ord: number }> {
    const m = new Map<RuleId, { rule: AclRule; ord: number }>();
    this.source.forEach((rule, ord) => {
      if (!m.has(rule.id)) m.set(rule.id, { rule, ord });
    });
    return m;
  }

  private remove(id: RuleId, touched: Set<number>): void {
    const known = this.byId?.get(id);
    if (!known) return;
    this.ruleIssues.delete(known.ord);
    // The network index has not changed since put(), so resolving again finds the same hosts.
    const { src, dst } = this.endpoints(known.rule, 0, undefined);
    const hosts = new Set<number>();
    for (const s of src) hosts.add(s.hostIx);
    for (const d of dst) hosts.add(d.hostIx);
    for (const h of hosts) {
      this.editable(h).removeRule(id);
      touched.add(h);
    }
  }

  /**
   * The common case, one placed slot to another that the rule's owner may open: files it without
   * the general path's temporaries. False when the rule needs the general path (issues included).
   */
  private putPair(r: AclRule, ord: number, touched: Set<number> | undefined): boolean {
    if (r.from.kind !== 'slot' || r.to.kind !== 'slot') return false;
    const s = this.placed(r.from.value);
    const d = this.placed(r.to.value);
    if (!s || !d || (this.operator !== r.owner && d.slot.owner !== r.owner)) return false;
    if (s === d) return true;
    const ps = r.ports;
    let entries: AclEntry | AclEntry[];
    if (ps.length === 0) entries = entry(r, s.cidrs, d.cidrs, ALL_PORTS);
    else if (ps.length === 1) entries = entry(r, s.cidrs, d.cidrs, [ps[0]!.from, ps[0]!.to]);
    else expand(r, s.cidrs, d.cidrs, ps.map(tuple), (entries = []));
    const sh = s.hostIx;
    const dh = d.hostIx;
    if (sh === dh) this.file(sh, ord, entries, -1);
    else {
      this.file(sh, ord, entries, dh);
      this.file(dh, ord, entries, sh);
    }
    touched?.add(sh).add(dh);
    return true;
  }

  /** `at` names the rule in issue paths: its index in the snapshot, or `id=…` for updates. */
  private put(r: AclRule, ord: number, at: number | string, touched: Set<number> | undefined): void {
    const found: Issue[] = [];
    const { src, dst } = this.endpoints(r, at, found);
    if (found.length > 0) {
      this.ruleIssues.set(ord, { at: `rules[${at}]`, list: found });
      if (found.some((f) => f.severity === 'error')) return;
    }
    if (src.length === 0 || dst.length === 0) return; // no pair
    const ranges = r.ports.length > 0 ? r.ports.map(tuple) : [ALL_PORTS];
    const perNode = new Map<number, { entries: AclEntry[]; others: Set<number> }>();
    const at_ = (n: number) => {
      let v = perNode.get(n);
      if (!v) perNode.set(n, (v = { entries: [], others: new Set() }));
      return v;
    };
    const srcOn = byHost(src);
    const dstOn = byHost(dst);
    const allDst = cidrsOf(dst);
    // Egress: the sources on h to every destination.
    for (const [h, mine] of srcOn) {
      if (dst.length === 1 && mine.length === 1 && mine[0] === dst[0]) continue; // only a slot to itself
      const v = at_(h);
      expand(r, cidrsOf(mine), allDst, ranges, v.entries);
      for (const k of dstOn.keys()) if (k !== h) v.others.add(k);
    }
    // Ingress: every other source to the destinations on h (sources on h are in its egress entries).
    const allSrc = cidrsOf(src);
    for (const [h, mine] of dstOn) {
      const from = srcOn.has(h) ? src.filter((s) => s.hostIx !== h) : src;
      if (from.length === 0) continue;
      const v = at_(h);
      expand(r, from === src ? allSrc : cidrsOf(from), cidrsOf(mine), ranges, v.entries);
      for (const k of srcOn.keys()) if (k !== h) v.others.add(k);
    }
    for (const [n, v] of perNode) {
      this.file(n, ord, v.entries, [...v.others]);
      touched?.add(n);
    }
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

  private placed(slot: string): PlacedSlot | undefined {
    return this.placedAt(this.net.slotIx.indexOf(slot));
  }

  private placedAt(ix: number): PlacedSlot | undefined {
    return ix < 0 ? undefined : this.net.placed[ix];
  }

  private resolve(sel: Selector, at: string, r: AclRule, found: Issue[] | undefined): readonly PlacedSlot[] {
    switch (sel.kind) {
      case 'slot': {
        const ix = this.net.slotIx.indexOf(sel.value);
        const p = this.placedAt(ix);
        if (p) return [p];
        if (ix < 0) found?.push(issue('unknown-slot', at, `slot "${sel.value}" does not exist`, r.id));
        return []; // exists but is not placed on an active node now
      }
      case 'group':
        return this.net.groups.get(sel.value) ?? [];
      case 'owner':
        return this.net.owners.get(sel.value) ?? [];
    }
  }
}

const tuple = (p: PortRange): readonly [number, number] => [p.from, p.to];

function entry(r: AclRule, src: readonly string[], dst: readonly string[], ports: readonly [number, number]): AclEntry {
  return { rule: r.id, src: src as string[], dst: dst as string[], proto: r.proto, ports: ports as [number, number] };
}

/** One entry per port range. */
function expand(r: AclRule, src: readonly string[], dst: readonly string[], ranges: readonly (readonly [number, number])[], into: AclEntry[]): void {
  for (const p of ranges) into.push(entry(r, src, dst, p));
}

/** Slots by host position, hosts in order of first appearance, slots in selector order. */
function byHost(slots: readonly PlacedSlot[]): Map<number, PlacedSlot[]> {
  const m = new Map<number, PlacedSlot[]>();
  for (const s of slots) {
    const l = m.get(s.hostIx);
    if (l) l.push(s);
    else m.set(s.hostIx, [s]);
  }
  return m;
}

/** The slots' addresses, each slot's IPv4 then IPv6; a lone slot's shared list. */
function cidrsOf(slots: readonly PlacedSlot[]): readonly string[] {
  if (slots.length === 1) return slots[0]!.cidrs;
  const out = new Array<string>(2 * slots.length);
  for (let i = 0; i < slots.length; i++) {
    out[2 * i] = slots[i]!.v4;
    out[2 * i + 1] = slots[i]!.v6;
  }
  return out;
}
