/**
 * The reconcile loop against in-memory drivers (test/helpers/fake-dataplane.ts): level-based,
 * one pass at a time, the newest desired state wins, backoff on failure, foreign state untouched.
 */
import t from 'tap';
import { slotPrefixes } from '../../../fabric/address.js';
import { compile } from '../../../fabric/compile.js';
import type { NodeConfig } from '../../../fabric/node-config.js';
import { Reconciler, type ReconcileResult } from '../../../overlay/agent/reconciler.js';
import { generatePrivateKey, keyToBase64 } from '../../../overlay/wireguard/keys.js';
import { labSnapshot } from '../../helpers/fabric-fixtures.js';
import { FakeKernel } from '../../helpers/fake-dataplane.js';
import { golden } from '../../helpers/golden.js';

const KEY = keyToBase64(generatePrivateKey());
const n1 = (mutate?: (raw: Record<string, any>) => void): NodeConfig => compile(labSnapshot(mutate)).configs.get('n1')!;
const base = n1();
/** n3 retired and the web-to-rpc rule revoked: n1 loses a peer, its routes and some ACL tuples. */
const fewer = n1((raw) => {
  raw.block = { number: 43, hash: `0x${'43'.padStart(64, '0')}` };
  raw.nodes[2].state = 'retired';
  raw.rules = raw.rules.filter((r: { id: string }) => r.id !== 'web-to-rpc');
});
/** Only the web-to-rpc rule revoked: ACL tuples go, peers and routes stay. */
const revoked = n1((raw) => {
  raw.block = { number: 45, hash: `0x${'45'.padStart(64, '0')}` };
  raw.rules = raw.rules.filter((r: { id: string }) => r.id !== 'web-to-rpc');
});
const quarantined = n1((raw) => {
  raw.block = { number: 44, hash: `0x${'44'.padStart(64, '0')}` };
  raw.nodes[0].state = 'quarantined';
});

/** Collects a loop's results; until() waits on them as they come (no sleeping). */
function collector() {
  const results: ReconcileResult[] = [];
  const waiters = new Set<() => void>();
  const onResult = (x: ReconcileResult) => {
    results.push(x);
    for (const w of [...waiters]) w();
  };
  /** The first result at index `from` or later that satisfies `pred`. */
  const until = (pred: (x: ReconcileResult) => boolean, from = 0): Promise<ReconcileResult> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = results.find((x, i) => i >= from && pred(x));
        if (!found) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      // A safety net for a broken loop, not a timing assertion.
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no such result; so far: ${JSON.stringify(results.map((x) => x.status))}`));
      }, 10_000);
      waiters.add(check);
      check();
    });
  return { results, onResult, until };
}

function loop(k: FakeKernel, opts: { withAcl?: boolean; passTimeoutMs?: number } = {}) {
  const { results, onResult, until } = collector();
  const r = new Reconciler(k.dataplane(opts.withAcl ?? true), {
    ifname: 's0-n1',
    privateKey: KEY,
    resolve: async () => undefined,
    backoff: { initialMs: 10, maxMs: 40 },
    ...(opts.passTimeoutMs ? { passTimeoutMs: opts.passTimeoutMs } : {}),
    onResult,
  });
  return { r, results, until };
}

t.test('a first pass builds everything; the next finds nothing to do and calls no driver', async (t) => {
  const k = new FakeKernel();
  const { r, results } = loop(k);
  r.setDesired(base);
  await r.idle();
  t.equal(results[0]!.status, 'changed');
  t.equal(results[0]!.applied['peer-add'], 2);
  t.same(results[0]!.remaining, {});
  golden(t, new URL('./golden/first-pass.txt', import.meta.url), `${k.text()}\n`, 'the kernel after the first pass');
  const journal = k.journal.length;
  r.trigger();
  await r.idle();
  t.equal(results[1]!.status, 'unchanged');
  t.same(k.journal.slice(journal), ['wg.ensure', 'acl.attach'], 'only the idempotent ensure/attach, no apply');
  await r.stop();
});

t.test('phases keep add-before-delete across drivers; ACL removals come before route removals', async (t) => {
  const k = new FakeKernel();
  const { r } = loop(k);
  r.setDesired(base);
  await r.idle();
  k.journal.length = 0;
  r.setDesired(fewer);
  await r.idle();
  // The device was set up by the first pass: a new config only re-checks the (fail-closed) ACL hook.
  t.same(k.journal, ['acl.attach', 'wg.apply peer-remove', 'acl.apply acl-remove', 'routes.apply route-remove']);
  k.journal.length = 0;
  r.trigger();
  await r.idle();
  t.same(k.journal, ['wg.ensure', 'acl.attach'], 'a fresh pass ensures the device again');
  t.equal(k.peers.size, 1, 'one peer left');
  await r.stop();
});

t.test('triggers during a pass collapse into one more pass, against the newest config', async (t) => {
  const k = new FakeKernel();
  k.applyDelayMs = 30;
  const { r, results } = loop(k);
  const inFlight = k.reached('wg.ensure');
  r.setDesired(base);
  await inFlight; // the first pass is in flight
  r.setDesired(fewer);
  r.trigger();
  r.setDesired(quarantined);
  await r.idle();
  t.same(results.map((x) => x.revision), [42, 44], 'two passes: the one in flight, then only the newest');
  t.equal(results[1]!.status, 'changed');
  t.equal(k.peers.size, 0, 'quarantined: no peers');
  t.equal(k.acl.size, 0, 'quarantined: no rules');
  t.equal([...k.routes.values()].filter((o) => o === 'sub0').length, 0, 'quarantined: no routes');
  t.equal(k.addresses.size, 2, 'the node keeps its own addresses');
  await r.stop();
});

t.test('a failed pass is retried with backoff until it converges, and says what failed', async (t) => {
  const k = new FakeKernel();
  k.fail('routes.apply', 3); // pass 1: addresses and routes fail; pass 2: addresses; pass 3 converges
  const { r, results, until } = loop(k);
  r.setDesired(base);
  await until((x) => x.status === 'changed');
  t.same(results.map((x) => x.status), ['failed', 'failed', 'changed']);
  t.same(results.map((x) => x.attempt), [1, 2, 0]);
  t.match(results[0]!.errors[0], { phase: 'addresses', code: 'driver', message: /injected failure of routes.apply/ }, 'the error keeps its phase and code');
  t.ok((results[0]!.remaining['route-add'] ?? 0) > 0, 'the state reached is reported, with what is missing');
  t.equal(results[0]!.reached.peers, 2, 'the other phases still ran');
  t.ok(results[1]!.retryInMs! >= results[0]!.retryInMs! * 0.5, 'backoff grows (with jitter)');
  await r.stop();
});

t.test('fail closed: without the ACL hook attached, no peer or route is added', async (t) => {
  const k = new FakeKernel();
  k.fail('acl.attach', 1);
  const { r, results, until } = loop(k);
  r.setDesired(base);
  await r.idle();
  t.equal(results[0]!.status, 'failed');
  t.equal(k.peers.size, 0);
  t.equal(k.routes.size, 0);
  await until((x) => x.status === 'changed', 1);
  t.pass('the retry converges');
  await r.stop();
});

t.test('state the agent did not create is left alone', async (t) => {
  const k = new FakeKernel();
  k.routes.set('100.96.0.200/32', 'static');
  const someRoute = base.peers[0]!.allowedIps[0]!;
  k.routes.set(someRoute, 'static');
  const { r } = loop(k);
  r.setDesired(base);
  await r.idle();
  r.setDesired(quarantined);
  await r.idle();
  t.equal(k.routes.get('100.96.0.200/32'), 'static', 'a foreign route survives a full teardown of ours');
  await r.stop();
});

t.test('ACL off: ACL entries are neither planned nor applied', async (t) => {
  const k = new FakeKernel();
  const { r, results } = loop(k, { withAcl: false });
  r.setDesired(base);
  await r.idle();
  t.equal(results[0]!.status, 'changed');
  t.equal(results[0]!.applied['acl-add'], undefined);
  t.equal(k.acl.size, 0);
  await r.stop();
});

t.test('stop() waits for the pass in flight and ignores later triggers', async (t) => {
  const k = new FakeKernel();
  k.applyDelayMs = 20;
  const { r, results } = loop(k);
  const inFlight = k.reached('wg.ensure');
  r.setDesired(base);
  await inFlight;
  await r.stop();
  t.equal(results.length, 1, 'stop() returned after the pass in flight reported');
  r.setDesired(fewer);
  r.trigger();
  await r.idle();
  t.equal(results.length, 1, 'no pass after stop');
});

t.test('a new config is planned against what the last pass left; the first pass, retries, resyncs and trigger() read fresh', async (t) => {
  const k = new FakeKernel();
  const dp = k.dataplane(true);
  const reads: boolean[] = [];
  const acl = dp.acl!;
  const observe = acl.observe.bind(acl);
  Object.assign(acl, { observe: (o?: { fresh?: boolean }) => (reads.push(o?.fresh === true), observe(o)) });
  let wgReads = 0;
  const wgObserve = dp.wg.observe.bind(dp.wg);
  Object.assign(dp.wg, { observe: (i: string) => (wgReads++, wgObserve(i)) });
  const { results, onResult, until } = collector();
  const r = new Reconciler(dp, { ifname: 's0-n1', privateKey: KEY, resolve: async () => undefined, backoff: { initialMs: 10, maxMs: 40 }, onResult });
  r.setDesired(base);
  await r.idle();
  t.equal(reads[0], true, 'the first pass reads the kernel');
  reads.length = 0;
  wgReads = 0;
  r.setDesired(revoked);
  await r.idle();
  t.same(results.at(-1)!.applied, { 'acl-remove': 4 }, 'the revoked rule is planned from its keys alone');
  t.same(reads, [false], 'a new config: nothing read before planning, the ACL re-observed from its shadow');
  t.equal(wgReads, 0, 'WireGuard, which the change did not touch, is not read at all');
  reads.length = 0;
  r.trigger();
  await r.idle();
  t.same(reads, [true], 'trigger(): fresh');
  reads.length = 0;
  k.fail('acl.apply', 1);
  const from = results.length;
  r.setDesired(base);
  await until((x) => x.status === 'changed', from); // after the failed pass, its retry
  t.equal(results.at(-2)!.status, 'failed');
  t.equal(results.at(-1)!.status, 'changed');
  t.same(reads, [false, true, false], 'the failed pass re-observed the shadow; its retry reads the kernel first');
  await r.stop();

  const resyncs = collector();
  const timed = new Reconciler(dp, { ifname: 's0-n1', privateKey: KEY, resolve: async () => undefined, resyncMs: 20, onResult: resyncs.onResult });
  timed.setDesired(base);
  await timed.idle();
  reads.length = 0;
  await resyncs.until(() => true, resyncs.results.length); // a pass nobody asked for: the resync
  t.ok(reads.length >= 1 && reads.every((x) => x), 'periodic resyncs read the kernel');
  await timed.stop();
});

t.test('a new config after the interface vanished: the pass fails on the missing hook, its retry rebuilds', async (t) => {
  const k = new FakeKernel();
  const { r, results, until } = loop(k);
  r.setDesired(base);
  await r.idle();
  const peers = k.peers.size;
  k.vanish();
  r.setDesired(revoked);
  await r.idle();
  t.equal(results.at(-1)!.status, 'failed', 'the pass planned from the last state finds no interface');
  t.match(results.at(-1)!.errors.map((e) => e.message).join(), /no such interface/);
  await until((x) => x.status === 'changed', results.length); // the retry
  t.equal(k.peers.size, peers, 'the retry re-created the interface and its peers');
  t.same(k.attached, slotPrefixes(revoked.network), 'and the ACL hook');
  await r.stop();
});

t.test('a pass that stalls (a driver call that never answers) is reported as a timeout; the loop recovers once the call ends', async (t) => {
  const k = new FakeKernel();
  const release = k.stall('routes.apply');
  const { r, until } = loop(k, { passTimeoutMs: 100 });
  r.setDesired(base);
  const stalled = await until((x) => x.status === 'failed');
  t.match(stalled.errors[0], { phase: 'pass', code: 'timeout', message: /reconcile pass: no answer in 100 ms/ }, 'the stall shows in the result, with its code');
  t.equal(k.journal.filter((c) => c.startsWith('routes.apply')).length, 1, 'no second pass runs beside the stalled one');
  release();
  const after = await until((x) => x.status !== 'failed');
  t.equal(after.remaining['route-add'] ?? 0, 0, 'once the call answers, the retry converges (the late pass did the work: it re-reads, finds it done)');
  t.equal(k.peers.size, 2, 'the kernel holds the config');
  await r.stop();
});
