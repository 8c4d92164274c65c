/**
 * The control plane under failure, with Mosquitto and the controller as a process of its own:
 * killing the controller, then the broker, leaves every node enforcing its last map (traffic
 * flows, nothing changes); a rule submitted meanwhile is enforced once both are back. And the
 * broker's admission follows the chain: a retired node is cut off (and its peers drop it), a node
 * the chain does not know never gets in. Checked from the outside: mosquitto_sub, wg show, ping.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { nodeBrokerPassword } from '../../fabric/broker-login.js';
import { generateSigningKey } from '../../fabric/envelope.js';
import { configTopic } from '../../fabric/topics.js';
import { loadOrCreateIdentity } from '../../overlay/agent/identity.js';
import { LAB_NETWORK } from '../../lab/control-lab.js';
import { ping } from '../../lab/traffic.js';
import { useControlLab } from '../helpers/control-lab.js';

const cl = await useControlLab(t, { nodes: 3, broker: 'mosquitto', controller: 'process' });
const lab = cl.lab;
const m = cl.mosquitto!;

/** mosquitto_sub as a node: exit 0 once subscribed, or the broker's refusal. */
function subscribeAs(node: string, password: string): { code: number | null; stderr: string } {
  const r = spawnSync('mosquitto_sub', ['-h', m.host, '-p', String(m.port), '-V', 'mqttv311', '-u', node, '-P', password, '-t', configTopic(LAB_NETWORK, node), '-E'], { encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, stderr: r.stderr.trim() };
}
const passwordOf = (node: string) => nodeBrokerPassword(loadOrCreateIdentity(cl.node(node).stateDir).key, cl.controllerKeyHex, LAB_NETWORK, node);

t.test('killing the controller, then the broker, keeps traffic flowing; both come back and catch up', async (t) => {
  const web = cl.slotAddress('web-1');
  const rpc = cl.slotAddress('rpc-1');
  const db = cl.slotAddress('db-1');
  t.ok(await ping(lab, 'n1', web.v4, rpc.v4), 'before: web-1 -> rpc-1 passes');

  await cl.killController('SIGKILL');
  t.ok(await ping(lab, 'n1', web.v4, rpc.v4), 'controller killed: traffic flows');
  await m.kill('SIGKILL');
  t.ok(await ping(lab, 'n1', web.v4, rpc.v4), 'broker killed too: traffic flows');
  t.ok(await ping(lab, 'n1', web.v6, rpc.v6), 'over IPv6 too');
  const applied = cl.status('n1')!.converged!.hash;

  const r = await cl.submit([{ op: 'create', kind: 'rule', fields: { id: 'web-db', from: 'slot:web-1', to: 'slot:db-1', proto: 'icmp', ports: [] } }]);
  t.notOk(await ping(lab, 'n1', web.v4, db.v4, 0.5), 'a rule made while both are down is not enforced yet');
  t.equal(cl.status('n1')!.converged!.hash, applied, 'the nodes keep their last map');

  await m.run();
  t.ok(await ping(lab, 'n1', web.v4, rpc.v4), 'broker back (empty): traffic flows');
  await cl.startController();
  await cl.waitApplied('n1', r.block, 60_000);
  await cl.waitApplied('n3', r.block, 60_000);
  t.ok(await ping(lab, 'n1', web.v4, db.v4), 'controller back: the rule made meanwhile is enforced');
  t.ok(await ping(lab, 'n1', web.v4, rpc.v4), 'and the rest still flows');
});

t.test("the broker admits exactly the nodes the chain admits", async (t) => {
  t.equal(subscribeAs('n3', passwordOf('n3')).code, 0, 'n3, registered: logs in with its derived password');
  const stranger = subscribeAs('n9', nodeBrokerPassword(generateSigningKey(), cl.controllerKeyHex, LAB_NETWORK, 'n9'));
  t.not(stranger.code, 0, `a node the chain does not know is refused (${stranger.stderr})`);
  const wrongKey = subscribeAs('n3', nodeBrokerPassword(generateSigningKey(), cl.controllerKeyHex, LAB_NETWORK, 'n3'));
  t.not(wrongKey.code, 0, 'n3\'s name with another identity key is refused');

  const n3key = cl.node('n3').publicKey;
  const wgPeers = (node: string) => lab.exec(node, 'wg', ['show', cl.node(node).ifname, 'peers']);
  t.match(wgPeers('n1'), n3key, 'n1 peers with n3');
  const r = await cl.submit([{ op: 'retire', kind: 'node', id: 'n3' }]);
  await cl.waitApplied('n1', r.block, 60_000);
  await cl.waitApplied('n2', r.block, 60_000);
  t.notMatch(wgPeers('n1'), n3key, 'retired on chain: n1 drops n3 (wg show)');
  t.notMatch(wgPeers('n2'), n3key, 'and so does n2');
  const after = subscribeAs('n3', passwordOf('n3'));
  t.not(after.code, 0, `n3 can no longer log in (${after.stderr})`);
  const users = readFileSync(join(m.dir, 'passwd'), 'utf8').split('\n').map((l) => l.slice(0, l.indexOf(':')));
  t.notOk(users.includes('n3'), `n3 is gone from the password file (users: ${users.filter(Boolean).join(', ')})`);
});
