/**
 * A ConfigSink on an MQTT broker: each node's signed config is one retained QoS 1 message on its
 * own topic, replaced whole; an empty retained message withdraws it. The broker is an untrusted
 * pipe (agents verify everything); this sink only has to make the broker hold the newest config
 * of every node.
 *
 * What the broker holds is read back (current()) by subscribing to every config topic and
 * collecting the retained messages until a marker this controller publishes comes back; a broker
 * that streams retained messages lazily could deliver one after the marker, which costs at most a
 * redundant republish of that node. When the broker comes back without our session (it restarted
 * and lost its state), onReset() tells the controller to publish everything again.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { NodeId } from '../../fabric/schema.js';
import { CONTROLLER_LOGIN } from '../../fabric/broker-login.js';
import { allConfigs, configTopic, nodeOfTopic, TOPIC_ROOT } from '../../fabric/topics.js';
import { withDeadline } from '../../overlay/deadline.js';
import type { MqttLink } from '../../overlay/mqtt/mqtt-link.js';
import type { ConfigSink } from './config-sink.js';

export class MqttSink implements ConfigSink {
  private connectedOnce = false;

  constructor(
    readonly link: MqttLink,
    private readonly network: string,
    private readonly log: Logger,
    private readonly readTimeoutMs = 15_000,
  ) {}

  async publish(node: NodeId, wire: Uint8Array): Promise<void> {
    await this.link.publish(configTopic(this.network, node), wire, { retain: true });
  }

  async withdraw(node: NodeId): Promise<void> {
    await this.link.publish(configTopic(this.network, node), '', { retain: true });
  }

  async current(): Promise<ReadonlyMap<NodeId, Uint8Array>> {
    await this.link.waitConnected(this.readTimeoutMs);
    const held = new Map<NodeId, Uint8Array>();
    const marker = `${TOPIC_ROOT}/${this.network}/controller/${CONTROLLER_LOGIN}/sync`;
    const nonce = randomBytes(16).toString('hex');
    let synced: () => void = () => undefined;
    const done = new Promise<void>((r) => (synced = r));
    const off = this.link.onMessage((topic, payload, retained) => {
      if (topic === marker) {
        if (payload.toString() === nonce) synced();
        return;
      }
      const t = nodeOfTopic(this.network, topic);
      if (!t || t.kind !== 'config' || !retained) return;
      if (payload.length === 0) held.delete(t.node);
      else held.set(t.node, new Uint8Array(payload));
    });
    try {
      await this.link.subscribe([allConfigs(this.network), marker]);
      await this.link.publish(marker, nonce, { retain: false });
      await withDeadline(done, this.readTimeoutMs, `reading the retained configs at ${this.link.url}`);
    } finally {
      off();
      await this.link.unsubscribe([allConfigs(this.network), marker]).catch(() => undefined);
    }
    this.log.info({ broker: this.link.url, configs: held.size }, 'read the configs the broker holds');
    return held;
  }

  /** Calls `cb` whenever the broker comes back without this controller's session (it lost its state). */
  onReset(cb: () => void): void {
    this.link.onConnect((sessionPresent) => {
      const again = this.connectedOnce;
      this.connectedOnce = true;
      if (again && !sessionPresent) {
        this.log.warn({ broker: this.link.url }, 'the broker lost its state: publishing every config again');
        cb();
      }
    });
  }
}
