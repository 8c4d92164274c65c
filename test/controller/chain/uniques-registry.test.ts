/**
 * The Uniques registry against the real runtime: what is written by signed extrinsics reads
 * back as the same snapshot; the runtime itself refuses strangers; malformed attributes become
 * issues for their items only.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { compile } from '../../../fabric/compile.js';
import { isSub0Error } from '../../../fabric/errors.js';
import { parseSnapshot } from '../../../fabric/parse-snapshot.js';
import type { ChainSnapshot } from '../../../fabric/schema.js';
import { connect } from '../../../controller/chain/client.js';
import { importSnapshot } from '../../../controller/chain/import-snapshot.js';
import { openRegistry } from '../../../controller/chain/open-registry.js';
import { txFn } from '../../../controller/chain/pallets.js';
import { readPrefix } from '../../../controller/chain/storage-pages.js';
import { submitCall } from '../../../controller/chain/submit.js';
import { assembleSnapshot } from '../../../controller/chain/assemble-snapshot.js';
import type { EntryKind, ItemRead } from '../../../controller/chain/registry.js';
import { itemAttrPrefix } from '../../../controller/chain/uniques-reader.js';
import { headHash, startTestChain, type TestChain } from './chain-fixture.js';

const lab = parseSnapshot(JSON.parse(readFileSync(new URL('../../../fabric/examples/lab.json', import.meta.url), 'utf8'))).snapshot;
// Keys no lab node uses (fabric refuses a second node with a key already taken).
const KEY_A = Buffer.alloc(32, 7).toString('base64');
const KEY_B = Buffer.alloc(32, 9).toString('base64');

const c: TestChain = await startTestChain(t);
const read = async () => c.registry.readSnapshot(await headHash(c));

/** lab.json as the chain names things: accounts in its SS58 format, seq = creation order. */
function labAsOnChain(): Omit<ChainSnapshot, 'block'> {
  const acct = (s: string) => c.account(s);
  return {
    network: { id: 'lab', operator: acct(c.keys.alice.address) },
    dvcis: lab.dvcis.map((d) => ({ ...d, operator: acct(d.operator) })),
    nodes: lab.nodes.map((n, i) => ({ ...n, owner: acct(n.owner), seq: i })),
    slots: lab.slots.map((s, i) => ({ ...s, owner: acct(s.owner), seq: i })),
    rules: lab.rules.map((r) => ({ ...r, owner: acct(r.owner), from: r.from.kind === 'owner' ? { kind: 'owner' as const, value: acct(r.from.value) } : r.from })),
  };
}

/** Three controller keys for a DVCI (their 96 bytes continue past one attribute value). */
const CONTROLLERS = ['11', '22', '33'].map((b) => b.repeat(32));

t.test('lab.json written as extrinsics reads back as the same snapshot, and compiles to the same configs', async (t) => {
  const r = await importSnapshot(c.registry, await headHash(c), lab, c.operator);
  t.equal(r.created, 10);
  t.ok(r.submitted.every((s) => s.status === 'applied' && /^0x[0-9a-f]{64}$/.test(s.extrinsic)));
  const { snapshot, issues } = await read();
  t.same(issues, []);
  const { block, ...rest } = snapshot;
  t.same(rest, labAsOnChain());
  t.equal(block.hash, await headHash(c), 'read at the finalized head');
  const strip = (s: ChainSnapshot) => [...compile(s).configs.values()].map(({ revision: _r, ...cfg }) => cfg);
  t.same(strip(snapshot), strip(lab), 'the same node configs as the file');
  t.same(compile(snapshot).issues, []);
});

t.test('two readers at one block produce identical snapshots', async (t) => {
  const hash = await headHash(c);
  const other = await connect(c.chain.endpoint);
  t.teardown(() => other.close());
  const a = await c.registry.readSnapshot(hash);
  const b = await openRegistry(other, c.chain.registry).readSnapshot(hash);
  t.equal(JSON.stringify(b), JSON.stringify(a));
});

t.test('register, define, assign, allow, update and revoke round-trip', async (t) => {
  const bob = c.account(c.keys.bob);
  const dave = c.account(c.keys.dave);
  const r = await c.registry.submit(
    [
      { op: 'create', kind: 'dvci', fields: { id: 'paris', name: 'Paris edge', region: 'eu-west', controllers: CONTROLLERS }, owner: dave },
      { op: 'create', kind: 'node', fields: { id: 'm1', dvci: 'paris', wgPublicKey: KEY_A, endpoints: ['198.51.100.7:51820'], listenPort: 51821, state: 'active', capacity: { vcpus: 4, memoryMiB: 8192, diskGiB: 100 }, salt: 3 }, owner: bob },
      { op: 'create', kind: 'slot', fields: { id: 'api-1', vcpus: 1, memoryMiB: 1024, diskGiB: 10, image: 'debian-12', state: 'defined', groups: ['api', 'web'] }, owner: bob },
    ],
    c.operator,
  );
  t.equal(r.status, 'applied');
  t.same(r.entries, [
    { kind: 'dvci', id: 'paris', item: 1 },
    { kind: 'node', id: 'm1', item: 3 },
    { kind: 'slot', id: 'api-1', item: 3 },
  ]);
  await c.registry.submit([{ op: 'update', kind: 'slot', id: 'api-1', fields: { node: 'm1', state: 'assigned' } }], c.operator);
  await c.registry.submit([{ op: 'create', kind: 'rule', fields: { id: 'api-in', from: 'group:web', to: 'slot:api-1', proto: 'tcp', ports: ['443', '8000-8100'] }, owner: bob }], c.operator);

  let s = (await read()).snapshot;
  t.same(s.dvcis.at(-1), { id: 'paris', operator: dave, name: 'Paris edge', region: 'eu-west', controllers: CONTROLLERS }, 'three controller keys: 96 bytes, in a continued attribute');
  t.same(s.nodes.at(-1), { id: 'm1', owner: bob, dvci: 'paris', wgPublicKey: KEY_A, endpoints: ['198.51.100.7:51820'], listenPort: 51821, state: 'active', capacity: { vcpus: 4, memoryMiB: 8192, diskGiB: 100 }, salt: 3, seq: 3 });
  t.same(s.slots.at(-1), { id: 'api-1', owner: bob, node: 'm1', vcpus: 1, memoryMiB: 1024, diskGiB: 10, image: 'debian-12', state: 'assigned', groups: ['api', 'web'], seq: 3 });
  t.same(s.rules.at(-1), { id: 'api-in', owner: bob, from: { kind: 'group', value: 'web' }, to: { kind: 'slot', value: 'api-1' }, proto: 'tcp', ports: [{ from: 443, to: 443 }, { from: 8000, to: 8100 }] });
  t.ok(compile(s).configs.get('m1')?.slots.some((x) => x.id === 'api-1'), 'the slot is placed on m1');

  // Eight endpoints do not fit one 64-byte value: they continue in ep.1, ep.2 and shrink back.
  const many = Array.from({ length: 8 }, (_, i) => `node-${i}.example.org:5182${i}`);
  await c.registry.submit([{ op: 'update', kind: 'node', id: 'm1', fields: { endpoints: many, wgPublicKey: KEY_B } }], c.operator);
  s = (await read()).snapshot;
  t.same(s.nodes.at(-1)?.endpoints, many);
  t.equal(s.nodes.at(-1)?.wgPublicKey, KEY_B);
  t.ok((await attributeKeys(1001, 3)).includes('ep.2'));
  await c.registry.submit([{ op: 'update', kind: 'node', id: 'm1', fields: { endpoints: ['198.51.100.7:51820'] } }], c.operator);
  t.same((await read()).snapshot.nodes.at(-1)?.endpoints, ['198.51.100.7:51820']);
  t.notOk((await attributeKeys(1001, 3)).some((k) => k.startsWith('ep.')), 'continuations cleared');

  await c.registry.submit([{ op: 'remove', kind: 'rule', id: 'api-in' }], c.operator);
  await c.registry.submit([{ op: 'retire', kind: 'slot', id: 'api-1' }], c.operator);
  s = (await read()).snapshot;
  t.notOk(s.rules.some((x) => x.id === 'api-in'), 'revoked');
  t.equal(s.slots.find((x) => x.id === 'api-1')?.state, 'retired', 'the operator retires by state');
  t.same(await attributeKeys(1003, 3), [], 'the operator\'s revoke also clears the attributes');

  // An update that names the entry's item reads that item alone (the gatekeeper's quarantine).
  await c.registry.submit([{ op: 'update', kind: 'node', id: 'm1', item: 3, fields: { state: 'quarantined' } }], c.operator);
  t.equal((await read()).snapshot.nodes.find((n) => n.id === 'm1')?.state, 'quarantined', 'updated through its item');
  await t.rejects(c.registry.submit([{ op: 'update', kind: 'node', id: 'm1', item: 2, fields: { state: 'active' } }], c.operator), { code: 'not-found', message: /is not item 2/ }, 'an item that holds another entry is refused');
  await t.rejects(c.registry.submit([{ op: 'update', kind: 'node', id: 'm1', item: 3, fields: { state: 'quarantined' } }], c.operator), { code: 'invalid-input', message: /nothing to change/ }, 'a second identical decision changes nothing and is refused before submission');
  await c.registry.submit([{ op: 'update', kind: 'node', id: 'm1', fields: { state: 'active' } }], c.operator);

  await t.rejects(c.registry.submit([{ op: 'create', kind: 'node', fields: { id: 'm1', dvci: 'paris', wgPublicKey: KEY_A, state: 'active' } }], c.operator), { code: 'invalid-input', message: /already exists \(item 3\)/ });
  await t.rejects(c.registry.submit([{ op: 'create', kind: 'slot', fields: { id: 'bad', vcpus: 0, memoryMiB: 1, diskGiB: 1, image: 'x', state: 'defined' } }], c.operator), { code: 'invalid-input', where: 'slot bad' });
});

t.test('one batch may create an entry and change it: one atomic extrinsic', async (t) => {
  const r = await c.registry.submit(
    [
      { op: 'create', kind: 'slot', fields: { id: 'tmp-1', vcpus: 1, memoryMiB: 512, diskGiB: 5, image: 'alpine', state: 'defined' } },
      { op: 'update', kind: 'slot', id: 'tmp-1', fields: { node: 'n3', state: 'assigned' } },
      { op: 'remove', kind: 'rule', id: 'no-such-rule' },
    ],
    c.operator,
  ).catch((e: unknown) => e);
  t.match(r, { code: 'not-found' }, 'a failing change refuses the whole batch before submitting');
  t.notOk((await read()).snapshot.slots.some((s) => s.id === 'tmp-1'));
  const ok = await c.registry.submit(
    [
      { op: 'create', kind: 'slot', fields: { id: 'tmp-1', vcpus: 1, memoryMiB: 512, diskGiB: 5, image: 'alpine', state: 'defined' } },
      { op: 'update', kind: 'slot', id: 'tmp-1', fields: { node: 'n3', state: 'assigned' } },
    ],
    c.operator,
  );
  t.same(ok.entries.map((e) => e.item), [4, 4]);
  t.match((await read()).snapshot.slots.find((s) => s.id === 'tmp-1'), { node: 'n3', state: 'assigned', seq: 4 });
  await c.registry.submit([{ op: 'remove', kind: 'slot', id: 'tmp-1' }], c.operator);
});

t.test('the runtime refuses a stranger; an owner may withdraw but not edit', async (t) => {
  const before = (await read()).snapshot;
  const charlie = { pair: c.keys.charlie };
  const bob = { pair: c.keys.bob };
  // n1 belongs to Bob: Charlie can neither re-key it nor withdraw it, nor register nodes.
  await t.rejects(c.registry.submit([{ op: 'update', kind: 'node', id: 'n1', fields: { wgPublicKey: KEY_B } }], charlie), { code: 'permission', message: /uniques\.NoPermission/ });
  await t.rejects(c.registry.submit([{ op: 'retire', kind: 'node', id: 'n1' }], charlie), { code: 'permission', message: /uniques\.NoPermission/ });
  await t.rejects(c.registry.submit([{ op: 'create', kind: 'node', fields: { id: 'evil', dvci: 'lyon', wgPublicKey: KEY_B, state: 'active' } }], charlie), { code: 'permission', message: /uniques\.NoPermission/ });
  // The same refusal without our client in the way: a raw extrinsic, judged by the runtime.
  const raw = txFn(c.client.api, 'uniques', 'setAttribute')(1001, 0, '0x6b6579', `0x${Buffer.from(KEY_B, 'base64').toString('hex')}`);
  await t.rejects(submitCall(c.client, raw, charlie), { code: 'permission', message: /uniques\.NoPermission/ });
  const after = (await read()).snapshot;
  t.same(after.nodes, before.nodes, 'nothing changed');

  // Uniques lets only the collection owner write attributes: the owner too is refused an edit…
  await t.rejects(c.registry.submit([{ op: 'update', kind: 'node', id: 'n1', fields: { wgPublicKey: KEY_B } }], bob), { code: 'permission' });
  // …but may withdraw the entry.
  const r = await c.registry.submit([{ op: 'retire', kind: 'node', id: 'n1' }], bob);
  t.equal(r.status, 'applied');
  const gone = (await read()).snapshot;
  t.notOk(gone.nodes.some((n) => n.id === 'n1'), 'withdrawn by its owner');
  t.equal(gone.nodes.length, before.nodes.length - 1);
});

t.test('malformed attributes become issues naming their items; the rest is used', async (t) => {
  const set = (col: number, item: number, key: string, valueHex: string) => txFn(c.client.api, 'uniques', 'setAttribute')(col, item, `0x${Buffer.from(key).toString('hex')}`, valueHex);
  const hex = (s: string) => `0x${Buffer.from(s).toString('hex')}`;
  const batch = txFn(c.client.api, 'utility', 'batchAll')([
    set(1001, 1, 'key', `0x${'ab'.repeat(31)}`), // n2: a 31-byte WireGuard key
    set(1002, 2, 'res', hex('2/x/100')), // db-1: unreadable resources
    set(1002, 0, 'image', '0xfffe'), // web-1: not UTF-8
    set(1003, 1, 'ports', hex('abc')), // rpc-to-db: not a port
    txFn(c.client.api, 'uniques', 'mint')(1001, 50, c.keys.eve.address), // a node item with no attributes
  ]);
  await submitCall(c.client, batch, c.operator);
  const { snapshot, issues } = await read();
  const seen = issues.map((i) => `${i.code} ${i.path} ${i.entryId ?? '-'}`).sort();
  t.same(seen, [
    'bad-key nodes[item 1].wgPublicKey n2',
    'bad-key nodes[item 50].wgPublicKey -',
    'invalid-entry nodes[item 50].dvci -',
    'invalid-entry nodes[item 50].id -',
    'invalid-entry nodes[item 50].state -',
    'invalid-entry rules[item 1].ports[0] rpc-to-db',
    'invalid-entry slots[item 0].image web-1',
    'invalid-entry slots[item 2].vcpus db-1',
  ]);
  t.same(snapshot.nodes.map((n) => n.id), ['n3', 'm1'], 'only the bad node items are left out');
  t.same(snapshot.slots.map((s) => s.id), ['rpc-1', 'api-1']);
  t.same(snapshot.rules.map((r) => r.id), ['web-to-rpc', 'ping-all']);
});

t.test('readItems: items read alone are those of the full read, and assemble into it', async (t) => {
  const hash = await headHash(c);
  const full = await c.registry.readSnapshot(hash);
  t.ok(full.issues.length > 0 && full.items.some((i) => !i.entry), 'the registry holds refused items (previous test)');
  const refs = full.items.map(({ kind, item }) => ({ kind, item }));
  // n1 (node item 0) was burned by its owner: its attributes stay behind, it is gone all the same.
  t.notOk(refs.some((r) => r.kind === 'node' && r.item === 0));
  t.ok((await attributeKeys(1001, 0)).length > 0, 'attributes of the burned n1 are left behind');
  const r = await c.registry.readItems(hash, [...refs, { kind: 'node', item: 0 }, { kind: 'rule', item: 77 }, refs[0]!]);
  t.same(r.block, full.snapshot.block);
  t.same(r.network, full.snapshot.network);
  t.equal(r.items.length, refs.length + 2, 'one per distinct item');
  t.same(r.items.slice(0, refs.length), full.items, 'decoded and validated as the full read does, issues included');
  t.same(r.items.slice(refs.length), [
    { kind: 'node', item: 0, live: false, issues: [] },
    { kind: 'rule', item: 77, live: false, issues: [] },
  ]);
  const byKind = { dvci: [], node: [], slot: [], rule: [] } as Record<EntryKind, ItemRead[]>;
  for (const it of r.items) if (it.live) byKind[it.kind].push(it);
  t.same(assembleSnapshot(r.network, r.block, byKind), full, 'they assemble into the full read');
  t.same((await c.registry.readItems(hash, [])).items, [], 'no items: the frame alone');
  await t.rejects(c.registry.readItems(`0x${'11'.repeat(32)}`, refs), { code: 'invalid-input' }, 'only finalized blocks');
});

t.test('an item\'s attribute prefix is the one polkadot-js derives', async (t) => {
  const q = c.client.api.query.uniques!.attribute!;
  for (const item of [0, 3, 70000]) t.equal(itemAttrPrefix(q.keyPrefix(1002), item), q.keyPrefix(1002, item));
});

t.test('paged reads: any page size gives the same entries', async (t) => {
  const prefix = c.client.api.query.uniques!.attribute!.keyPrefix(1002);
  const at = await headHash(c);
  const whole = await readPrefix(c.client.rpc, prefix, at, 1000);
  t.ok(whole.length > 20);
  t.same(await readPrefix(c.client.rpc, prefix, at, 7), whole);
  t.same(await readPrefix(c.client.rpc, prefix, at, 1), whole);
});

t.test('only finalized blocks are read', async (t) => {
  const err = await c.registry.readSnapshot(`0x${'11'.repeat(32)}`).catch((e: unknown) => e);
  t.ok(isSub0Error(err), 'a Sub0Error');
  const head = await c.client.finalizedHead();
  t.equal((await c.registry.readSnapshot(head.hash)).snapshot.block.number, head.number);
});

async function attributeKeys(col: number, item: number): Promise<string[]> {
  const entries = await c.client.api.query.uniques!.attribute!.entries(col, item);
  return entries.map(([k]) => Buffer.from((k.args[2] as unknown as { toU8a(b: boolean): Uint8Array }).toU8a(true)).toString('latin1')).sort();
}
