/**
 * A pass's rule changes as Compiler.updateRules takes them, when updateRules then gives exactly
 * what a full compile of the patched snapshot gives (its preconditions, fabric/compile.ts):
 *  - no id of a changed rule is held by two rules, before or after: the first of two wins in a
 *    full compile, which an update cannot tell;
 *  - rules new to the table (a new item, a refused item that became valid, a changed id) come
 *    after every rule that stays, in item order: a full compile orders rules by item.
 * Otherwise: undefined, and the controller compiles the patched snapshot in full. Pure.
 */
import type { AclRule, RuleId } from '../fabric/schema.js';
import type { ItemChange } from './held-snapshot.js';
import type { ItemRead } from './chain/registry.js';

export interface RuleDelta {
  readonly upserted: readonly AclRule[];
  readonly removed: readonly RuleId[];
}

/**
 * `before`/`after`: the live rule items held before and after the patch, in item order;
 * `changes`: the patch's changes (rules only).
 */
export function ruleDelta(before: readonly ItemRead[], after: readonly ItemRead[], changes: readonly ItemChange[]): RuleDelta | undefined {
  const involved = new Set<RuleId>();
  for (const c of changes) {
    const b = ruleOf(c.before);
    const a = ruleOf(c.after);
    if (b) involved.add(b.id);
    if (a) involved.add(a.id);
  }
  if (heldTwice(before, involved) || heldTwice(after, involved)) return undefined;

  const removed: RuleId[] = [];
  const kept: AclRule[] = [];
  const added: { item: number; rule: AclRule }[] = [];
  for (const c of [...changes].sort((x, y) => x.item - y.item)) {
    const b = ruleOf(c.before);
    const a = ruleOf(c.after);
    if (b && b.id !== a?.id) removed.push(b.id);
    if (a && a.id === b?.id) kept.push(a);
    else if (a) added.push({ item: c.item, rule: a });
  }
  if (added.length > 0) {
    const firstNew = added[0]!.item;
    const isNew = new Set(added.map((x) => x.item));
    // Every rule that stays must come before the new ones.
    for (const it of after) if (it.entry && !isNew.has(it.item) && it.item > firstNew) return undefined;
  }
  return { upserted: [...kept, ...added.map((x) => x.rule)], removed };
}

function ruleOf(it: ItemRead | undefined): AclRule | undefined {
  return it?.entry as AclRule | undefined;
}

function heldTwice(items: readonly ItemRead[], ids: ReadonlySet<RuleId>): boolean {
  if (ids.size === 0) return false;
  const seen = new Set<RuleId>();
  for (const it of items) {
    const id = it.entry?.id;
    if (id === undefined || !ids.has(id)) continue;
    if (seen.has(id)) return true;
    seen.add(id);
  }
  return false;
}
