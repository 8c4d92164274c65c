/**
 * The mesh over time, real agents in namespaces: a peer removed and added back; an agent killed
 * mid-traffic and restarted without the mesh noticing (no peer flap, nothing re-applied); the
 * agent's `plan --dry-run` against the live kernel; drift repaired by the periodic resync.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ping, startFlow, tcpConnect } from '../../../lab/traffic.js';
import { RULES, meshFixture } from './mesh-fixture.js';

const fx = await meshFixture(t, 'ml');
const { mesh } = fx;
const lab = mesh.lab;
const web = fx.slot('web-1');
const rpc = fx.slot('rpc-1');
const db = fx.slot('db-1');
let block = 10;

const peersOf = (node: string) => lab.exec(node, 'wg', ['show', lab.node(node).ifname, 'peers']).trim().split('\n').filter(Boolean);
const wgGoPid = (node: string) => Number(readFileSync(join(lab.node(node).stateDir, `wireguard-go-${lab.node(node).ifname}.pid`), 'utf8'));

t.test('a peer removed (node quarantined) and added back', async (t) => {
  const n1 = fx.nodeAddr('n1');
  const n3 = fx.nodeAddr('n3');
  t.equal(peersOf('n1').length, 2);
  await fx.converge({ block: ++block, rules: RULES, nodeState: { n3: 'quarantined' } });
  t.same(peersOf('n1'), [lab.node('n2').publicKey], 'n1 dropped n3');
  t.same(peersOf('n3'), [], 'the quarantined node has no peers');
  t.notOk(await ping(lab, 'n1', n1.v4, n3.v4), 'n1 -> n3 no longer reachable');
  t.notOk(lab.exec('n1', 'ip', ['route']).includes(n3.v4), "n3's routes are gone from n1");
  t.ok(await ping(lab, 'n1', n1.v4, fx.nodeAddr('n2').v4), 'n1 -> n2 unaffected');

  await fx.converge({ block: ++block, rules: RULES });
  t.equal(peersOf('n1').length, 2, 'n3 is a peer again');
  // The re-added peers must handshake first (wireguard-go holds the echo meanwhile). When one side
  // initiates before the other has added it back, the initiation is dropped and WireGuard retries
  // after REKEY_TIMEOUT (5 s, plus jitter): wait long enough for one retry.
  t.ok(await ping(lab, 'n1', n1.v4, n3.v4, 12), 'n1 -> n3 reachable again');
  t.ok(await tcpConnect(lab, 'n2', rpc.v4, db.v4, 5432, 5000), 'and its slot serves again (rpc-to-db): n2 and n3 handshake too');
});

t.test('an agent killed mid-traffic and restarted: the mesh never notices', async (t) => {
  const flow = startFlow(lab, 'n1', web.v4, rpc.v4, 9944, 20);
  t.ok(await flow.connected, 'flow web-1 -> rpc-1 open');
  const daemon = wgGoPid('n1');
  // The flow's peer: its session must survive the restart untouched. (Other peers may still be
  // finishing the handshakes that the previous test's re-added peer started.)
  const handshake = () => lab.exec('n1', 'wg', ['show', lab.node('n1').ifname, 'latest-handshakes']).split('\n').find((l) => l.startsWith(lab.node('n2').publicKey));
  const hsBefore = handshake();
  t.ok(hsBefore && !hsBefore.endsWith('\t0'), 'the flow runs on an established session');
  await mesh.stopAgent('n1', 'SIGKILL');
  const whileDead = flow.echoes();
  await new Promise((r) => setTimeout(r, 500));
  t.ok(flow.echoes() > whileDead + 5, `traffic flows while the agent is dead (${flow.echoes() - whileDead} echoes in 500 ms)`);

  const restarted = mesh.startAgent('n1', { resyncMs: 2000 });
  const s = await mesh.waitStatus('n1', (x) => x.pid === restarted.proc.pid && x.lastResult !== undefined, 'the first pass of the restarted agent');
  t.equal(s.lastResult!.status, 'unchanged', 'the restarted agent finds nothing to change');
  t.same(s.lastResult!.applied, {}, 'no op applied');
  t.equal(wgGoPid('n1'), daemon, 'the same wireguard-go daemon serves the interface');
  t.equal(handshake(), hsBefore, 'no new handshake with the flow\'s peer: no peer flap');
  const atRestart = flow.echoes();
  await new Promise((r) => setTimeout(r, 300));
  t.ok(flow.echoes() > atRestart, 'the flow still carries data after the restart');
  flow.stop();
});

t.test('plan --dry-run against the live kernel: nothing to do, then exactly the drift', async (t) => {
  const n = lab.node('n2');
  // The agent is stopped meanwhile (the data plane stays up), so that its resync cannot repair
  // the drift before the dry run sees it.
  await mesh.stopAgent('n2', 'SIGTERM');
  const plan = () =>
    lab.exec('n2', process.execPath, [
      '--import', 'tsx', 'cli/sub0-main.ts', 'agent', 'plan', '--dry-run',
      '--config', n.configPath, '--node', 'n2', '--ifname', n.ifname, '--state-dir', n.stateDir, '--pin-dir', lab.pinDir, '--trust', mesh.trustHex,
    ]);
  t.match(plan(), /unchanged: nothing to do/);
  lab.exec('n2', 'ip', ['route', 'del', `${db.v4}/32`, 'dev', n.ifname, 'proto', '83']);
  const out = plan();
  t.match(out, new RegExp(`\\+ route ${db.v4.replace(/\./g, '\\.')}/32 dev ${n.ifname} proto 83\\n1 op\\(s\\) \\(dry run: nothing changed\\)`), 'the missing route, and nothing else');
  t.notMatch(lab.exec('n2', 'ip', ['route']), new RegExp(db.v4.replace(/\./g, '\\.')), 'the dry run changed nothing');

  const restarted = mesh.startAgent('n2', { resyncMs: 2000 });
  const s = await mesh.waitStatus('n2', (x) => x.pid === restarted.proc.pid && x.lastResult !== undefined, 'the restarted agent');
  t.same(s.lastResult!.applied, { 'route-add': 1 }, 'the restarted agent repairs exactly that');
});

t.test('drift is repaired by the periodic resync', async (t) => {
  const n = lab.node('n2');
  const seen = mesh.status('n2')!.lastResult!.startedAt;
  lab.exec('n2', 'ip', ['route', 'del', `${db.v4}/32`, 'dev', n.ifname, 'proto', '83']);
  const s = await mesh.waitStatus('n2', (x) => x.lastResult!.startedAt > seen && x.lastResult!.status !== 'unchanged', 'a resync pass', 10_000);
  t.same(s.lastResult!.applied, { 'route-add': 1 }, 'exactly the missing route was re-added');
  t.match(lab.exec('n2', 'ip', ['route', 'show', 'dev', n.ifname]), new RegExp(db.v4.replace(/\./g, '\\.')));
  t.ok(await tcpConnect(lab, 'n2', rpc.v4, db.v4, 5432), 'rpc-to-db works again');
});

t.test('a crashed wireguard-go is respawned and the node rebuilt (peers, routes, ACL hook)', async (t) => {
  const old = wgGoPid('n2');
  const seen = mesh.status('n2')!.lastResult!.startedAt;
  process.kill(old, 'SIGKILL');
  const s = await mesh.waitStatus('n2', (x) => x.lastResult!.startedAt > seen && x.lastResult!.status === 'changed', 'a rebuilding pass', 10_000);
  t.not(wgGoPid('n2'), old, 'a new daemon');
  t.equal(s.lastResult!.applied['peer-add'], 2, 'peers re-added');
  t.ok((s.lastResult!.applied['route-add'] ?? 0) >= 8, 'routes re-added');
  t.ok(await tcpConnect(lab, 'n1', web.v4, rpc.v4, 9944), 'allowed traffic flows again');
  t.notOk(await tcpConnect(lab, 'n1', web.v4, rpc.v4, 9945, 500), 'and the ACL enforces again on the new interface');
});

t.test('the agent stops cleanly on SIGTERM and leaves the data plane up', async (t) => {
  await mesh.stopAgent('n3', 'SIGTERM');
  t.ok(await tcpConnect(lab, 'n2', rpc.v4, db.v4, 5432), 'traffic to n3 still flows with its agent stopped');
  t.ok(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(lab.node('n3').netns));
});
