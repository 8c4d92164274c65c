/**
 * A ConfigSink on an MQTT broker: each node's signed config is one retained QoS 1 message on its
 * own topic, replaced whole; an empty retained message withdraws it. The broker is an untrusted
 * pipe (agents verify everything); this sink only has to make the broker hold the newest config
 * of every node.
 *
 * What the broker holds is read back (current(), overlay/mqtt/read-retained.ts); a broker that
 * streams retained messages lazily could deliver one after the read ended, which costs at most a
 * redundant republish of that node. When the broker comes back without our session (it restarted
 * and lost its state), onReset() tells the controller to publish everything again.
 */
import type { Logger } from 'pino';
import type { NodeId } from '../../fabric/schema.js';
import { CONTROLLER_LOGIN } from '../../fabric/broker-login.js';
import { allConfigs, configTopic, markerTopic, nodeOfTopic } from '../../fabric/topics.js';
import type { MqttLink } from '../../overlay/mqtt/mqtt-link.js';
import { readRetained } from '../../overlay/mqtt/read-retained.js';
import type { ConfigSink } from './config-sink.js';

export class MqttSink implements ConfigSink {
  private connectedOnce = false;

  constructor(
    readonly link: MqttLink,
    /** The network whose topics this sink writes: set before the first publish (the chain names it). */
    public network: string | undefined,
    private readonly log: Logger,
    private readonly readTimeoutMs = 15_000,
  ) {}

  private get net(): string {
    if (this.network === undefined) throw new Error('MqttSink: the network is not known yet');
    return this.network;
  }

  async publish(node: NodeId, wire: Uint8Array): Promise<void> {
    await this.link.publish(configTopic(this.net, node), wire, { retain: true });
  }

  async withdraw(node: NodeId): Promise<void> {
    await this.link.publish(configTopic(this.net, node), '', { retain: true });
  }

  async current(): Promise<ReadonlyMap<NodeId, Uint8Array>> {
    const marker = markerTopic(this.net, CONTROLLER_LOGIN);
    const retained = await readRetained(this.link, [allConfigs(this.net)], marker, this.readTimeoutMs);
    const held = new Map<NodeId, Uint8Array>();
    for (const [topic, payload] of retained) {
      const t = nodeOfTopic(this.net, topic);
      if (t?.kind === 'config') held.set(t.node, new Uint8Array(payload));
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
