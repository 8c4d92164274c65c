/**
 * ACL rules governed by a 2-of-3 multisig of the operator's governance accounts: a rule change
 * runs only at the second approval; a single key, even the operator's, is refused by the runtime.
 */
import t from 'tap';
import { governanceSigners } from '../../../controller/chain/local-chain.js';
import type { RegistryChange } from '../../../controller/chain/registry.js';
import { headHash, startTestChain } from './chain-fixture.js';

const c = await startTestChain(t, { ruleGovernance: true });
const [alice, bob, charlie] = await governanceSigners();
const rules = async () => (await c.registry.readSnapshot(await headHash(c))).snapshot.rules.map((r) => r.id);

t.test('a rule change needs two of the three governance approvals', async (t) => {
  const bobAcct = c.account(c.keys.bob);
  await c.registry.submit(
    [{ op: 'create', kind: 'slot', fields: { id: 'db-1', vcpus: 1, memoryMiB: 512, diskGiB: 5, image: 'postgres-16', state: 'defined', groups: ['db'] }, owner: bobAcct }],
    c.operator,
  );
  const allow: RegistryChange = { op: 'create', kind: 'rule', fields: { id: 'app-to-db', from: 'group:app', to: 'group:db', proto: 'tcp', ports: ['5432'] }, owner: bobAcct };

  await t.rejects(c.registry.submit([allow], c.operator), { code: 'permission', message: /uniques\.NoPermission/ }, 'the operator alone is refused by the runtime');

  const first = await c.registry.submit([allow], alice!);
  t.equal(first.status, 'pending-approval');
  t.same(first.approvals, { have: 1, need: 2 });
  t.same(await rules(), [], 'nothing runs at the first approval');
  await t.rejects(c.registry.submit([allow], alice!), { code: 'invalid-input', message: /already approved/ });

  const second = await c.registry.submit([allow], bob!);
  t.equal(second.status, 'applied');
  t.same(await rules(), ['app-to-db'], 'the rule exists after the second approval');
  const { snapshot } = await c.registry.readSnapshot(await headHash(c));
  t.equal(snapshot.rules[0]!.owner, bobAcct, 'owned by the slot owner it was written for');

  const revoke: RegistryChange = { op: 'remove', kind: 'rule', id: 'app-to-db' };
  t.equal((await c.registry.submit([revoke], charlie!)).status, 'pending-approval');
  t.same(await rules(), ['app-to-db']);
  t.equal((await c.registry.submit([revoke], alice!)).status, 'applied');
  t.same(await rules(), [], 'revoked at the second approval');
});
