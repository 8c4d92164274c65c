/**
 * auditNode, the pure part of `sub0 audit`: given the trail's records, the snapshot's items and
 * a node's config, each enforced rule names the transaction that created it and the one that
 * last changed it, and the node's state changes are its gatekeeper decisions.
 */
import t from 'tap';
import type { ItemRead } from '../../../controller/chain/registry.js';
import type { AuditRecord } from '../../../controller/audit/audit-record.js';
import { txLabel } from '../../../controller/audit/audit-record.js';
import { auditNode } from '../../../controller/audit/audit-report.js';
import { AclRule, Node } from '../../../fabric/schema.js';

const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const GATEKEEPER = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const hash = (n: number) => `0x${n.toString(16).padStart(64, '0')}`;
const rec = (block: number, extrinsic: number, kind: AuditRecord['kind'], item: number | undefined, event: string, more: Partial<AuditRecord> = {}): AuditRecord => ({
  block,
  hash: hash(block),
  extrinsic,
  kind,
  item,
  event: `uniques.${event}`,
  signer: ALICE,
  ...more,
});

const rule = (id: string, from: string, to: string, proto: string, ports: string[]) => AclRule.parse({ id, owner: ALICE, from, to, proto, ports });
const node = (id: string, state: string) => Node.parse({ id, owner: ALICE, dvci: 'lab', wgPublicKey: Buffer.alloc(32, 1).toString('base64'), state });
const items: ItemRead[] = [
  { kind: 'node', item: 0, live: true, entry: node('n1', 'active'), issues: [] },
  { kind: 'node', item: 1, live: true, entry: node('n3', 'quarantined'), issues: [] },
  { kind: 'rule', item: 0, live: true, entry: rule('ping-rpc', 'group:web', 'group:rpc', 'icmp', []), issues: [] },
  { kind: 'rule', item: 2, live: true, entry: rule('web-to-db', 'group:web', 'group:db', 'tcp', ['5432', '8000-8100']), issues: [] },
  // A burned rule's item: it is in no snapshot, and another item now holds its id.
  { kind: 'rule', item: 1, live: false, issues: [] },
];
const records: AuditRecord[] = [
  rec(5, 1, 'node', 0, 'Issued'),
  rec(5, 1, 'node', 1, 'Issued'),
  rec(5, 1, 'rule', 0, 'Issued'),
  rec(5, 1, 'rule', undefined, 'AttributeSet', { key: 'next' }), // the collection's counter
  rec(7, 2, 'rule', 2, 'Issued'),
  rec(9, 1, 'rule', 2, 'AttributeSet', { key: 'ports', signer: GATEKEEPER, via: ['proxy'], actor: ALICE }),
  rec(11, 1, 'node', 1, 'AttributeSet', { key: 'state', value: 'quarantined', signer: GATEKEEPER, via: ['proxy'], actor: ALICE }),
  rec(12, 1, 'node', 0, 'AttributeSet', { key: 'ep' }),
];
// Stripped of undefined fields, as the records on disk are.
for (const r of records) for (const k of Object.keys(r) as (keyof AuditRecord)[]) if (r[k] === undefined) delete (r as Record<string, unknown>)[k];
const acl = (...rules: string[]) => ({ acl: rules.map((r) => ({ rule: r, src: ['100.96.0.1/32'], dst: ['100.96.0.2/32'], proto: 'tcp' as const, ports: [1, 1] as [number, number] })) });

t.test('each enforced rule names its creating and its last changing transaction', async (t) => {
  // The config lists a rule once per address family and port range: one row each.
  const a = auditNode(records, items, 'n1', acl('web-to-db', 'ping-rpc', 'web-to-db'))!;
  t.same(a.rules.map((r) => r.rule), ['web-to-db', 'ping-rpc'], 'in the order of the config, once each');
  const [web, ping] = a.rules;
  t.match(web, { item: 2, from: 'group:web', to: 'group:db', proto: 'tcp', ports: ['5432', '8000-8100'], changes: 2 });
  t.match(web!.created, { block: 7, hash: hash(7), extrinsic: 2, event: 'uniques.Issued', signer: ALICE, via: [], actor: null });
  t.match(web!.lastChanged, { block: 9, extrinsic: 1, signer: GATEKEEPER, via: ['proxy'], actor: ALICE }, 'changed through the proxy, acting for the operator');
  t.same(ping!.created, ping!.lastChanged, 'never changed: the creation is the last change');
  t.equal(ping!.changes, 1);
  t.equal(txLabel(web!.created! as { block: number; extrinsic: number }), '#7-2');
});

t.test('a node: its registration and the state changes decided about it', async (t) => {
  const n3 = auditNode(records, items, 'n3', acl())!;
  t.match(n3, { node: 'n3', item: 1, state: 'quarantined', registered: { block: 5, extrinsic: 1 } });
  t.same(n3.decisions.map((d) => [d.state, d.block, d.extrinsic, d.via]), [['quarantined', 11, 1, ['proxy']]]);
  const n1 = auditNode(records, items, 'n1', acl())!;
  t.same(n1.decisions, [], 'another change of a node (its endpoints) is no decision');
});

t.test('what the trail does not reach, and what the chain does not hold', async (t) => {
  const late = records.filter((r) => r.block > 6); // an index that starts after the registration
  const a = auditNode(late, items, 'n1', acl('ping-rpc', 'gone'))!;
  t.equal(a.registered, null, 'registration before the index: unknown, not invented');
  t.match(a.rules[0], { rule: 'ping-rpc', created: null, lastChanged: null, changes: 0 });
  t.match(a.rules[1], { rule: 'gone', item: null, from: null, created: null }, 'a rule of an older config, no longer on chain');
  t.equal(auditNode(records, items, 'n9', acl()), undefined, 'an unknown node: undefined');
});
