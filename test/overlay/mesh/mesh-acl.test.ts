/**
 * Real packets through a 3-node WireGuard mesh of real agents (wireguard-go, rtnetlink routes,
 * the eBPF ACL), each node in its own namespace: ping and TCP pass exactly where the ACL allows;
 * a rule added then removed takes effect, cutting an open flow; a malformed or stale config is
 * refused and the previous state kept.
 */
import t, { type Test } from 'tap';
import { CONFIG_MAGIC, signConfig, generateSigningKey } from '../../../fabric/signing.js';
import { canonicalJson } from '../../../fabric/encoding.js';
import { seal } from '../../../fabric/envelope.js';
import type { NodeConfig } from '../../../fabric/node-config.js';
import { ping, startFlow, tcpConnect } from '../../../lab/traffic.js';
import { RULES, meshFixture } from './mesh-fixture.js';

const fx = await meshFixture(t, 'ma');
const lab = fx.mesh.lab;
const web = fx.slot('web-1');
const rpc = fx.slot('rpc-1');
const db = fx.slot('db-1');

/** A config whose first peer allows 999.1.1.1/32: well-formed JSON, signed, not an address. */
function badAddress(c: NodeConfig): unknown {
  const json = JSON.parse(canonicalJson(c)) as { peers: { allowedIps: string[] }[] };
  json.peers[0]!.allowedIps[0] = '999.1.1.1/32';
  return json;
}

/** 300 slot-pool host addresses. */
const hosts = (third: number) => Array.from({ length: 300 }, (_, i) => `100.96.${third + (i >> 8)}.${i & 255}/32`);
/** n distinct addresses from 100.100.0.0 on. */
const manyHosts = (n: number) => Array.from({ length: n }, (_, i) => `100.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`);

type Check = readonly [what: string, allowed: boolean, run: () => Promise<boolean>];
async function matrix(t: Test, checks: readonly Check[]): Promise<void> {
  const got = await Promise.all(checks.map(([, , run]) => run()));
  checks.forEach(([what, allowed], i) => t.equal(got[i], allowed, `${what}: ${allowed ? 'passes' : 'dropped'}`));
}

t.test('ping and TCP pass exactly where the ACL allows, in both address families', async (t) => {
  const checks: Check[] = [];
  for (const f of ['v4', 'v6'] as const) {
    checks.push(
      [`${f} ping web-1 -> rpc-1 (ping-rpc)`, true, () => ping(lab, 'n1', web[f], rpc[f])],
      [`${f} tcp web-1 -> rpc-1:9944 (web-to-rpc)`, true, () => tcpConnect(lab, 'n1', web[f], rpc[f], 9944)],
      [`${f} tcp rpc-1 -> db-1:5432 (rpc-to-db)`, true, () => tcpConnect(lab, 'n2', rpc[f], db[f], 5432)],
      [`${f} tcp web-1 -> rpc-1:9945 (port not allowed)`, false, () => tcpConnect(lab, 'n1', web[f], rpc[f], 9945)],
      [`${f} ping web-1 -> db-1 (no rule)`, false, () => ping(lab, 'n1', web[f], db[f])],
      [`${f} tcp web-1 -> db-1:5432 (rule is for rpc-1 only)`, false, () => tcpConnect(lab, 'n1', web[f], db[f], 5432)],
      [`${f} ping rpc-1 -> web-1 (rules are one-way)`, false, () => ping(lab, 'n2', rpc[f], web[f])],
      [`${f} tcp db-1 -> rpc-1:9944 (reverse of rpc-to-db)`, false, () => tcpConnect(lab, 'n3', db[f], rpc[f], 9944)],
    );
  }
  const n1 = fx.nodeAddr('n1');
  const n3 = fx.nodeAddr('n3');
  checks.push(['node n1 -> node n3 (mesh traffic is not guarded)', true, () => ping(lab, 'n1', n1.v4, n3.v4)]);
  checks.push(['node n1 -> node n3 over IPv6', true, () => ping(lab, 'n1', n1.v6, n3.v6)]);
  await matrix(t, checks);
});

t.test('a rule added takes effect; removed, it cuts the open flow', async (t) => {
  const webToDb = { id: 'web-to-db', from: 'slot:web-1', to: 'slot:db-1', proto: 'tcp' as const, ports: ['5432'] };
  t.notOk(await tcpConnect(lab, 'n1', web.v4, db.v4, 5432, 500), 'before: dropped');
  await fx.converge({ block: 11, rules: [...RULES, webToDb] });
  t.ok(await tcpConnect(lab, 'n1', web.v4, db.v4, 5432), 'added: passes');
  t.ok(await tcpConnect(lab, 'n1', web.v6, db.v6, 5432), 'added: passes over IPv6 too');

  const flow = startFlow(lab, 'n1', web.v4, db.v4, 5432, 20);
  t.ok(await flow.connected, 'a flow is open');
  await flow.until('echo', 5);
  t.pass('the flow carries data');

  await fx.converge({ block: 12, rules: RULES });
  const atRevoke = flow.echoes();
  // The sender goes on: 25 more lines (every 20 ms) that an open flow would have echoed.
  await flow.until('sent', flow.sent() + 25);
  t.ok(flow.echoes() - atRevoke <= 1, `removed: the open flow is cut (${flow.echoes() - atRevoke} echoes for the 25 lines sent after the change)`);
  t.notOk(await tcpConnect(lab, 'n1', web.v4, db.v4, 5432, 500), 'removed: new connections dropped');
  flow.stop();
  t.ok(await tcpConnect(lab, 'n1', web.v4, rpc.v4, 9944), 'other rules unaffected');
});

t.test('malformed, untrusted, tampered and stale configs are refused with a clear error; the state stays', async (t) => {
  const m = fx.mesh;
  const before = m.status('n1')!;
  const cases: [string, string | Uint8Array, RegExp][] = [
    ['not JSON', '{"v":1,', /invalid-input/],
    // Signed by the trusted key, so that it reaches the schema: an address that is none.
    ['a schema violation', seal(CONFIG_MAGIC, new TextEncoder().encode(canonicalJson(badAddress(m.compile({ block: 22, slots: [], rules: [] }).get('n1')!))), m.key), /invalid-input: .*peers.*allowedIps/s],
    ['signed by an untrusted key', signConfig(m.compile({ block: 20, slots: [], rules: [] }).get('n1')!, generateSigningKey()), /bad-signature/],
    ['tampered after signing', Buffer.from(signConfig(m.compile({ block: 21, slots: [], rules: [] }).get('n1')!, m.key)).toString('utf8').replace('active', 'quarantined'), /bad-signature|invalid-input/],
    ['an older revision', signConfig(m.compile({ block: 5, slots: [], rules: [] }).get('n1')!, m.key), /stale-revision/],
    // Signed and well-formed, but 90,000 pairs: more than the eBPF rule map holds.
    ['an ACL the kernel cannot hold', signConfig({ ...m.compile({ block: 23, slots: [], rules: [] }).get('n1')!, acl: [{ rule: 'big', src: hosts(10).slice(0, 1), dst: manyHosts(65_536), proto: 'tcp', ports: [80, 80] }] }, m.key), /invalid-input: .*needs up to 65537 address and 1 policy entries in the kernel and 65536 tuples in the agent, over the 65536, 65536 and 262144 a node holds/],
  ];
  for (const [what, text, code] of cases) {
    const seen = m.status('n1')!.lastRejected?.at ?? 0;
    m.writeEnvelope('n1', text);
    const s = await m.waitStatus('n1', (x) => (x.lastRejected?.at ?? 0) > seen, `refusal of ${what}`);
    t.match(`${s.lastRejected!.code}: ${s.lastRejected!.message}`, code, `${what}: refused (${s.lastRejected!.code}: ${s.lastRejected!.message.split('\n')[0]!.slice(0, 90)})`);
    t.equal(s.converged?.hash, before.converged?.hash, `${what}: the applied config is unchanged`);
  }
  t.ok(await tcpConnect(lab, 'n1', web.v4, rpc.v4, 9944), 'traffic still flows under the previous config');
  t.equal(m.status('n1')!.lastResult?.status === 'failed', false, 'no failed reconcile');
});
