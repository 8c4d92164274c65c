/**
 * bench:chain — time to read a snapshot of 1,000 nodes / 10,000 slots / 10,000 rules from the
 * local runtime, against the lower bound measured in the same run: reading the same storage
 * entries raw (state_getKeysPaged + state_queryStorageAt over the same prefixes, same paging,
 * same concurrency), without decoding or validating anything.
 *
 * The registry is loaded as Uniques storage (lab/bench/registry-fixture.ts), sealed in a block, so
 * that the read is of one finalized block like any other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { connect } from '../controller/chain/client.js';
import { startLocalChain } from '../controller/chain/local-chain.js';
import { openRegistry } from '../controller/chain/open-registry.js';
import { storage } from '../controller/chain/pallets.js';
import { readPrefix } from '../controller/chain/storage-pages.js';
import { loadRegistryFixture } from '../lab/bench/registry-fixture.js';

const NODES = 1000;
const SLOTS = 10_000;
const RULES = 10_000;
const OWNERS = 50;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const home = mkdtempSync(join(tmpdir(), 'sub0-bench-chain-'));
const log = pino({ level: 'warn' }, pino.destination(2)); // stdout is the table and the JSON line
const chain = await startLocalChain({ home, port: 0, log });
const client = await connect(chain.endpoint);
try {
  const t0 = performance.now();
  const head = await loadRegistryFixture(client, chain.registry, { nodes: NODES, slots: SLOTS, rules: RULES, owners: OWNERS });
  const setupMs = performance.now() - t0;

  // The prefixes the reader reads: items and attributes of the four collections.
  const api = client.api;
  const cols = [1000, 1001, 1002, 1003];
  const prefixes = (c: number) => [storage(api, 'uniques', 'asset').keyPrefix(c), storage(api, 'uniques', 'attribute').keyPrefix(c)];
  const raw = async () => {
    // Same shape as the reader: the root collection first, then the other three at once.
    const root = await Promise.all(prefixes(cols[0]!).map((p) => readPrefix(client.rpc, p, head.hash)));
    const rest = await Promise.all(cols.slice(1).flatMap((c) => prefixes(c).map((p) => readPrefix(client.rpc, p, head.hash))));
    return [...root, ...rest].reduce((n, page) => n + page.length, 0);
  };
  const registry = openRegistry(client, chain.registry);
  const read = () => registry.readSnapshot(head.hash);

  const entries = await raw(); // warm-up: builds the key index for this block
  const first = await read();
  const s = first.snapshot;
  if (first.issues.length || s.nodes.length !== NODES || s.slots.length !== SLOTS || s.rules.length !== RULES)
    throw new Error(`unexpected snapshot: ${s.nodes.length} nodes, ${s.slots.length} slots, ${s.rules.length} rules, ${first.issues.length} issues`);

  const rawMs: number[] = [];
  const readMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let t = performance.now();
    await raw();
    rawMs.push(performance.now() - t);
    t = performance.now();
    await read();
    readMs.push(performance.now() - t);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const rawMedian = median(rawMs);
  const readMedian = median(readMs);
  const ratio = readMedian / rawMedian;

  const rows = [
    ['case', 'storage entries', 'median ms', 'runs ms'],
    ['raw storage read (keys paged + query at)', String(entries), rawMedian.toFixed(0), rawMs.map((x) => x.toFixed(0)).join(' ')],
    [`snapshot ${NODES} nodes / ${SLOTS} slots / ${RULES} rules`, String(entries), readMedian.toFixed(0), readMs.map((x) => x.toFixed(0)).join(' ')],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  console.log(`setup (fixture + block): ${(setupMs / 1000).toFixed(1)} s; ratio ${ratio.toFixed(2)} (target <= 2)`);
  console.log(JSON.stringify({ bench: 'chain', case: `snapshot ${NODES} nodes`, metric: 'ms', value: Math.round(readMedian), baseline: 'raw storage read', ratio: Number(ratio.toFixed(2)) }));
} finally {
  await client.close();
  await chain.close();
  rmSync(home, { recursive: true, force: true });
}
