/**
 * How the eBPF driver's groups are held in the kernel (see acl.bpf.c): by identity (acl_ident and
 * acl_policy, what nodes run: entries grow with addresses plus rules) or by address pair
 * (acl_rules, the earlier layout, built with -DACL_PAIRS and kept as the benchmark's baseline:
 * entries grow with their product). Both keep the driver's shadow in step with what they wrote.
 */
import { Sub0Error } from '../../fabric/errors.js';
import {
  BATCH_MIN, type BpfMap, decodeIdent, decodePolicy, decodeRule, encodeRules, IDENT_KEY_SIZE, IDENT_VAL_SIZE, identKey, MAX_RANGES,
  packed, POLICY_KEY_SIZE, POLICY_VAL_SIZE, policyKey, putIdent, putPolicyKey, putPolicyValue, RULE_KEY_SIZE, RULE_VAL_SIZE, ruleKey, ruleValue,
} from './bpf-maps.js';
import { IdentityIndex } from './identities.js';
import { RuleSet, type RuleGroup, type ShadowTable } from './rule-set.js';

export type AclLayout = 'identity' | 'pairs';

export interface RuleMaps {
  /** The object's maps this layout uses (besides acl_flows, acl_guard and acl_stats). */
  readonly maps: readonly string[];
  /**
   * What the kernel enforces, read in full, as groups; undefined when the kernel holds exactly
   * what this process last wrote (the shadow is right) and `force` is not set.
   */
  read(force: boolean): RuleSet | undefined;
  /** Writes the changed groups (no ranges: gone); records in `shadow` what the kernel took; pushes failures to `errors`. */
  write(changes: readonly (readonly [string, RuleGroup])[], shadow: ShadowTable, errors: string[]): void;
}

export const MAP_SIZES: Record<string, readonly [number, number]> = {
  acl_rules: [RULE_KEY_SIZE, RULE_VAL_SIZE],
  acl_ident: [IDENT_KEY_SIZE, IDENT_VAL_SIZE],
  acl_policy: [POLICY_KEY_SIZE, POLICY_VAL_SIZE],
};

export function ruleMaps(layout: AclLayout, map: (name: string) => BpfMap): RuleMaps {
  return layout === 'pairs' ? new PairMaps(map('acl_rules')) : new IdentityMaps(map('acl_ident'), map('acl_policy'));
}

/** acl_rules: one entry per (src, dst, proto), written group by group. */
class PairMaps implements RuleMaps {
  readonly maps = ['acl_rules'];
  constructor(private readonly rules: BpfMap) {}

  read(): RuleSet {
    return RuleSet.of(this.rules.entries().map(([k, v]) => decodeRule(k, v)));
  }

  write(changes: readonly (readonly [string, RuleGroup])[], shadow: ShadowTable, errors: string[]): void {
    const updates = changes.filter(([, g]) => g.ranges.length > 0);
    // Many updates (a node joining, a big rule): one batch syscall; the rest, if it stopped, one by one.
    let batched = 0;
    if (updates.length >= BATCH_MIN) {
      const { keys, values } = encodeRules(updates.map(([, g]) => g));
      batched = this.rules.updateBatch(keys, values);
      for (const [id, g] of updates.slice(0, batched)) shadow.remember(id, g);
    }
    const one = (id: string, g: RuleGroup) => {
      try {
        if (g.ranges.length > 0) {
          this.rules.update(ruleKey(g), ruleValue(g.ranges));
          shadow.remember(id, g);
        } else {
          const old = shadow.rules.groups.get(id);
          if (old) this.rules.delete(ruleKey(old));
          shadow.remember(id, undefined);
        }
      } catch (e) {
        errors.push(`${id}: ${(e as Error).message}`);
      }
    };
    for (const [id, g] of updates.slice(batched)) one(id, g);
    for (const [id, g] of changes) if (g.ranges.length === 0) one(id, g);
  }
}

/**
 * acl_ident and acl_policy, planned by an IdentityIndex. The writes go in the index's order
 * (policy added, identities moved, removed, policy removed) and stop at the first the kernel
 * refuses; then the caller's next read reloads the index from the kernel.
 */
class IdentityMaps implements RuleMaps {
  readonly maps = ['acl_ident', 'acl_policy'];
  private readonly index = new IdentityIndex();
  /** The index may not match the kernel (never loaded, or a write failed): the next read reloads it. */
  private loaded = false;

  constructor(private readonly ident: BpfMap, private readonly policy: BpfMap) {}

  read(force: boolean): RuleSet | undefined {
    const ident = new Map(this.ident.entries().map(([k, v]) => [k.toString('hex'), decodeIdent(v)] as const));
    const policy = this.policy.entries().map(([k, v]) => decodePolicy(k, v));
    if (this.loaded && !force && this.index.holds(ident, policy)) return undefined;
    this.loaded = true;
    return RuleSet.of(this.index.load(ident, policy));
  }

  write(changes: readonly (readonly [string, RuleGroup])[], shadow: ShadowTable, errors: string[]): void {
    if (!this.loaded) this.read(true);
    this.index.change(changes.map(([, g]) => g));
    const p = this.index.plan();
    try {
      const pol = packed(p.policyPut.length, POLICY_KEY_SIZE, POLICY_VAL_SIZE, (i, k, ko, v, vo) => {
        putPolicyKey(k, ko, p.policyPut[i]!);
        putPolicyValue(v, vo, p.policyPut[i]!.protos);
      });
      this.policy.updateAll(pol.keys, pol.values);
      const ids = packed(p.identPut.length, IDENT_KEY_SIZE, IDENT_VAL_SIZE, (i, k, ko, v, vo) => putIdent(k, ko, p.identPut[i]!.addr, v, vo, p.identPut[i]!.id));
      this.ident.updateAll(ids.keys, ids.values);
      for (const a of p.identDel) this.ident.delete(identKey(a));
      for (const e of p.policyDel) this.policy.delete(policyKey(e));
    } catch (e) {
      this.loaded = false;
      errors.push(`identities (${p.policyPut.length} policy and ${p.identPut.length} identity entries to write): ${(e as Error).message}`);
      return;
    }
    this.index.written();
    for (const [id, g] of changes) shadow.remember(id, g);
  }
}

/** Refuses a group the kernel value cannot hold (more port ranges than it has room for). */
export function checkRanges(id: string, g: RuleGroup): void {
  if (g.ranges.length > MAX_RANGES) {
    throw new Sub0Error('unsupported', `more than ${MAX_RANGES} port ranges for one (src, dst, proto)`, { where: id });
  }
}
