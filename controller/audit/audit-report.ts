/**
 * What `sub0 audit NODE` answers, as plain data (the CLI prints it, a web view reads its JSON):
 * for each rule the node enforces, the transaction that created it and the one that last changed
 * it; the node's own registration; and the gatekeeper's decisions about it (its `state` changes:
 * quarantine, readmission, retirement). Pure: records, the snapshot's items and the node's
 * config in, the answer out.
 */
import type { NodeConfig } from '../../fabric/node-config.js';
import type { AclRule, Node, NodeId, RuleId } from '../../fabric/schema.js';
import type { ItemRead } from '../chain/registry.js';
import type { AuditRecord } from './audit-record.js';

/** One transaction, as the trail names it. */
export interface AuditTx {
  readonly block: number;
  readonly hash: string;
  /** Its index in the block; null for a change outside extrinsics. */
  readonly extrinsic: number | null;
  readonly event: string;
  readonly signer: string | null;
  /** The wrappers it came through (proxy, multisig), outermost first; empty when signed directly. */
  readonly via: readonly string[];
  /** The account the registry saw acting (the proxied or the multisig account); null when the signer. */
  readonly actor: string | null;
}

export interface RuleAudit {
  readonly rule: RuleId;
  /** Its registry item; null when the chain no longer holds the rule (the node runs an older config). */
  readonly item: number | null;
  readonly from: string | null;
  readonly to: string | null;
  readonly proto: string | null;
  readonly ports: readonly string[];
  /** Null when the index does not reach back to its creation. */
  readonly created: AuditTx | null;
  /** The latest transaction that touched it (the creation when nothing since). */
  readonly lastChanged: AuditTx | null;
  /** How many transactions touched it, creation included. */
  readonly changes: number;
}

export interface Decision extends AuditTx {
  /** The state set; null when the attribute was cleared. */
  readonly state: string | null;
}

export interface NodeAudit {
  readonly node: NodeId;
  readonly item: number;
  readonly state: string;
  readonly registered: AuditTx | null;
  readonly rules: readonly RuleAudit[];
  readonly decisions: readonly Decision[];
}

/**
 * The audit of `node`: the rules of `config` (the one the node runs, or would run), each traced
 * through `records` by the registry item `items` give its id. Returns undefined when no live
 * item holds the node. Where two items claim one id, the oldest is the one fabric keeps.
 */
export function auditNode(records: readonly AuditRecord[], items: readonly ItemRead[], node: NodeId, config: Pick<NodeConfig, 'acl'>): NodeAudit | undefined {
  const nodeItem = firstItem(items, 'node', node);
  if (!nodeItem) return undefined;
  const byItem = groupByItem(records);
  const trail = (kind: string, item: number) => byItem.get(`${kind}/${item}`) ?? [];
  const nodeTrail = trail('node', nodeItem.item);
  const rules: RuleAudit[] = [];
  for (const id of new Set(config.acl.map((e) => e.rule))) {
    const it = firstItem(items, 'rule', id);
    const rule = it?.entry as AclRule | undefined;
    const t = it ? trail('rule', it.item) : [];
    const created = t.find((r) => r.event === 'uniques.Issued');
    rules.push({
      rule: id,
      item: it?.item ?? null,
      from: rule ? `${rule.from.kind}:${rule.from.value}` : null,
      to: rule ? `${rule.to.kind}:${rule.to.value}` : null,
      proto: rule?.proto ?? null,
      ports: rule ? rule.ports.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)) : [],
      created: created ? txOf(created) : null,
      lastChanged: t.length ? txOf(t.at(-1)!) : null,
      changes: new Set(t.map((r) => `${r.block}-${r.extrinsic ?? '-'}`)).size,
    });
  }
  const registered = nodeTrail.find((r) => r.event === 'uniques.Issued');
  const decisions = nodeTrail.filter((r) => r.key === 'state' && r.event !== 'uniques.Issued').map((r) => ({ ...txOf(r), state: r.value ?? null }));
  return { node, item: nodeItem.item, state: (nodeItem.entry as Node).state, registered: registered ? txOf(registered) : null, rules, decisions };
}

function firstItem(items: readonly ItemRead[], kind: 'node' | 'rule', id: string): ItemRead | undefined {
  return items.find((i) => i.kind === kind && i.live && i.entry?.id === id);
}

/** Records by `kind/item`, each list in chain order (block, then extrinsic). */
function groupByItem(records: readonly AuditRecord[]): Map<string, AuditRecord[]> {
  const out = new Map<string, AuditRecord[]>();
  for (const r of records) {
    if (r.item === undefined) continue;
    const k = `${r.kind}/${r.item}`;
    let l = out.get(k);
    if (!l) out.set(k, (l = []));
    l.push(r);
  }
  for (const l of out.values()) l.sort((a, b) => a.block - b.block || (a.extrinsic ?? -1) - (b.extrinsic ?? -1));
  return out;
}

function txOf(r: AuditRecord): AuditTx {
  return { block: r.block, hash: r.hash, extrinsic: r.extrinsic ?? null, event: r.event, signer: r.signer ?? null, via: r.via ?? [], actor: r.actor ?? null };
}
