/**
 * The agent's link to one broker: it is a ConfigSource (the node's retained config topic) and
 * carries the node's signed status (retained on its status topic, with a signed "offline" status
 * as its last will). The node logs in as itself with the password derived from its identity key
 * and a trusted controller key (fabric/broker-login.ts); when the broker refuses one controller
 * key's password it tries the next at the following reconnect. Everything it delivers still goes
 * through the ConfigGate: the broker is an untrusted pipe.
 */
import type { Logger } from 'pino';
import { nodeBrokerPassword } from '../../fabric/broker-login.js';
import type { SigningKey } from '../../fabric/envelope.js';
import { configTopic, statusTopic } from '../../fabric/topics.js';
import { MqttLink } from '../mqtt/mqtt-link.js';
import type { ConfigSource } from './config-source.js';

export interface MqttChannelOptions {
  readonly url: string;
  readonly network: string;
  readonly node: string;
  readonly identity: SigningKey;
  /** The controller keys this node trusts (hex), in order: one of them runs the broker. */
  readonly controllerKeys: () => readonly string[];
  /** The signed status the broker publishes if this node vanishes (asked at every connection). */
  readonly will: () => Uint8Array;
  readonly log: Logger;
}

export class MqttChannel implements ConfigSource {
  private link: MqttLink | undefined;
  private pending: Uint8Array | undefined;
  private sending = false;

  constructor(private readonly o: MqttChannelOptions) {}

  get url(): string {
    return this.o.url;
  }

  get connected(): boolean {
    return this.link?.connected ?? false;
  }

  async start(deliver: (wire: Uint8Array, source: string) => void): Promise<void> {
    const { network, node, log } = this.o;
    const topic = configTopic(network, node);
    const link = new MqttLink({
      url: this.o.url,
      clientId: node,
      username: node,
      password: (refused) => {
        const keys = this.o.controllerKeys();
        return nodeBrokerPassword(this.o.identity, keys[refused % keys.length]!, network, node);
      },
      will: () => ({ topic: statusTopic(network, node), payload: this.o.will() }),
      log: log.child({ broker: this.o.url }),
    });
    this.link = link;
    link.onMessage((t, payload) => {
      if (t !== topic) return;
      if (payload.length === 0) log.warn({ broker: this.o.url }, 'the controller withdrew this node\'s config (retired?); keeping the last one applied');
      else deliver(new Uint8Array(payload), `${this.o.url}/${t}`);
    });
    // A session the broker kept still holds the subscription (and queued configs): a reconnect of
    // this process does not subscribe again. Its first connection always does: this process may not
    // hold what the kept session delivered before (a node that lost power before its last config
    // reached the disk), and a new SUBSCRIBE makes the broker send the retained config again
    // (MQTT 3.1.1, 3.8.4); the gate takes an identical one as a duplicate.
    let subscribed = false;
    link.onConnect((sessionPresent) => {
      if (!sessionPresent || !subscribed)
        link
          .subscribe([topic])
          .then(() => (subscribed = true))
          .catch((e: unknown) => log.error({ err: (e as Error).message }, 'cannot subscribe to this node\'s config topic'));
      this.flush();
    });
    // Starting does not wait for the broker: the node runs on its last accepted config meanwhile.
  }

  /** Publishes this status (retained); the newest replaces any not sent yet. Never throws. */
  publishStatus(wire: Uint8Array): void {
    this.pending = wire;
    this.flush();
  }

  private flush(): void {
    const link = this.link;
    if (this.sending || !link?.connected || !this.pending) return;
    const wire = this.pending;
    this.pending = undefined;
    this.sending = true;
    link
      .publish(statusTopic(this.o.network, this.o.node), wire, { retain: true })
      .catch((e: unknown) => {
        this.pending ??= wire; // retried at the next status or connection
        this.o.log.debug({ err: (e as Error).message }, 'status not published');
      })
      .finally(() => {
        this.sending = false;
        this.flush();
      });
  }

  /** A clean disconnect after publishing `last` (the broker then does not fire the will). */
  async stop(last?: Uint8Array): Promise<void> {
    const link = this.link;
    if (!link) return;
    if (last && link.connected) await link.publish(statusTopic(this.o.network, this.o.node), last, { retain: true }).catch(() => undefined);
    await link.close();
  }
}
