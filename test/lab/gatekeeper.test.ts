/**
 * The gatekeeper end to end (real chain, embedded broker, agents in namespaces, WireGuard): a node
 * that goes silent is quarantined by a chain transaction that the gatekeeper's account signs as
 * the operator's proxy, and its peers drop it (`wg show`); readmitted on chain, it is back and
 * reachable. A node whose agent reports another config than the one published for it is seen
 * degraded (the gatekeeper's signed report, read by an outside client), then quarantined.
 */
import t from 'tap';
import mqtt from 'mqtt';
import { execFile } from 'node:child_process';
import { nodeBrokerPassword, OBSERVER_LOGIN } from '../../fabric/broker-login.js';
import { open } from '../../fabric/envelope.js';
import { signStatus, type NodeStatus } from '../../fabric/node-status.js';
import { payloadJson, verifyConfig } from '../../fabric/signing.js';
import { configTopic, gatekeeperTopic, statusTopic } from '../../fabric/topics.js';
import { keyFromSuri } from '../../controller/chain/keys.js';
import { HEALTH_MAGIC, type HealthReport } from '../../controller/gatekeeper.js';
import { LAB_GATEKEEPERS, LAB_NETWORK } from '../../lab/control-lab.js';
import { sub0Program, REPO } from '../../lab/programs.js';
import { tcpConnect, echoServer } from '../../lab/traffic.js';
import { loadOrCreateIdentity } from '../../overlay/agent/identity.js';
import { useControlLab } from '../helpers/control-lab.js';
import { until } from '../helpers/until.js';

const policy = { heartbeatTimeoutMs: 4000, settleMs: 3000, graceMs: 3000 };
const cl = await useControlLab(t, { nodes: 3, broker: 'embedded', gatekeeper: policy, agentFlags: ['--status-interval-ms', '1000'] });
const lab = cl.lab;
const peersOf = (node: string) => lab.exec(node, 'wg', ['show', lab.node(node).ifname, 'peers']).trim().split('\n').filter(Boolean);


const run = (cmd: string, args: string[]) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
    // SUB0_HOME: the lab's chain record is there, so the CLI knows it is the local chain (dev keys).
    execFile(cmd, args, { cwd: REPO, encoding: 'utf8', env: { ...process.env, SUB0_HOME: cl.home } }, (err, stdout, stderr) => resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );

const stateOnChain = async (node: string) => {
  const head = await cl.client.finalizedHead();
  return (await cl.registry.readSnapshot(head.hash)).snapshot.nodes.find((n) => n.id === node)?.state;
};

/** An outside observer of the gatekeeper's signed report: every verdict it published, in order. */
const observer = await mqtt.connectAsync(cl.brokerUrl, { protocolVersion: 4, clientId: 'gk-observer', username: OBSERVER_LOGIN, password: cl.adminSecret, reconnectPeriod: 0 });
t.teardown(() => observer.endAsync(true));
const verdicts: { node: string; health: string; reason?: string }[] = [];
observer.on('message', (_topic, payload) => {
  if (payload.length === 0) return;
  const o = open(HEALTH_MAGIC, payload, (k) => k === cl.controllerKeyHex);
  const report = payloadJson(o.payload) as HealthReport;
  for (const [node, v] of Object.entries(report.nodes)) verdicts.push({ node, health: v.health, ...(v.reason ? { reason: v.reason } : {}) });
});
await observer.subscribeAsync(gatekeeperTopic(LAB_NETWORK, cl.controllerKeyHex), { qos: 1 });

t.test('a silent node is quarantined by a chain transaction, dropped by its peers, then readmitted', async (t) => {
  const n3key = cl.node('n3').publicKey;
  t.ok(peersOf('n1').includes(n3key) && peersOf('n2').includes(n3key), 'n3 is a peer of n1 and n2');
  await cl.stopAgent('n3', 'SIGKILL'); // its broker connection drops: the broker publishes its last will

  await until('n3 quarantined on chain', async () => (await stateOnChain('n3')) === 'quarantined');
  t.ok(verdicts.some((v) => v.node === 'n3' && v.health === 'degraded' && v.reason === 'offline'), 'the gatekeeper reported n3 degraded (offline) first');
  const decision = await until('the decision', () => cl.service!.gatekeeper!.decisions.find((d) => d.node === 'n3' && d.outcome === 'submitted'));
  // The transaction, read from the chain: proxy.proxy signed by the gatekeeper account, for the operator.
  const block = await cl.client.api.rpc.chain.getBlock(await cl.client.api.rpc.chain.getBlockHash(decision.block!));
  const ext = block.block.extrinsics.find((x) => x.hash.toHex() === decision.extrinsic)!;
  t.ok(ext, `the quarantine is extrinsic ${decision.extrinsic} of block #${decision.block}`);
  t.equal(`${ext.method.section}.${ext.method.method}`, 'proxy.proxy', 'a proxy call');
  t.equal(ext.signer.toString(), cl.client.api.createType('AccountId32', (await keyFromSuri(LAB_GATEKEEPERS[0], { lab: true })).address).toString(), 'signed by the gatekeeper account');
  t.equal(cl.client.api.createType('AccountId32', (ext.method.args[0] as unknown as { toString(): string }).toString()).toString(), cl.client.api.createType('AccountId32', cl.operator.pair.address).toString(), 'acting for the operator');

  await until('n1 and n2 drop n3', () => !peersOf('n1').includes(n3key) && !peersOf('n2').includes(n3key));
  t.pass('n1 and n2 dropped n3 (wg show)');

  // Readmission: the operator's transaction, by the CLI; the node's agent comes back.
  const [cmd, ...pre] = sub0Program();
  // Not spawnSync: the chain and the controller run in this process.
  const r = await run(cmd!, [...pre, 'node', 'readmit', 'n3', '--suri', '//Alice']);
  t.equal(r.status, 0, `sub0 node readmit: ${r.stdout}${r.stderr}`);
  t.match(r.stdout, /node n3 readmitted/);
  t.equal(await stateOnChain('n3'), 'active', 'n3 is active on chain again');
  // Readmitted but not back yet: degraded (never heard since), never quarantined for that.
  await until('n3 degraded in the report', () => verdicts.filter((v) => v.node === 'n3').at(-1)?.health === 'degraded');
  const mesh = await run(cmd!, [...pre, 'mesh', 'status', '--json', '--broker', cl.brokerUrl, '--state-dir', cl.controllerDir]);
  t.equal(mesh.status, 0, `sub0 mesh status: ${mesh.stderr}`);
  const nodes = (JSON.parse(mesh.stdout) as { nodes: { node: string; health: string; reason: string | null; statusAgeS: number | null }[] }).nodes;
  // The gatekeeper's verdict (silent since readmitted) or, if aedes streams its retained report
  // after the read's marker, the node's own last word (its last will: offline): degraded either way.
  t.match(nodes.find((n) => n.node === 'n3'), { health: 'degraded', reason: /^(silent|offline)/ }, 'sub0 mesh status: n3 degraded (silent, offline)');
  t.match(nodes.find((n) => n.node === 'n1'), { health: 'ok', reason: null }, 'sub0 mesh status: n1 ok');
  t.ok((nodes.find((n) => n.node === 'n1')!.statusAgeS ?? 99) <= 5, 'with a fresh heartbeat');
  const table = await run(cmd!, [...pre, 'mesh', 'status', '--broker', cl.brokerUrl, '--state-dir', cl.controllerDir]);
  t.match(table.stdout, /HEARTBEAT AGE/, 'the table shows heartbeat ages');
  t.match(table.stdout, /n3 .*degraded \((silent|offline)\)/, 'and n3 degraded');
  cl.startAgent('n3');
  await until('n1 and n2 take n3 back', () => peersOf('n1').includes(n3key) && peersOf('n2').includes(n3key));
  const rpc = cl.slotAddress('rpc-1');
  const db = cl.slotAddress('db-1');
  const server = await echoServer(lab, 'n3', 5432);
  t.teardown(() => void server.kill('SIGKILL'));
  t.ok(await until('rpc-1 -> db-1:5432 through the mesh', () => tcpConnect(lab, 'n2', rpc.v4, db.v4, 5432)), 'rpc-1 reaches db-1 again (rpc-to-db)');
  await until('n3 healthy in the report', () => verdicts.filter((v) => v.node === 'n3').at(-1)?.health === 'ok');
  t.pass('the gatekeeper reports n3 ok again');
});

t.test('a node reporting another config than the one published is degraded, then quarantined', async (t) => {
  // n2's agent is replaced by one that logs in as n2 (its identity key) and misreports what it applied.
  await cl.stopAgent('n2', 'SIGKILL');
  const identity = loadOrCreateIdentity(cl.node('n2').stateDir).key;
  const liar = await mqtt.connectAsync(cl.brokerUrl, { protocolVersion: 4, clientId: 'n2', username: 'n2', password: nodeBrokerPassword(identity, cl.controllerKeyHex, LAB_NETWORK, 'n2'), reconnectPeriod: 0, clean: true });
  t.teardown(() => liar.endAsync(true));
  let revision: { number: number; hash: string } | undefined;
  liar.on('message', (_t, payload) => {
    if (payload.length) revision = verifyConfig(payload, [cl.controllerKey.publicKey]).config.revision;
  });
  await liar.subscribeAsync(configTopic(LAB_NETWORK, 'n2'), { qos: 1 });
  await until('n2\'s config', () => revision);
  const wrong = 'f'.repeat(64);
  let at = Date.now();
  const lie = async () => {
    const ref = { revision: revision!, hash: wrong };
    const s: NodeStatus = { version: 1, network: LAB_NETWORK, node: 'n2', at: at++, state: 'running', accepted: ref, applied: ref, reconcile: null, counts: { peers: 2, routes: 2, aclEntries: 2, aclTuples: 4 }, handshakes: [], rejected: null, backends: { wireguard: 'uapi', acl: 'ebpf' } };
    await liar.publishAsync(statusTopic(LAB_NETWORK, 'n2'), Buffer.from(signStatus(s, identity)), { qos: 1, retain: true });
  };
  const timer = setInterval(() => void lie().catch(() => undefined), 500);
  t.teardown(() => clearInterval(timer));
  await lie();

  await until('n2 quarantined on chain', async () => (await stateOnChain('n2')) === 'quarantined');
  t.ok(verdicts.some((v) => v.node === 'n2' && v.health === 'degraded' && v.reason === 'wrong-hash'), 'the gatekeeper reported n2 degraded for a wrong hash first');
  const n2key = cl.node('n2').publicKey;
  await until('n1 and n3 drop n2', () => !peersOf('n1').includes(n2key) && !peersOf('n3').includes(n2key));
  t.pass('its peers dropped n2 (wg show)');
  const [cmd, ...pre] = sub0Program();
  const mesh = await run(cmd!, [...pre, 'mesh', 'status', '--json', '--broker', cl.brokerUrl, '--state-dir', cl.controllerDir]);
  t.match((JSON.parse(mesh.stdout) as { nodes: { node: string; health: string }[] }).nodes.find((n) => n.node === 'n2'), { health: 'quarantined' }, 'sub0 mesh status: n2 quarantined');
  // Its broker access went with it: the liar is disconnected and cannot log in again.
  await until('the liar disconnected', () => !liar.connected);
  const again = await mqtt
    .connectAsync(cl.brokerUrl, { protocolVersion: 4, clientId: 'n2', username: 'n2', password: nodeBrokerPassword(identity, cl.controllerKeyHex, LAB_NETWORK, 'n2'), reconnectPeriod: 0 })
    .then((c) => c.endAsync(true).then(() => 'connected'), (e: Error) => e.message);
  t.match(again, /Not authorized|Bad username or password/i, 'a quarantined node cannot log in');
});
