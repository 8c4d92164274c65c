/**
 * The desired ACL of one node across successive configs, kept incrementally. A new config usually
 * changes a rule or two of 10,000s of tuples: rebuilding every tuple key and planning every tuple
 * costs more than the kernel update itself. This keeps the tuples reference-counted (two rules
 * may allow one tuple) and re-derives only the rules whose entries changed, returning the tuple
 * keys whose presence may differ from the previous config: the only keys a plan has to look at
 * when the data plane held the previous config (plan's `aclKeys`).
 *
 * Equal to desiredState(config).acl for the same config, whatever came before (proven in tests).
 */
import { eachAclTuple, type AclTuple } from './dataplane-state.js';
import type { AclEntry, NodeConfig } from './node-config.js';
import { sameList } from './same-list.js';

export class DesiredAcl {
  private readonly held = new Map<string, AclTuple>();
  private readonly counts = new Map<string, number>();
  private byRule = new Map<string, AclEntry[]>();

  /** @param canonical spells a CIDR as the kernel reads it back (identity when already so) */
  constructor(private readonly canonical: (cidr: string) => string = (c) => c) {}

  /** The tuples of the last config, keyed by aclKey(). Updated in place by update(). */
  get acl(): ReadonlyMap<string, AclTuple> {
    return this.held;
  }

  /** Moves to `config`; returns the keys that were added or removed or may have been. */
  update(config: NodeConfig): Set<string> {
    const byRule = new Map<string, AclEntry[]>();
    if (config.mode === 'active') {
      for (const e of config.acl) {
        const list = byRule.get(e.rule);
        if (list) list.push(e);
        else byRule.set(e.rule, [e]);
      }
    }
    const dirty = new Set<string>();
    for (const [rule, list] of byRule) {
      const old = this.byRule.get(rule);
      if (old && sameEntries(old, list)) continue;
      if (old) this.count(old, -1, dirty);
      this.count(list, 1, dirty);
    }
    for (const [rule, old] of this.byRule) if (!byRule.has(rule)) this.count(old, -1, dirty);
    this.byRule = byRule;
    return dirty;
  }

  private count(entries: readonly AclEntry[], by: 1 | -1, dirty: Set<string>): void {
    for (const e of entries) eachAclTuple(e, (key, t) => this.bump(key, t, by, dirty), this.canonical);
  }

  private bump(key: string, t: AclTuple, by: 1 | -1, dirty: Set<string>): void {
    const n = (this.counts.get(key) ?? 0) + by;
    dirty.add(key);
    if (n > 0) {
      this.counts.set(key, n);
      if (!this.held.has(key)) this.held.set(key, t);
    } else {
      this.counts.delete(key);
      this.held.delete(key);
    }
  }
}

function sameEntries(a: readonly AclEntry[], b: readonly AclEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.proto !== y.proto || x.ports[0] !== y.ports[0] || x.ports[1] !== y.ports[1] || !sameList(x.src, y.src) || !sameList(x.dst, y.dst)) return false;
  }
  return true;
}
