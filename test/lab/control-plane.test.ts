/**
 * The control plane end to end, with the embedded broker: a rule submitted on chain reaches the
 * nodes it concerns (and only those) as signed retained configs, and real packets follow it; an
 * outside client that can publish on a node's config topic (a compromised broker) gets a forged
 * config, a replayed older one and another node's config all refused, and traffic keeps flowing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import mqtt from 'mqtt';
import { CONTROLLER_LOGIN } from '../../fabric/broker-login.js';
import { generateSigningKey, signConfig, verifyConfig } from '../../fabric/signing.js';
import { configTopic } from '../../fabric/topics.js';
import { ACCEPTED_FILE } from '../../overlay/agent/config-gate.js';
import { LAB_NETWORK } from '../../lab/control-lab.js';
import { ping } from '../../lab/traffic.js';
import { useControlLab } from '../helpers/control-lab.js';

const cl = await useControlLab(t, { nodes: 3, broker: 'embedded' });
const lab = cl.lab;
const accepted = (node: string) => readFileSync(join(cl.node(node).stateDir, ACCEPTED_FILE));
const configOf = (node: string) => verifyConfig(accepted(node), [cl.controllerKey.publicKey]).config;

t.test('a rule submitted on chain is enforced on the nodes it concerns, and nowhere else', async (t) => {
  const web = cl.slotAddress('web-1');
  const rpc = cl.slotAddress('rpc-1');
  const db = cl.slotAddress('db-1');
  t.ok(await ping(lab, 'n1', web.v4, rpc.v4), 'web-1 -> rpc-1 passes (ping-rpc)');
  t.notOk(await ping(lab, 'n1', web.v4, db.v4, 0.5), 'web-1 -> db-1 dropped: no rule');
  const n2Before = cl.status('n2')!.accepted!;

  const r = await cl.submit([{ op: 'create', kind: 'rule', fields: { id: 'web-db', from: 'slot:web-1', to: 'slot:db-1', proto: 'icmp', ports: [] } }]);
  await cl.waitApplied('n1', r.block);
  await cl.waitApplied('n3', r.block);
  t.ok(await ping(lab, 'n1', web.v4, db.v4), 'web-1 -> db-1 passes once the block is final');
  t.ok(await ping(lab, 'n1', web.v6, db.v6), 'over IPv6 too');
  t.same(configOf('n1').acl.filter((e) => e.rule === 'web-db').length, 1, 'n1 holds the rule, stamped with its id');
  t.equal(configOf('n1').revision.hash, r.block.hash, "n1's config traces to the rule's block");
  t.same(cl.status('n2')!.accepted, n2Before, 'n2, which hosts neither slot, got nothing new');
  t.notOk(configOf('n2').acl.some((e) => e.rule === 'web-db'), 'and does not hold the rule');

  const gone = await cl.submit([{ op: 'remove', kind: 'rule', id: 'web-db' }]);
  await cl.waitApplied('n1', gone.block);
  await cl.waitApplied('n3', gone.block);
  t.notOk(await ping(lab, 'n1', web.v4, db.v4, 0.5), 'revoked on chain: dropped again');
});

t.test('forged, replayed and misaddressed configs published straight to the broker are refused', async (t) => {
  const web = cl.slotAddress('web-1');
  const rpc = cl.slotAddress('rpc-1');
  const before = cl.status('n1')!;
  const current = accepted('n1');
  const older = Buffer.from(signConfig({ ...configOf('n1'), revision: { number: 1, hash: `0x${'11'.repeat(32)}` } }, generateSigningKey()));
  // A genuine older config of n1: the controller's own signature, an older block, other content
  // (an older copy of the same content would be a duplicate, not a replay).
  const genuineOld = Buffer.from(signConfig({ ...configOf('n1'), acl: [], revision: { number: configOf('n1').revision.number - 1, hash: `0x${'22'.repeat(32)}` } }, cl.controllerKey));
  const forged = Buffer.from(signConfig({ ...configOf('n1'), revision: { number: configOf('n1').revision.number + 100, hash: `0x${'33'.repeat(32)}` }, acl: [] }, generateSigningKey()));
  const n2s = accepted('n2');
  // An outside client holding the controller's broker login: the worst a compromised broker can do.
  const c = await mqtt.connectAsync(cl.brokerUrl, { protocolVersion: 4, clientId: 'outsider', username: CONTROLLER_LOGIN, password: cl.adminSecret, reconnectPeriod: 0 });
  t.teardown(() => c.endAsync(true));
  const cases: [string, Buffer, RegExp][] = [
    ['a config signed by an unknown key', forged, /bad-signature: .*untrusted key/],
    ['a replayed older config', genuineOld, /stale-revision/],
    ['an older config under an unknown key', older, /bad-signature/],
    ["another node's config", n2s, /for node "n2", this agent runs node "n1"/],
  ];
  for (const [what, wire, expect] of cases) {
    const seen = cl.status('n1')!.lastRejected?.at ?? 0;
    await c.publishAsync(configTopic(LAB_NETWORK, 'n1'), wire, { qos: 1, retain: true });
    const s = await cl.waitStatus('n1', (x) => (x.lastRejected?.at ?? 0) > seen, `the refusal of ${what}`);
    t.match(`${s.lastRejected!.code}: ${s.lastRejected!.message}`, expect, `${what}: refused (${s.lastRejected!.code})`);
    t.equal(s.converged?.hash, before.converged?.hash, `${what}: the applied config is unchanged`);
  }
  t.ok(await ping(lab, 'n1', web.v4, rpc.v4), 'traffic still flows under the applied config');
  // Put the genuine config back where the forgery was (a duplicate for n1: nothing to do).
  await c.publishAsync(configTopic(LAB_NETWORK, 'n1'), current, { qos: 1, retain: true });
});

t.test("a node's signed status says when it stops, and its last will when it dies", async (t) => {
  const { verifyStatus } = await import('../../fabric/node-status.js');
  const { statusTopic } = await import('../../fabric/topics.js');
  const { OBSERVER_LOGIN } = await import('../../fabric/broker-login.js');
  const identity = cl.node('n2').identityKey;
  // An outside observer: a plain MQTT.js client with the observer login, checking each status
  // against the identity key the chain registered for n2.
  const c = await mqtt.connectAsync(cl.brokerUrl, { protocolVersion: 4, clientId: 'observer-test', username: OBSERVER_LOGIN, password: cl.adminSecret, reconnectPeriod: 0 });
  t.teardown(() => c.endAsync(true));
  const states: string[] = [];
  let wake: () => void = () => undefined;
  c.on('message', (_topic, payload) => {
    if (payload.length === 0) return;
    states.push(verifyStatus(new Uint8Array(payload), identity, 'n2').state);
    wake();
  });
  const next = (want: string, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${want}" status: ${what} (saw ${states.join(', ')})`)), 20_000);
      const check = () => {
        if (states.at(-1) === want) {
          clearTimeout(timer);
          resolve();
        }
      };
      wake = check;
      check();
    });
  await c.subscribeAsync(statusTopic(LAB_NETWORK, 'n2'), { qos: 1 });
  await next('running', 'the retained status of a running agent');
  t.pass('a running agent: "running", signed with its identity key');

  await cl.stopAgent('n2', 'SIGTERM');
  await next('offline', 'after a clean stop');
  t.pass('stopped: it says "offline" itself');

  const before = cl.status('n2')!.converged!.hash;
  cl.startAgent('n2');
  await next('running', 'after the restart');
  await cl.waitStatus('n2', (s) => s.converged?.hash === before, 'the same config again');
  await cl.stopAgent('n2', 'SIGKILL');
  await next('offline', 'after a crash');
  t.pass('killed: the broker publishes its last will, "offline", signed by the node beforehand');
  cl.startAgent('n2');
  await next('running', 'back again');
});
