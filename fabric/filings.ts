/**
 * Where the rule table files what each node enforces: one filing per (rule, node), with the rule's
 * entries for that node and the node's peer(s) it needs.
 *
 * A load appends its filings (a million rules, two filings each at 10,000 nodes) to one log in
 * chain order, then groups the log by node with a counting sort: sequential writes into
 * preallocated arrays instead of thousands of growing per-node lists. A node that updates touch is
 * copied out into a NodeAcl of its own and edited in place.
 */
import type { AclEntry } from './node-config.js';
import type { RuleId } from './schema.js';

/** One entry (the common case), or several for rules with many pairs or port ranges. */
export type Entries = AclEntry | readonly AclEntry[];
/** The other host(s) of the rule's pairs, by node position: -1 when both ends are on the node. */
export type Others = number | readonly number[];

const isList = (l: Entries): l is readonly AclEntry[] => Array.isArray(l);

/** The rule an item of entries comes from. */
export const ruleOf = (l: Entries): RuleId => (isList(l) ? l[0]! : l).rule;

const countOf = (l: Entries): number => (isList(l) ? l.length : 1);

/** Copies `l` into `into` from `at`; returns the next position. */
function copyEntries(l: Entries, into: AclEntry[], at: number): number {
  if (!isList(l)) {
    into[at] = l;
    return at + 1;
  }
  for (const e of l) into[at++] = e;
  return at;
}

function visitOthers(o: Others, visit: (node: number) => void): void {
  if (typeof o !== 'number') for (const p of o) visit(p);
  else if (o >= 0) visit(o);
}

export class FilingLog {
  private len = 0;
  private node: Int32Array; // dropped once grouped
  private readonly entries: Entries[];
  private readonly others: Others[];
  /** Node n's filings are at order[start[n]] .. order[start[n + 1] - 1], in chain order. */
  private start = new Int32Array(1);
  private order = new Int32Array(0);

  /** Sized for `expected` filings; more still fit. */
  constructor(expected: number) {
    this.node = new Int32Array(Math.max(16, expected));
    this.entries = new Array<Entries>(expected);
    this.others = new Array<Others>(expected);
  }

  append(node: number, entries: Entries, others: Others): void {
    const k = this.len++;
    if (k === this.node.length) {
      const grown = new Int32Array(k * 2);
      grown.set(this.node);
      this.node = grown;
    }
    this.node[k] = node;
    this.entries[k] = entries;
    this.others[k] = others;
  }

  /** Counting sort by node, for `nodes` nodes; the log takes no appends after this. */
  group(nodes: number): void {
    const len = this.len;
    const node = this.node;
    this.entries.length = len;
    this.others.length = len;
    const start = new Int32Array(nodes + 1);
    for (let k = 0; k < len; k++) start[node[k]! + 1]!++;
    for (let n = 0; n < nodes; n++) start[n + 1]! += start[n]!;
    const next = start.slice(0, nodes);
    const order = new Int32Array(len);
    for (let k = 0; k < len; k++) order[next[node[k]!]!++] = k;
    this.start = start;
    this.order = order;
    this.node = new Int32Array(0);
  }

  /** Node n's entries in chain order, in an array of their exact size. */
  entriesOf(n: number): AclEntry[] {
    const { start, order, entries } = this;
    let count = 0;
    for (let k = start[n]!, end = start[n + 1]!; k < end; k++) count += countOf(entries[order[k]!]!);
    const out = new Array<AclEntry>(count);
    for (let k = start[n]!, end = start[n + 1]!, at = 0; k < end; k++) at = copyEntries(entries[order[k]!]!, out, at);
    return out;
  }

  /** Calls `visit` with every other host of node n's filings (repeats included). */
  othersEach(n: number, visit: (node: number) => void): void {
    for (let k = this.start[n]!, end = this.start[n + 1]!; k < end; k++) visitOthers(this.others[this.order[k]!]!, visit);
  }

  /** Node n's filings, in chain order. */
  each(n: number, f: (entries: Entries, others: Others) => void): void {
    for (let k = this.start[n]!, end = this.start[n + 1]!; k < end; k++) f(this.entries[this.order[k]!]!, this.others[this.order[k]!]!);
  }
}

/** What one node enforces after updates, one item per rule, as parallel arrays. */
export class NodeAcl {
  /** The rule's position in chain order: entries are assembled in this order. */
  readonly ords: number[] = [];
  readonly lists: Entries[] = [];
  readonly others: Others[] = [];

  add(ord: number, entries: Entries, other: Others): void {
    this.ords.push(ord);
    this.lists.push(entries);
    this.others.push(other);
  }

  removeRule(id: RuleId): void {
    for (let i = this.lists.length - 1; i >= 0; i--) {
      if (ruleOf(this.lists[i]!) === id) {
        this.ords.splice(i, 1);
        this.lists.splice(i, 1);
        this.others.splice(i, 1);
      }
    }
  }

  /** The entries in chain order (items are added in order, updates excepted). */
  entries(): AclEntry[] {
    const ords = this.ords;
    const order = ords.map((_, i) => i).sort((a, b) => ords[a]! - ords[b]!);
    const out: AclEntry[] = [];
    for (const i of order) copyEntries(this.lists[i]!, out, out.length);
    return out;
  }

  othersEach(visit: (node: number) => void): void {
    for (const o of this.others) visitOthers(o, visit);
  }
}
