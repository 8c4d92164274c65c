/**
 * No single controller (real chain, two controllers each with its own embedded broker, agents in
 * namespaces, real packets): both compile byte-identical configs from the same finalized block;
 * killing either controller with its broker loses no packet of a running flow between two other
 * nodes, and the survivor carries the next chain change; an agent refuses a config signed by a
 * controller key the chain does not authorize (any more) for its DVCI.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import mqtt from 'mqtt';
import { CONTROLLER_LOGIN, OBSERVER_LOGIN } from '../../fabric/broker-login.js';
import { open } from '../../fabric/envelope.js';
import { CONFIG_MAGIC, payloadJson, signConfig, verifyConfig } from '../../fabric/signing.js';
import { configTopic, gatekeeperTopic } from '../../fabric/topics.js';
import { HEALTH_MAGIC, type HealthReport } from '../../controller/gatekeeper.js';
import { ACCEPTED_FILE, TRUST_FILE } from '../../overlay/agent/config-gate.js';
import { LAB_DVCI, LAB_NETWORK } from '../../lab/control-lab.js';
import { controllerFailover } from '../../lab/failover.js';
import { useControlLab } from '../helpers/control-lab.js';
import { until } from '../helpers/until.js';
import { hexToBytes } from '@noble/hashes/utils.js';

const policy = { heartbeatTimeoutMs: 4000, settleMs: 3000, graceMs: 3000 };
const cl = await useControlLab(t, { nodes: 3, broker: 'embedded', secondController: true, gatekeeper: policy, agentFlags: ['--status-interval-ms', '1000'] });
const second = cl.second!;

/** The retained config of `node` on a broker, as an observer reads it. */
async function retainedConfig(url: string, secret: string, node: string): Promise<Buffer> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: `obs-${Math.random().toString(16).slice(2)}`, username: OBSERVER_LOGIN, password: secret, reconnectPeriod: 0 });
  try {
    const got = new Promise<Buffer>((r) => c.on('message', (_t, p) => p.length && r(p)));
    await c.subscribeAsync(configTopic(LAB_NETWORK, node), { qos: 1 });
    return await got;
  } finally {
    await c.endAsync(true);
  }
}
const revisionOf = (wire: Buffer) => (payloadJson(open(CONFIG_MAGIC, wire, () => true).payload) as { revision: { number: number } }).revision.number;

t.test('two controllers publish byte-identical configs for the same block', async (t) => {
  const r = await cl.submit([{ op: 'create', kind: 'rule', fields: { id: 'web-rpc-udp', from: 'group:web', to: 'group:rpc', proto: 'udp', ports: ['30333'] } }]);
  await cl.waitApplied('n1', r.block);
  const a = await until('broker 1 at the block', async () => { const w = await retainedConfig(cl.brokerUrl, cl.adminSecret, 'n1'); return revisionOf(w) === r.block.number && w; });
  const b = await until('broker 2 at the block', async () => { const w = await retainedConfig(second.brokerUrl, second.adminSecret, 'n1'); return revisionOf(w) === r.block.number && w; });
  const payload = (w: Buffer) => w.subarray(w.indexOf(0x0a) + 1);
  t.ok(payload(a).equals(payload(b)), 'the same payload bytes, each signed by its own controller');
  t.equal(open(CONFIG_MAGIC, a, () => true).key, cl.controllerKeyHex, 'broker 1: the first controller\'s signature');
  t.equal(open(CONFIG_MAGIC, b, () => true).key, second.keyHex, 'broker 2: the second controller\'s signature');
  t.same(verifyConfig(a, [cl.controllerKey.publicKey]).config.controllers, [...cl.controllerKeys].sort(), 'the config names both authorized keys');
  // A copy of the same content is a duplicate; only an older config of other content (a slower
  // controller behind by a block) may be refused, as stale.
  t.notMatch(cl.status('n1')!.lastRejected?.code ?? 'none', /bad-signature|invalid-input/, 'n1 refused neither copy for its signer or its content');
});

t.test('two gatekeepers judging one silent node make one effective change on chain', async (t) => {
  const api = cl.client.api;
  const from = (await cl.client.finalizedHead()).number;
  const nodeItem = (await cl.registry.readSnapshot((await cl.client.finalizedHead()).hash)).snapshot.nodes.find((n) => n.id === 'n3')!.seq!;
  await cl.stopAgent('n3', 'SIGKILL'); // both brokers fire its last will: both gatekeepers see it go
  const state = async () => (await cl.registry.readSnapshot((await cl.client.finalizedHead()).hash)).snapshot.nodes.find((n) => n.id === 'n3')?.state;
  await until('n3 quarantined on chain', async () => (await state()) === 'quarantined');
  // Both gatekeepers are done with n3 once their reports no longer watch it (it left their watch at
  // the pass that compiled the quarantine); anything either submitted went before that.
  const watching = async (url: string, secret: string, key: string) => {
    const c = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: `obs-${Math.random().toString(16).slice(2)}`, username: OBSERVER_LOGIN, password: secret, reconnectPeriod: 0 });
    try {
      const got = new Promise<Buffer>((r) => c.on('message', (_t, p) => p.length && r(p)));
      await c.subscribeAsync(gatekeeperTopic(LAB_NETWORK, key), { qos: 1 });
      return 'n3' in (payloadJson(open(HEALTH_MAGIC, await got, (k) => k === key).payload) as HealthReport).nodes;
    } finally {
      await c.endAsync(true);
    }
  };
  await until('both gatekeepers past n3', async () => !(await watching(cl.brokerUrl, cl.adminSecret, cl.controllerKeyHex)) && !(await watching(second.brokerUrl, second.adminSecret, second.keyHex)));
  // The chain's own record: every state write of n3's item since the kill.
  const head = (await cl.client.finalizedHead()).number;
  const writes: string[] = [];
  for (let n = from + 1; n <= head; n++) {
    const events = (await (await api.at(await api.rpc.chain.getBlockHash(n))).query.system.events()) as unknown as { event: { section: string; method: string; data: { toU8a(b: boolean): Uint8Array; toString(): string }[] } }[];
    for (const { event } of events) {
      if (event.section !== 'uniques' || event.method !== 'AttributeSet') continue;
      const key = Buffer.from(event.data[2]!.toU8a(true)).toString('latin1');
      if (key === 'state' && event.data[1]!.toString() === String(nodeItem)) writes.push(`#${n} ${Buffer.from(event.data[3]!.toU8a(true)).toString()}`);
    }
  }
  t.equal(writes.length, 1, `one state write for n3 on chain (${writes.join(', ')})`);
  t.match(writes[0], /quarantined$/);
  const mine = cl.service!.gatekeeper!.decisions.filter((d) => d.node === 'n3').map((d) => d.outcome);
  t.notOk(mine.includes('failed'), `no gatekeeper failed: this one ${mine.join(', ')}`);
  t.notMatch(readFileSync(join(second.dir, 'controller.log'), 'utf8'), /quarantine transaction failed/, 'nor the other');
});

t.test('killing either controller with its broker loses no packet of a running flow', async (t) => {
  const counted = await controllerFailover(cl, { everyMs: 20, step: (what) => t.pass(what) });
  t.ok(counted.sent > 50, `the flow ran (${counted.sent} pings)`);
  t.equal(counted.lost, 0, `no packet lost (${counted.received} of ${counted.sent} answered)`);
});

t.test('an agent refuses a config signed by a controller key the chain no longer authorizes', async (t) => {
  // The chain now authorizes the second controller only (the first is dead).
  const r = await cl.submit([{ op: 'update', kind: 'dvci', id: LAB_DVCI, fields: { controllers: [second.keyHex] } }]);
  await cl.waitApplied('n1', r.block);
  t.same(JSON.parse(readFileSync(join(cl.node('n1').stateDir, TRUST_FILE), 'utf8')).keys, [second.keyHex], 'n1 learned the new set from the config it accepted');
  const current = verifyConfig(readFileSync(join(cl.node('n1').stateDir, ACCEPTED_FILE)), [hexToBytes(second.keyHex)]).config;
  // The first controller's key signs a newer config (as a controller still running on the old set would).
  const stale = signConfig({ ...current, controllers: [...cl.controllerKeys].sort(), revision: { number: current.revision.number + 1, hash: `0x${'44'.repeat(32)}` } }, cl.controllerKey);
  const c = await mqtt.connectAsync(second.brokerUrl, { protocolVersion: 4, clientId: 'outsider', username: CONTROLLER_LOGIN, password: second.adminSecret, reconnectPeriod: 0 });
  t.teardown(() => c.endAsync(true));
  const seen = cl.status('n1')!.lastRejected?.at ?? 0;
  await c.publishAsync(configTopic(LAB_NETWORK, 'n1'), Buffer.from(stale), { qos: 1, retain: false });
  const s = await cl.waitStatus('n1', (x) => (x.lastRejected?.at ?? 0) > seen, 'the refusal');
  t.match(`${s.lastRejected!.code}: ${s.lastRejected!.message}`, /bad-signature: .*untrusted key/, 'refused: the chain dropped that key');
  t.equal(s.converged?.revision, current.revision.number, 'the applied config is unchanged');
});
