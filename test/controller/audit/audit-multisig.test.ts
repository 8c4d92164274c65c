/**
 * A rule created by a governance multisig (2 of 3) is recorded with the signer of the last
 * approval, as the multisig account: the audit says it came through the multisig.
 */
import t from 'tap';
import { recordsAt } from '../../../controller/audit/audit-log.js';
import { governanceSigners } from '../../../controller/chain/local-chain.js';
import type { RegistryChange } from '../../../controller/chain/registry.js';
import { actingAccount } from '../../../controller/chain/submit.js';
import { startTestChain } from '../chain/chain-fixture.js';

const c = await startTestChain(t, { ruleGovernance: true });
const [alice, bob] = await governanceSigners();

t.test("a multisig's change names its last approver and the multisig account", async (t) => {
  const allow: RegistryChange = { op: 'create', kind: 'rule', fields: { id: 'app-to-db', from: 'group:app', to: 'group:db', proto: 'tcp', ports: ['5432'] } };
  t.equal((await c.registry.submit([allow], alice!)).status, 'pending-approval');
  const applied = await c.registry.submit([allow], bob!);
  t.equal(applied.status, 'applied');
  const touches = await c.registry.touchedBy(applied.block);
  const records = await recordsAt(c.client, { block: applied.block, touches });
  const rule = records.find((r) => r.kind === 'rule' && r.event === 'uniques.Issued');
  t.match(rule, { block: applied.block.number, signer: c.account(bob!.pair), via: ['multisig'], actor: c.account(actingAccount(alice!, 42)) });
});
