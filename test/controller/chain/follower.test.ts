/**
 * The follower against the real runtime: each registry change is reported once, in order,
 * across a controller restart (a new connection and a new follower on the same cursor file);
 * blocks that do not touch the registry are not reported.
 */
import { join } from 'node:path';
import t from 'tap';
import { connect } from '../../../controller/chain/client.js';
import { Follower, type TouchedBlock } from '../../../controller/chain/follower.js';
import { openRegistry } from '../../../controller/chain/open-registry.js';
import { txFn } from '../../../controller/chain/pallets.js';
import type { RegistryChange } from '../../../controller/chain/registry.js';
import { submitCall } from '../../../controller/chain/submit.js';
import { quietLog, startTestChain } from './chain-fixture.js';

const c = await startTestChain(t);
const cursorFile = join(c.home, 'controller', 'cursor.json');
const key = (n: number) => Buffer.alloc(32, n).toString('base64');
const node = (id: string, n: number): RegistryChange => ({ op: 'create', kind: 'node', fields: { id, dvci: 'lyon', wgPublicKey: key(n), state: 'active' } });

/** One controller run: its own connection, a follower on the shared cursor file. */
async function controller(seen: TouchedBlock[]) {
  const client = await connect(c.chain.endpoint);
  const f = await Follower.start({ client, registry: openRegistry(client, c.chain.registry), cursorFile, log: quietLog, onBlock: (b) => void seen.push(b) });
  return {
    f,
    stop: async () => {
      await f.stop();
      await client.close();
    },
  };
}

t.test('each change once, in order, across a restart', async (t) => {
  await c.registry.submit([{ op: 'create', kind: 'dvci', fields: { id: 'lyon' } }], c.operator);
  const seen: TouchedBlock[] = [];
  const changed: number[] = [];
  const change = async (changes: RegistryChange[]) => changed.push((await c.registry.submit(changes, c.operator)).block.number);

  const first = await controller(seen);
  const startedAt = first.f.cursor.number;
  await change([node('a', 1)]);
  await change([{ op: 'update', kind: 'node', id: 'a', fields: { state: 'quarantined' } }]);
  // A block that does not touch the registry: a plain transfer.
  const transfer = txFn(c.client.api, 'balances', 'transfer')(c.keys.dave.address, 1_000_000_000_000n);
  const quiet = (await submitCall(c.client, transfer, { pair: c.keys.eve })).block.number;
  await change([node('b', 2)]);
  await first.f.reached(changed.at(-1)!);
  await first.stop();

  // Changes made while no controller runs are reported by the next one, after the cursor.
  await change([node('c', 3)]);
  await change([{ op: 'retire', kind: 'node', id: 'a' }]);
  const second = await controller(seen);
  await second.f.reached(changed.at(-1)!);
  await change([node('d', 4)]);
  await second.f.reached(changed.at(-1)!);
  await second.stop();

  const blocks = seen.map((b) => b.block.number);
  t.ok(changed.every((n) => n > startedAt), 'all changes came after the first start');
  t.same(blocks, changed, 'every changing block exactly once, in order');
  t.notOk(blocks.includes(quiet), 'the transfer block is not reported');
  t.same(
    seen.map((b) => b.touches.filter((x) => x.item !== undefined).map((x) => `${x.kind} ${x.item}`)),
    [['node 0'], ['node 0'], ['node 1'], ['node 2'], ['node 0'], ['node 3']],
    'each block names the items it changed',
  );
  for (const b of seen) t.equal(b.block.hash, await c.client.rpc<string>('chain_getBlockHash', [b.block.number]), `#${b.block.number} is the finalized block`);
});

t.test('a cursor from another chain is an error, not a silent gap', async (t) => {
  const { writeJsonAtomic } = await import('../../../controller/chain/home.js');
  const head = await c.client.finalizedHead();
  writeJsonAtomic(cursorFile, { cursor: { number: head.number - 1, hash: `0x${'22'.repeat(32)}` }, registry: c.chain.registry });
  await c.registry.submit([node('e', 5)], c.operator);
  const { f, stop } = await controller([]);
  await t.rejects(f.reached(head.number + 1, 10_000), { code: 'chain', message: /cursor is from another chain/ });
  await stop();
});
