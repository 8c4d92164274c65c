/**
 * Simulated node agents for bench:control, many per process: each logs in to the broker as its
 * node (the password derived from its identity key) with its signed "offline" status as its last
 * will, subscribes to its config topic, verifies every config it receives (signature, node) as a
 * real agent's gate does, and acknowledges it by publishing its signed status with that config as
 * applied; every `heartbeatMs` it publishes that status again (the gatekeeper's heartbeat). No
 * kernel work.
 *
 * Run as a child process: argv[2] is JSON { url, network, controllerKey, from, to, heartbeatMs? };
 * it reports {connected} as logins complete and {ready} once all are subscribed, over IPC. Asked
 * {vanish: i}, agent i drops its connection without a DISCONNECT (the broker fires its will, as
 * for a machine unplugged) and never comes back; it answers {vanished: i}.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { hexToBytes } from '@noble/hashes/utils.js';
import { nodeBrokerPassword } from '../../fabric/broker-login.js';
import { blankStatus, signStatus, type NodeStatus } from '../../fabric/node-status.js';
import { verifyConfig } from '../../fabric/signing.js';
import { configTopic, statusTopic } from '../../fabric/topics.js';
import { benchIdentity, benchNodeId } from './registry-fixture.js';

interface Args {
  readonly url: string;
  readonly network: string;
  readonly controllerKey: string;
  readonly from: number;
  readonly to: number;
  /** Publish the status again this often (ms); none when absent. */
  readonly heartbeatMs?: number;
}

const a = JSON.parse(process.argv[2]!) as Args;
const trusted = [hexToBytes(a.controllerKey)];
const clients = new Map<number, MqttClient>();
const timers: NodeJS.Timeout[] = [];
let connected = 0;

async function agent(i: number): Promise<void> {
  const node = benchNodeId(i);
  const identity = benchIdentity(i);
  let at = 0;
  const stamp = () => (at = Math.max(Date.now(), at + 1));
  let status: NodeStatus = blankStatus(a.network, node, { wireguard: 'none', acl: 'none' });
  const topic = statusTopic(a.network, node);
  const client = mqtt.connect(a.url, {
    protocolVersion: 4,
    clientId: node,
    username: node,
    password: nodeBrokerPassword(identity, a.controllerKey, a.network, node),
    clean: true,
    reconnectPeriod: 1000,
    reconnectOnConnackError: true,
    connectTimeout: 30_000,
    keepalive: 60,
    // As overlay/agent/status-report.ts's offline(): the newest status, marked offline.
    will: { topic, payload: Buffer.from(signStatus({ ...status, state: 'offline', at: stamp() }, identity)), qos: 1, retain: true },
  });
  clients.set(i, client);
  const report = () => {
    status = { ...status, at: stamp() };
    if (client.connected) client.publish(topic, Buffer.from(signStatus(status, identity)), { qos: 1, retain: true });
  };
  client.on('message', (_topic, payload) => {
    if (payload.length === 0) return;
    let v;
    try {
      v = verifyConfig(payload, trusted);
    } catch {
      return; // refused, as the gate would
    }
    if (v.config.node !== node) return;
    const ref = { revision: v.config.revision, hash: v.hash };
    status = {
      ...status,
      accepted: ref,
      applied: ref,
      counts: { peers: v.config.peers.length, routes: v.config.peers.reduce((n, p) => n + p.allowedIps.length, 0), aclEntries: v.config.acl.length, aclTuples: 0 },
    };
    report();
  });
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await client.subscribeAsync(configTopic(a.network, node), { qos: 1 });
  if (a.heartbeatMs) {
    // Spread over the interval: a thousand heartbeats at the same instant are a burst, not a beat.
    const first = setTimeout(() => timers.push(setInterval(report, a.heartbeatMs)), Math.random() * a.heartbeatMs);
    timers.push(first);
  }
  connected++;
  if (connected % 100 === 0) process.send?.({ connected });
}

// Logins in batches: a thousand at once only fight over the CPU.
const ids = Array.from({ length: a.to - a.from }, (_, k) => a.from + k);
for (let k = 0; k < ids.length; k += 50) await Promise.all(ids.slice(k, k + 50).map(agent));
process.send?.({ ready: connected });
process.on('message', async (m: { stop?: boolean; vanish?: number }) => {
  if (m.vanish !== undefined) {
    const c = clients.get(m.vanish);
    clients.delete(m.vanish);
    // Forced: the socket is destroyed, no DISCONNECT is sent, and no reconnect follows.
    c?.end(true);
    process.send?.({ vanished: m.vanish });
    return;
  }
  if (!m.stop) return;
  for (const t of timers) clearTimeout(t);
  await Promise.all([...clients.values()].map((c) => c.endAsync(true)));
  process.exit(0);
});
