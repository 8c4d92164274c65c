import t from 'tap';
import { compile } from '../../fabric/compile.js';
import { aclKey, desiredState, emptyState, type DataplaneState } from '../../fabric/dataplane-state.js';
import { DesiredAcl } from '../../fabric/desired-acl.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { applyOps, plan, type Op } from '../../fabric/plan.js';
import { labSnapshot } from '../helpers/fabric-fixtures.js';

type Raw = Record<string, any>;
const OWNER = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
const n2 = (mutate?: (raw: Raw) => void): NodeConfig => compile(labSnapshot(mutate)).configs.get('n2')!;
const sorted = (m: ReadonlyMap<string, unknown>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
const opSet = (ops: readonly Op[]) => ops.map((o) => `${o.op} ${'key' in o ? o.key : ''}`).sort();

/** Successive configs of n2, each a typical chain change. */
const steps: [string, NodeConfig][] = [
  ['initial', n2()],
  ['a port added to a rule', n2((raw) => raw.rules[0].ports.push('8080'))],
  ['a rule removed', n2((raw) => raw.rules.splice(1, 1))],
  ['a rule that allows tuples another rule allows too', n2((raw) => raw.rules.push({ ...raw.rules[0], id: 'web-to-rpc-copy' }))],
  ['the copy removed: the tuples stay, the first rule still allows them', n2()],
  ['the first rule removed too', n2((raw) => raw.rules.splice(0, 1))],
  ['a slot joins a group: the group rules get a longer address list', n2((raw) => raw.slots.push({ ...raw.slots[0], id: 'web-2', seq: 9 }))],
  ['and leaves it', n2()],
  ['a new rule', n2((raw) => raw.rules.push({ id: 'db-to-rpc', owner: OWNER, from: 'slot:db-1', to: 'slot:rpc-1', proto: 'udp', ports: ['53'] }))],
  ['quarantined', n2((raw) => (raw.nodes[1].state = 'quarantined'))],
  ['active again', n2()],
  ['the same config again', n2()],
];

t.test('DesiredAcl equals desiredState at every step, and its keys plan what a full plan does', async (t) => {
  const d = new DesiredAcl();
  let held: DataplaneState = emptyState();
  for (const [name, config] of steps) {
    const dirty = d.update(config);
    const full = desiredState(config);
    t.same(sorted(d.acl), sorted(full.acl), `${name}: the same tuples as a full derivation`);
    const desired = { ...full, acl: d.acl };
    const hinted = plan(desired, held, { aclKeys: dirty });
    t.same(opSet(hinted), opSet(plan(full, held)), `${name}: the hinted plan is the full plan`);
    held = applyOps(held, hinted);
    t.same(plan(full, held), [], `${name}: applying it reaches the config`);
  }
  t.equal(d.update(steps.at(-1)![1]).size, 0, 'an unchanged config names no key');
});

t.test('a changed rule names only its own tuples', async (t) => {
  const d = new DesiredAcl();
  d.update(n2());
  const dirty = d.update(n2((raw) => (raw.rules[1].ports = ['5433'])));
  t.ok(dirty.size > 0);
  t.ok([...dirty].every((k) => k.includes(':5432-5432') || k.includes(':5433-5433')), 'only rpc-to-db tuples');
});

t.test('CIDRs are spelled as the kernel reads them back', async (t) => {
  const d = new DesiredAcl((c) => c.toUpperCase());
  d.update(n2());
  t.ok([...d.acl.values()].every((v) => v.src === v.src.toUpperCase() && v.dst === v.dst.toUpperCase()));
  t.ok([...d.acl].every(([k, v]) => k === aclKey(v)), 'keys carry the canonical spelling');
});
