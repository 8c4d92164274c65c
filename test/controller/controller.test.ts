/**
 * The controller end to end on the real runtime: registry changes made by signed extrinsics
 * become signed per-node configs in the output directory, only the nodes a change concerns are
 * republished, a restarted controller catches up in one pass and republishes nothing that did
 * not change.
 */
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { connect } from '../../controller/chain/client.js';
import { openRegistry } from '../../controller/chain/open-registry.js';
import type { RegistryChange } from '../../controller/chain/registry.js';
import { Controller } from '../../controller/controller.js';
import { DirectorySink } from '../../controller/publish/directory-sink.js';
import { Publisher, type PublishReport } from '../../controller/publish/publisher.js';
import { loadOrCreateSigningKey } from '../../overlay/signing-key-file.js';
import { verifyConfig } from '../../fabric/signing.js';
import { quietLog, startTestChain } from './chain/chain-fixture.js';

const c = await startTestChain(t);
const state = join(c.home, 'controller');
mkdirSync(state, { recursive: true });
const out = join(state, 'configs');
const { key } = loadOrCreateSigningKey(join(state, 'signing.key'));
const wg = (n: number) => Buffer.alloc(32, n).toString('base64');

async function startController(reports: { block: number; report: PublishReport }[]) {
  const client = await connect(c.chain.endpoint);
  const ctl = await Controller.start({
    client,
    registry: openRegistry(client, c.chain.registry),
    publisher: new Publisher(new DirectorySink(out), key),
    cursorFile: join(state, 'cursor.json'),
    log: quietLog,
    onPublished: (block, report) => reports.push({ block: block.number, report }),
  });
  return {
    ctl,
    stop: async () => {
      await ctl.stop();
      await client.close();
    },
  };
}

const read = (node: string) => verifyConfig(readFileSync(join(out, `${node}.signed`)), [key.publicKey]).config;
const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

t.test('chain changes become signed node configs; only what changed is republished', async (t) => {
  const bob = c.account(c.keys.bob);
  const setup: RegistryChange[] = [
    { op: 'create', kind: 'dvci', fields: { id: 'lyon' } },
    { op: 'create', kind: 'node', fields: { id: 'n1', dvci: 'lyon', wgPublicKey: wg(1), endpoints: ['192.0.2.1:51820'], state: 'active' } },
    { op: 'create', kind: 'node', fields: { id: 'n2', dvci: 'lyon', wgPublicKey: wg(2), endpoints: ['192.0.2.2:51820'], state: 'active' } },
    { op: 'create', kind: 'node', fields: { id: 'n3', dvci: 'lyon', wgPublicKey: wg(3), endpoints: ['192.0.2.3:51820'], state: 'active' } },
    { op: 'create', kind: 'slot', owner: bob, fields: { id: 'web', node: 'n1', state: 'assigned', vcpus: 1, memoryMiB: 512, diskGiB: 5, image: 'debian-12', groups: ['web'] } },
    { op: 'create', kind: 'slot', owner: bob, fields: { id: 'db', node: 'n2', state: 'assigned', vcpus: 1, memoryMiB: 512, diskGiB: 5, image: 'postgres', groups: ['db'] } },
  ];
  const setupBlock = (await c.registry.submit(setup, c.operator)).block;

  const reports: { block: number; report: PublishReport }[] = [];
  const first = await startController(reports);
  await until(() => reports.length > 0, 'the initial publish');
  t.same([...reports[0]!.report.published].sort(), ['n1', 'n2', 'n3'], 'every node gets its config');
  t.same(readdirSync(out).sort(), ['n1.signed', 'n2.signed', 'n3.signed']);
  t.ok(read('n1').revision.number >= setupBlock.number, 'stamped with a finalized block at or after the change');
  t.same(read('n2').acl, [], 'deny by default');

  // Bob opens his db to his web slot: n1 and n2 change, n3 does not.
  // (The operator mints registry items; the rule belongs to Bob, who owns the slots it opens.)
  const allow = await c.registry.submit([{ op: 'create', kind: 'rule', owner: bob, fields: { id: 'web-db', from: 'group:web', to: 'slot:db', proto: 'tcp', ports: ['5432'] } }], c.operator);
  await first.ctl.reached(allow.block.number);
  const last = reports.at(-1)!;
  t.equal(last.block, allow.block.number);
  t.same([...last.report.published].sort(), ['n1', 'n2']);
  t.same(read('n2').acl.map((a) => [a.rule, a.proto, a.ports]), [['web-db', 'tcp', [5432, 5432]]]);
  t.equal(read('n2').revision.hash, allow.block.hash, 'traces to the block of the extrinsic');
  t.ok(read('n3').revision.number < allow.block.number, 'n3 was not republished');
  t.same(first.ctl.stats.byKind, { 'full-read': 1, rules: 1, nodes: 0, compile: 0 }, 'the rule was patched in, not read in full');

  // A quarantine (a node's state) is patched in too: n2 is cut off, n1 and n3 lose it as a peer
  // and n1 the rule's entry; readmitted, all three are as before.
  const before = { n1: read('n1'), n2: read('n2'), n3: read('n3') };
  const quarantine = await c.registry.submit([{ op: 'update', kind: 'node', id: 'n2', fields: { state: 'quarantined' } }], c.operator);
  await first.ctl.reached(quarantine.block.number);
  t.same([...reports.at(-1)!.report.published].sort(), ['n1', 'n2', 'n3']);
  t.equal(read('n2').mode, 'quarantined');
  t.same(read('n2').peers, []);
  t.same(read('n1').peers.map((p) => p.node), ['n3']);
  t.same(read('n1').acl, [], "the rule's other end is gone");
  t.same(read('n3').peers.map((p) => p.node), ['n1']);
  const readmit = await c.registry.submit([{ op: 'update', kind: 'node', id: 'n2', fields: { state: 'active' } }], c.operator);
  await first.ctl.reached(readmit.block.number);
  for (const n of ['n1', 'n2', 'n3'] as const) t.same({ ...read(n), revision: null }, { ...before[n], revision: null }, `${n}: as before the quarantine`);
  t.same(first.ctl.stats.byKind, { 'full-read': 1, rules: 1, nodes: 2, compile: 0 }, 'both were node updates, not full compiles');
  await first.stop();

  // Retired while no controller runs: the next one withdraws n3, and n1 and n2 lose it as a peer.
  const retire = await c.registry.submit([{ op: 'retire', kind: 'node', id: 'n3' }], c.operator);
  const again: { block: number; report: PublishReport }[] = [];
  const second = await startController(again);
  await second.ctl.reached(retire.block.number);
  // One pass at the finalized head, not one per block missed and then one at the head.
  t.equal(again.length, 1, 'the catch-up is one publish');
  t.same(second.ctl.stats.byKind, { 'full-read': 1, rules: 0, nodes: 0, compile: 0 });
  t.same(again[0]!.report.withdrawn, ['n3']);
  t.same([...again[0]!.report.published].sort(), ['n1', 'n2']);
  t.same(read('n1').peers.map((p) => p.node), ['n2']);
  t.same(readdirSync(out).sort(), ['n1.signed', 'n2.signed']);
  await second.stop();

  // A restart with nothing new on chain republishes nothing.
  const third: { block: number; report: PublishReport }[] = [];
  const ctl3 = await startController(third);
  await until(() => third.length >= 1, 'the start-up publish');
  t.same(third[0]!.report, { published: [], unchanged: 2, withdrawn: [], notAuthorized: [] });
  await ctl3.stop();
});
