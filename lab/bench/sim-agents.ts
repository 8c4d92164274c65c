/**
 * Simulated node agents for bench:control, many per process: each logs in to the broker as its
 * node (the password derived from its identity key), subscribes to its config topic, verifies
 * every config it receives (signature, node) as a real agent's gate does, and acknowledges it by
 * publishing its signed status with that config as applied. No kernel work.
 *
 * Run as a child process: argv[2] is JSON { url, network, controllerKey, from, to }; it reports
 * {connected} as logins complete and {ready} once all are subscribed, over IPC.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { nodeBrokerPassword } from '../../fabric/broker-login.js';
import { signStatus, type NodeStatus } from '../../fabric/node-status.js';
import { verifyConfig } from '../../fabric/signing.js';
import { configTopic, statusTopic } from '../../fabric/topics.js';
import { benchIdentity, benchNodeId } from './registry-fixture.js';

interface Args {
  readonly url: string;
  readonly network: string;
  readonly controllerKey: string;
  readonly from: number;
  readonly to: number;
}

const a = JSON.parse(process.argv[2]!) as Args;
const trusted = [hexToBytes(a.controllerKey)];
const clients: MqttClient[] = [];
let connected = 0;

async function agent(i: number): Promise<void> {
  const node = benchNodeId(i);
  const identity = benchIdentity(i);
  const idHex = bytesToHex(identity.publicKey);
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
  });
  clients.push(client);
  let at = 0;
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
    at = Math.max(Date.now(), at + 1);
    const status: NodeStatus = {
      version: 1,
      network: a.network,
      node,
      at,
      state: 'running',
      accepted: ref,
      applied: ref,
      reconcile: null,
      counts: { peers: v.config.peers.length, routes: v.config.peers.reduce((n, p) => n + p.allowedIps.length, 0), aclEntries: v.config.acl.length, aclTuples: 0 },
      handshakes: [],
      rejected: null,
      backends: { wireguard: 'none', acl: 'none' },
    };
    client.publish(statusTopic(a.network, node), Buffer.from(signStatus(status, identity)), { qos: 1, retain: true });
  });
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await client.subscribeAsync(configTopic(a.network, node), { qos: 1 });
  void idHex;
  connected++;
  if (connected % 100 === 0) process.send?.({ connected });
}

// Logins in batches: a thousand at once only fight over the CPU.
const ids = Array.from({ length: a.to - a.from }, (_, k) => a.from + k);
for (let k = 0; k < ids.length; k += 50) await Promise.all(ids.slice(k, k + 50).map(agent));
process.send?.({ ready: connected });
process.on('message', async (m: { stop?: boolean }) => {
  if (!m.stop) return;
  await Promise.all(clients.map((c) => c.endAsync(true)));
  process.exit(0);
});
