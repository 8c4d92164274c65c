/**
 * Controller failover under traffic, on a ControlLab started with `secondController: true`: a
 * ping flow runs from the lab's web-1 slot to its rpc-1 slot while each controller, with its
 * broker, is killed in turn (SIGKILL): the second one first, a chain change that must still
 * reach both nodes, the second back (and both nodes reporting to its broker again), then the
 * first one, and another chain change carried by the second alone. Resolves with what ping
 * counted. The lab test (test/lab/controllers.test.ts) asserts on it; bench:control reports it.
 */
import mqtt from 'mqtt';
import { OBSERVER_LOGIN } from '../fabric/broker-login.js';
import { statusTopic } from '../fabric/topics.js';
import { LAB_NETWORK, type ControlLab } from './control-lab.js';
import { startPingFlow } from './traffic.js';

export interface FailoverOptions {
  /** Ping interval (ms); default 20. */
  readonly everyMs?: number;
  /** Called as each controller's death has been survived (a chain change applied without it). */
  readonly step?: (what: string) => void;
}

export interface FailoverCount {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
}

export async function controllerFailover(cl: ControlLab, o: FailoverOptions = {}): Promise<FailoverCount> {
  const second = cl.second;
  if (!second) throw new Error('controller failover: the lab has no second controller');
  const web = cl.slotAddress('web-1');
  const rpc = cl.slotAddress('rpc-1');
  const ends = [web.node, rpc.node];
  /** A chain change, applied by both nodes of the flow. */
  const change = async (id: string, port: string) => {
    const r = await cl.submit([{ op: 'create', kind: 'rule', fields: { id, from: 'group:web', to: 'group:rpc', proto: 'tcp', ports: [port] } }]);
    for (const n of ends) await cl.waitApplied(n, r.block);
  };
  const flow = startPingFlow(cl.lab, web.node, web.v4, rpc.v4, o.everyMs ?? 20);
  let counted: FailoverCount | undefined;
  try {
    await cl.killSecondController('SIGKILL');
    await change('after-kill-b', '8080');
    o.step?.('with the second controller and its broker dead, a chain change still reaches the nodes');

    // The second back; the nodes reconnect to its broker (their statuses appear there), then the first dies.
    const back = Date.now();
    await cl.startSecondController();
    await reportingTo(second.brokerUrl, second.adminSecret, ends, back);
    await cl.killController('SIGKILL');
    await change('after-kill-a', '8081');
    o.step?.('with the first controller and its broker dead, the second carries the next change');
    counted = await flow.stop();
    return counted;
  } finally {
    if (!counted) await flow.stop().catch(() => undefined);
  }
}

/** Resolves once each of `nodes` published a running status stamped at or after `since` on the broker. */
async function reportingTo(url: string, secret: string, nodes: readonly string[], since: number, timeoutMs = 60_000): Promise<void> {
  const obs = await mqtt.connectAsync(url, { protocolVersion: 4, clientId: `obs-failover-${process.pid}`, username: OBSERVER_LOGIN, password: secret, reconnectPeriod: 0 });
  const fresh = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  try {
    const all = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`controller failover: ${nodes.filter((n) => !fresh.has(statusTopic(LAB_NETWORK, n))).join(', ')} did not report to the second broker within ${timeoutMs / 1000} s`)), timeoutMs);
      obs.on('message', (topic, p) => {
        if (!p.length || !p.toString('latin1').includes('"state":"running"')) return;
        const at = Number(/"at":(\d+)/.exec(p.toString('latin1'))?.[1] ?? 0);
        if (at >= since) fresh.add(topic);
        if (fresh.size === nodes.length) resolve();
      });
    });
    await Promise.all([obs.subscribeAsync(nodes.map((n) => statusTopic(LAB_NETWORK, n)), { qos: 1 }), all]);
  } finally {
    clearTimeout(timer);
    await obs.endAsync(true);
  }
}
