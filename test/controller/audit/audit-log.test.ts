/**
 * The audit index against the real runtime: the follower hands each touched block to the
 * AuditLog, which records every change with its block, extrinsic index and signer (a proxy's
 * too); the same records come out of the chain alone (rebuildAudit); a block handed over again,
 * or a line torn by a crash, leaves the index as if nothing had happened.
 */
import { readFileSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AUDIT_FILE, CURSOR_FILE, readAuditIndex } from '../../../controller/audit/audit-index.js';
import { AuditLog, rebuildAudit } from '../../../controller/audit/audit-log.js';
import { auditNode } from '../../../controller/audit/audit-report.js';
import { Follower, type TouchedBlock } from '../../../controller/chain/follower.js';
import { authorizeGatekeeper } from '../../../controller/chain/gatekeeper-proxy.js';
import type { RegistryChange, Signer, Submitted } from '../../../controller/chain/registry.js';
import { quietLog, startTestChain } from '../chain/chain-fixture.js';

const c = await startTestChain(t);
const dir = join(c.home, 'controller');
const file = join(dir, AUDIT_FILE);
const cursorFile = join(dir, CURSOR_FILE);
const open = () => AuditLog.open({ file, cursorFile, client: c.client, registry: c.registry.locator, log: quietLog });

/** The index of the extrinsic `r` names in its block, found by hash, apart from the code tested. */
async function extrinsicIndex(r: Submitted): Promise<number> {
  const block = await c.client.api.rpc.chain.getBlock(r.block.hash);
  const i = block.block.extrinsics.findIndex((x) => x.hash.toHex() === r.extrinsic);
  if (i < 0) throw new Error(`extrinsic ${r.extrinsic} is not in block #${r.block.number}`);
  return i;
}

t.test('every change recorded with its transaction; the chain alone gives the same records', async (t) => {
  await c.registry.submit([{ op: 'create', kind: 'dvci', fields: { id: 'lyon' } }], c.operator);
  const log = open();
  const f = await Follower.start({ client: c.client, registry: c.registry, cursorFile, log: quietLog, onBlock: (b) => log.append(b) });
  t.teardown(() => f.stop());
  const submit = (changes: RegistryChange[], signer: Signer = c.operator) => c.registry.submit(changes, signer);

  const node = await submit([{ op: 'create', kind: 'node', fields: { id: 'n1', dvci: 'lyon', wgPublicKey: Buffer.alloc(32, 1).toString('base64'), state: 'active' } }]);
  const rule = await submit([{ op: 'create', kind: 'rule', fields: { id: 'web-to-db', from: 'group:web', to: 'group:db', proto: 'tcp', ports: ['5432'] } }]);
  const ports = await submit([{ op: 'update', kind: 'rule', id: 'web-to-db', fields: { ports: ['5432', '6432'] } }]);
  await authorizeGatekeeper(c.client, c.operator, c.keys.bob.address);
  const gatekeeper: Signer = { pair: c.keys.bob, proxy: { real: c.keys.alice.address } };
  const quarantine = await submit([{ op: 'update', kind: 'node', id: 'n1', fields: { state: 'quarantined' } }], gatekeeper);
  // Another field first, then the state, in one extrinsic: the decision is still its own record.
  const readmit = await submit([{ op: 'update', kind: 'node', id: 'n1', fields: { endpoints: ['192.0.2.1:51820'], state: 'active' } }]);
  await f.reached(readmit.block.number);

  const index = readAuditIndex(dir, c.registry.locator)!;
  t.ok(index, 'the index is there');
  t.ok(index.header.since.number < node.block.number, 'it starts before the first change');
  t.ok(index.through >= readmit.block.number, "it is complete up to the follower's cursor");
  const at = (s: Submitted) => index.records.filter((r) => r.block === s.block.number);
  const alice = c.account(c.keys.alice);
  const bob = c.account(c.keys.bob);

  t.match(at(rule).find((r) => r.kind === 'rule' && r.item !== undefined), { event: 'uniques.Issued', hash: rule.block.hash, extrinsic: await extrinsicIndex(rule), signer: alice }, 'the rule: created by its extrinsic');
  t.notOk(at(rule).find((r) => r.kind === 'rule')!.via, 'signed directly: no via');
  t.match(at(ports).find((r) => r.kind === 'rule'), { event: 'uniques.AttributeSet', key: 'ports', extrinsic: await extrinsicIndex(ports) });
  t.same(
    at(quarantine).map((r) => [r.kind, r.key, r.value, r.signer, r.via, r.actor]),
    [['node', 'state', 'quarantined', bob, ['proxy'], alice]],
    "the quarantine: signed by the gatekeeper, as the operator's proxy",
  );
  t.same(at(readmit).map((r) => [r.key, r.value]), [['ep', undefined], ['state', 'active']], 'the readmission: its own record after the endpoint change');

  const rebuilt = await rebuildAudit(c.client, c.registry, index.header.since.number + 1, index.through);
  t.same(rebuilt, index.records, 'rebuilt from the chain alone: the same records');

  const items = (await c.registry.readSnapshot(readmit.block.hash)).items;
  const audit = auditNode(index.records, items, 'n1', { acl: [{ rule: 'web-to-db', src: ['100.96.0.1/32'], dst: ['100.96.0.2/32'], proto: 'tcp', ports: [5432, 5432] }] })!;
  t.match(audit.registered, { block: node.block.number, extrinsic: await extrinsicIndex(node) });
  t.match(audit.rules[0], { rule: 'web-to-db', created: { block: rule.block.number }, lastChanged: { block: ports.block.number }, changes: 2 });
  t.same(audit.decisions.map((d) => [d.state, d.block, d.via]), [['quarantined', quarantine.block.number, ['proxy']], ['active', readmit.block.number, []]]);
});

t.test('a block handed over again, or torn by a crash, is recorded once', async (t) => {
  const before = readFileSync(file, 'utf8');
  const lastBlock = readAuditIndex(dir, c.registry.locator)!.records.at(-1)!.block;
  const hash = await c.client.rpc<string>('chain_getBlockHash', [lastBlock]);
  const again: TouchedBlock = { block: { number: lastBlock, hash }, touches: await c.registry.touchedBy({ number: lastBlock, hash }) };

  const log = open();
  await log.append(again);
  t.equal(readFileSync(file, 'utf8'), before, 'handed over again: nothing added');

  // A crash in the middle of the last line: it is cut at the next start, then written again.
  truncateSync(file, before.length - 20);
  const repaired = open();
  t.equal(readFileSync(file, 'utf8'), before.slice(0, before.lastIndexOf('\n', before.length - 2) + 1), 'the torn line is gone');
  await repaired.append(again);
  t.equal(readFileSync(file, 'utf8'), before, 'and the block complete again');

  // Without its cursor the follower restarts at the head, leaving a gap: the index starts anew.
  rmSync(cursorFile);
  open();
  t.equal(readFileSync(file, 'utf8'), '', 'no cursor: the old index is dropped (the chain can rebuild it)');
});
