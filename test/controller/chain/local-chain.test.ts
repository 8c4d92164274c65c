/**
 * The local chain: its state survives a restart (registry, balances, block numbers), and its
 * sorted key index answers state_getKeysPaged exactly as chopsticks' own scan does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readLocalChainRecord } from '../../../controller/chain/home.js';
import { startLocalChain } from '../../../controller/chain/local-chain.js';
import { quietLog, startTestChain } from './chain-fixture.js';

const home = mkdtempSync(join(tmpdir(), 'sub0-chain-'));
t.teardown(() => rmSync(home, { recursive: true, force: true }));

t.test('state survives a restart', async (t) => {
  let before: { block: number; registry: string; endpoint: string; bobFree: bigint };
  {
    const c = await startTestChain({ teardown: () => undefined }, { home });
    t.ok(c.chain.created, 'the first start creates the chain');
    await c.registry.submit(
      [
        { op: 'create', kind: 'dvci', fields: { id: 'lyon', name: 'Lyon' } },
        { op: 'create', kind: 'node', fields: { id: 'n1', dvci: 'lyon', wgPublicKey: Buffer.alloc(32, 1).toString('base64'), state: 'active' }, owner: c.keys.bob.address },
      ],
      c.operator,
    );
    const head = await c.client.finalizedHead();
    const bob = (await c.client.api.query.system!.account!(c.keys.bob.address)) as unknown as { data: { free: { toBigInt(): bigint } } };
    before = { block: head.number, registry: c.chain.registry, endpoint: c.chain.endpoint, bobFree: bob.data.free.toBigInt() };
    t.same(readLocalChainRecord(home)?.registry, c.chain.registry, 'the data directory records the chain');
    await c.client.close();
    await c.chain.close();
  }
  const c = await startTestChain(t, { home });
  t.notOk(c.chain.created, 'the second start resumes');
  await t.rejects(startLocalChain({ home, port: 0, log: quietLog }), { code: 'invalid-input', message: /already runs at ws:\/\/127\.0\.0\.1/ }, 'one chain per data directory');
  t.equal(c.chain.registry, before.registry);
  const head = await c.client.finalizedHead();
  t.equal(head.number, before.block, 'the chain resumes at the block it stopped at');
  const { snapshot, issues } = await c.registry.readSnapshot(head.hash);
  t.same(issues, []);
  t.same(snapshot.dvcis.map((d) => d.id), ['lyon']);
  t.same(snapshot.nodes.map((n) => [n.id, n.owner]), [['n1', c.account(c.keys.bob)]]);
  const bob = (await c.client.api.query.system!.account!(c.keys.bob.address)) as unknown as { data: { free: { toBigInt(): bigint } } };
  t.equal(bob.data.free.toBigInt(), before.bobFree, 'funding persisted');
  // Bob's funds are real: he can pay for withdrawing his node, signed and judged by the runtime.
  const r = await c.registry.submit([{ op: 'retire', kind: 'node', id: 'n1' }], { pair: c.keys.bob });
  t.equal(r.block.number, before.block + 1, 'new blocks continue the numbering');
  t.same((await c.registry.readSnapshot(r.block.hash)).snapshot.nodes, []);
});

t.test('the key index answers like chopsticks itself', async (t) => {
  const c = await startTestChain(t);
  await c.registry.submit([{ op: 'create', kind: 'dvci', fields: { id: 'x' } }], c.operator);
  const api = c.client.api;
  const head = await c.client.finalizedHead();
  const block = (await c.chain.blockchain.getBlock(head.hash as `0x${string}`))!;
  const prefixes = [api.query.system!.account!.keyPrefix(), api.query.uniques!.attribute!.keyPrefix(1000), api.query.uniques!.asset!.keyPrefix(), '0x'];
  for (const prefix of prefixes) {
    // Ours over RPC, in pages of 7; chopsticks' own linear scan straight from its block object.
    const ours: string[] = [];
    for (let start = prefix; ours.length < 300; ) {
      const page = await c.client.rpc<string[]>('state_getKeysPaged', [prefix, 7, start, head.hash]);
      ours.push(...page);
      if (page.length < 7) break;
      start = page.at(-1)!;
    }
    const theirs = await block.getKeysPaged({ prefix, pageSize: ours.length, startKey: prefix });
    t.ok(ours.length > 0, `${prefix.slice(0, 20)}…: ${ours.length} keys`);
    t.same(ours, theirs, 'the same keys in the same order');
  }
});
