/** The gatekeeper's judgment: silence, last wills, wrong or old configs, and the grace before quarantine. */
import t from 'tap';
import { HealthBook, type PublishedRef } from '../../fabric/health.js';
import type { NodeStatus } from '../../fabric/node-status.js';

const policy = { heartbeatTimeoutMs: 15_000, settleMs: 10_000, graceMs: 30_000 };
const block = (n: number) => ({ number: n, hash: `0x${n.toString(16).padStart(64, '0')}` });
const pub = (n: number, hash: string, at = 0): PublishedRef => ({ revision: block(n), hash, at });
const H = (c: string) => c.repeat(64);
const status = (at: number, applied: { n: number; hash: string } | null, extra: Partial<NodeStatus> = {}): NodeStatus => ({
  version: 1,
  network: 'lab',
  node: 'n1',
  at,
  state: 'running',
  accepted: applied && { revision: block(applied.n), hash: applied.hash },
  applied: applied && { revision: block(applied.n), hash: applied.hash },
  reconcile: null,
  counts: { peers: 0, routes: 0, aclEntries: 0, aclTuples: 0 },
  handshakes: [],
  rejected: null,
  backends: { wireguard: 'uapi', acl: 'ebpf' },
  ...extra,
});

t.test('a node heard on time and running what was published is ok', async (t) => {
  const b = new HealthBook(policy);
  b.watch(new Map([['n1', pub(5, H('a'))]]), 0);
  b.heard('n1', status(1, { n: 5, hash: H('a') }), 1000);
  t.same(b.judge('n1', 12_000), { health: 'ok' });
  t.same(b.judge('n1', 15_999), { health: 'ok' }, 'within the heartbeat timeout');
  t.equal(b.judge('nx', 0), undefined, 'a node not watched is not judged');
});

t.test('silence: degraded after the timeout, quarantine due after the grace; a node never heard is only degraded', async (t) => {
  const b = new HealthBook(policy);
  b.watch(new Map([['n1', pub(5, H('a'))], ['n2', pub(5, H('b'))]]), 100_000);
  b.heard('n1', status(1, { n: 5, hash: H('a') }), 100_000);
  t.same(b.judge('n1', 110_000), { health: 'ok' }, 'a new watch is not silent yet');
  t.match(b.judge('n1', 116_000), { health: 'degraded', reason: 'silent', since: 115_000 });
  t.match(b.judge('n1', 144_999), { health: 'degraded' });
  t.match(b.judge('n1', 145_000), { health: 'quarantine-due', reason: 'silent', since: 115_000 });
  t.match(b.judge('n2', 200_000), { health: 'degraded', reason: 'silent', detail: /never heard/ }, 'never heard: it has not joined, it is not quarantined');
  b.heard('n1', status(2, { n: 5, hash: H('a') }), 146_000);
  t.same(b.judge('n1', 147_000), { health: 'ok' }, 'a heartbeat ends it');
  b.rewatch(300_000);
  t.same(b.judge('n1', 310_000), { health: 'ok' }, 'after the watcher itself stalled, silence counts from the restart');
});

t.test('a last will (offline) degrades at once', async (t) => {
  const b = new HealthBook(policy);
  b.watch(new Map([['n1', pub(5, H('a'))]]), 0);
  b.heard('n1', status(1, { n: 5, hash: H('a') }), 1000);
  b.heard('n1', status(2, { n: 5, hash: H('a') }, { state: 'offline' }), 2000);
  t.match(b.judge('n1', 2001), { health: 'degraded', reason: 'offline', since: 2000 });
  t.match(b.judge('n1', 31_999), { health: 'degraded', reason: 'offline', since: 2000 }, 'still offline, not silent since later');
  t.match(b.judge('n1', 32_000), { health: 'quarantine-due', reason: 'offline' }, 'the grace counts from the last word');
  b.heard('n1', status(1, null), 3000, true);
  t.equal(b.lastHeard('n1')!.status.at, 2, 'an older retained status (read at a subscription) does not replace a newer one');
  b.heard('n1', status(0, { n: 5, hash: H('a') }, { state: 'offline' }), 4000);
  t.match(b.judge('n1', 4001), { reason: 'offline', since: 4000 }, 'a live last will counts whatever its time stamp (taken when its connection began)');
});

t.test('another config than the one published for its revision: degraded after the settling time', async (t) => {
  const b = new HealthBook(policy);
  b.watch(new Map([['n1', pub(5, H('a'), 1000)]]), 0);
  b.heard('n1', status(1, { n: 5, hash: H('b') }), 2000);
  t.same(b.judge('n1', 11_999), { health: 'ok' }, 'settling, from the first report that did not match');
  t.match(b.judge('n1', 12_000), { health: 'degraded', reason: 'wrong-hash', since: 12_000 });
  t.match(b.judge('n1', 12_000), { detail: /reports config bbbbbbbbbbbb for revision #5, published aaaaaaaaaaaa/ });
  b.heard('n1', status(2, { n: 5, hash: H('b') }), 40_000);
  t.match(b.judge('n1', 42_000), { health: 'quarantine-due', since: 12_000 }, 'the same deviation, reported again, keeps counting');
  b.heard('n1', status(3, { n: 5, hash: H('a') }), 43_000);
  t.same(b.judge('n1', 43_000), { health: 'ok' });
});

t.test('behind or failing: degraded after the settling time; a newer revision (another controller) is fine', async (t) => {
  const b = new HealthBook(policy);
  b.watch(new Map([['n1', pub(7, H('a'), 0)]]), 0);
  b.heard('n1', status(1, { n: 6, hash: H('c') }), 0);
  t.match(b.judge('n1', 10_000), { health: 'degraded', reason: 'behind', detail: /applied #6, published #7/ });
  b.heard('n1', status(2, { n: 6, hash: H('c') }, { reconcile: { status: 'failed', at: 2, errors: ['EPERM'] } }), 600);
  t.match(b.judge('n1', 10_000), { reason: 'failing', detail: /EPERM/ });
  b.heard('n1', status(3, { n: 8, hash: H('d') }), 700);
  t.same(b.judge('n1', 10_000), { health: 'ok' });
  b.heard('n1', status(4, { n: 8, hash: H('d') }), 19_000);
  b.watch(new Map([['n1', pub(9, H('e'), 20_000)]]), 20_000);
  t.same(b.judge('n1', 20_001), { health: 'ok' }, 'a new publication settles again');
});

t.test('nodes left out of the watch are forgotten; a node back starts a new watch', async (t) => {
  const b = new HealthBook(policy);
  b.watch(new Map([['n1', pub(5, H('a'))], ['n2', undefined]]), 0);
  t.same([...b.watched].sort(), ['n1', 'n2']);
  b.watch(new Map([['n2', undefined]]), 50_000);
  t.same([...b.watched], ['n2']);
  b.heard('n1', status(1, null), 50_000);
  t.equal(b.lastHeard('n1'), undefined, 'a status of a node not watched is ignored');
  b.watch(new Map([['n1', pub(5, H('a'))], ['n2', undefined]]), 100_000);
  t.same(b.judge('n1', 110_000), { health: 'ok' }, 'readmitted: its silence counts from now');
});
