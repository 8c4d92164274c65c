/**
 * One MQTT 3.1.1 connection (MQTT.js) as sub0 uses it, for agents and controllers alike: a
 * persistent session (clean: false) so that QoS 1 messages survive a reconnect, automatic
 * reconnects with a password asked anew at each attempt (an agent rotates through the controller
 * keys it trusts when the broker refuses one), a last will, and a deadline on every operation.
 * Only 3.1.1 features: aedes 1.x speaks nothing newer; whatever must be trusted travels inside the
 * signed payloads, never in broker metadata.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { Sub0Error } from '../../fabric/errors.js';
import { withDeadline } from '../deadline.js';

export interface MqttLinkOptions {
  /** mqtt://host:port, or mqtts:// for TLS. */
  readonly url: string;
  readonly clientId: string;
  readonly username: string;
  /** Asked before every connection attempt. `refused` counts the refusals (bad login) so far. */
  readonly password: (refused: number) => string;
  /**
   * Published by the broker, retained, when the connection dies without a DISCONNECT; asked
   * before every connection attempt, so it can say what the node held last.
   */
  readonly will?: () => { readonly topic: string; readonly payload: Uint8Array };
  readonly log: Logger;
  /** Deadline of each publish and subscribe, ms (default 10 s). */
  readonly opTimeoutMs?: number;
  /** Reconnect period, ms (default 1 s). */
  readonly reconnectMs?: number;
  /** Keepalive, s (default 15): how soon the broker notices a vanished client, and fires its will. */
  readonly keepaliveS?: number;
}

const willOf = (w: { readonly topic: string; readonly payload: Uint8Array }) => ({ topic: w.topic, payload: Buffer.from(w.payload), qos: 1 as const, retain: true });

/** MQTT 3.1.1 CONNACK codes that mean "these credentials are refused". */
const REFUSED_LOGIN = new Set([4, 5]);

export class MqttLink {
  readonly client: MqttClient;
  private refused = 0;
  private everConnected = false;
  private closed = false;
  private readonly opTimeoutMs: number;

  constructor(private readonly o: MqttLinkOptions) {
    this.opTimeoutMs = o.opTimeoutMs ?? 10_000;
    const options: IClientOptions = {
      protocolVersion: 4,
      clientId: o.clientId,
      username: o.username,
      password: o.password(0),
      clean: false,
      keepalive: o.keepaliveS ?? 15,
      reconnectPeriod: o.reconnectMs ?? 1000,
      // A refused login is retried too: the chain may admit the node a moment later, and an
      // agent rotates through its trusted controller keys until one broker accepts it.
      reconnectOnConnackError: true,
      connectTimeout: 10_000,
      resubscribe: false, // subscriptions are the session's; a lost session is resubscribed by onConnect handlers
      ...(o.will ? { will: willOf(o.will()) } : {}),
    };
    this.client = mqtt.connect(o.url, options);
    const log = o.log;
    this.client.on('connect', (connack) => {
      this.refused = 0;
      log.info({ broker: o.url, sessionPresent: connack.sessionPresent, again: this.everConnected }, 'connected to the broker');
      this.everConnected = true;
    });
    this.client.on('error', (err) => {
      const code = (err as { code?: number }).code;
      if (code !== undefined && REFUSED_LOGIN.has(code)) {
        this.refused++;
        log.warn({ broker: o.url, user: o.username, code }, 'the broker refused the login');
      } else log.debug({ broker: o.url, err: err.message }, 'broker connection error');
    });
    this.client.on('close', () => {
      if (!this.closed && this.everConnected) log.debug({ broker: o.url }, 'broker connection closed; reconnecting');
    });
    // The password is asked anew before each reconnect: MQTT.js builds CONNECT from options.
    this.client.on('reconnect', () => {
      this.client.options.password = o.password(this.refused);
      if (o.will) this.client.options.will = willOf(o.will());
    });
  }

  get url(): string {
    return this.o.url;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Called at every (re)connection with whether the broker kept our session. */
  onConnect(cb: (sessionPresent: boolean) => void): void {
    this.client.on('connect', (connack) => cb(connack.sessionPresent));
  }

  /** Adds a message handler; returns a function that removes it. */
  onMessage(cb: (topic: string, payload: Buffer, retained: boolean) => void): () => void {
    const h = (topic: string, payload: Buffer, packet: { retain: boolean }) => cb(topic, payload, packet.retain);
    this.client.on('message', h);
    return () => void this.client.off('message', h);
  }

  /** QoS 1; resolves at the broker's PUBACK. */
  async publish(topic: string, payload: Uint8Array | string, opts: { retain: boolean }): Promise<void> {
    const body = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    await withDeadline(this.client.publishAsync(topic, body, { qos: 1, retain: opts.retain }), this.opTimeoutMs, `publish to ${topic} at ${this.o.url}`);
  }

  /** QoS 1 subscriptions; a filter the broker refuses is an error naming it. */
  async subscribe(filters: readonly string[]): Promise<void> {
    // MQTT.js rejects when the broker refuses a filter (SUBACK 128).
    const refused = (e: unknown) => new Sub0Error('permission', `the broker refused the subscription to ${filters.join(', ')}`, { where: this.o.url, cause: e });
    const granted = await withDeadline(this.client.subscribeAsync([...filters], { qos: 1 }), this.opTimeoutMs, `subscribe at ${this.o.url}`).catch((e: unknown) => {
      throw (e as { name?: string }).name === 'ErrorWithSubackPacket' || (e as Error).message?.startsWith('Subscribe error') ? refused(e) : e;
    });
    if (granted.some((g) => g.qos === 128)) throw refused(undefined);
  }

  async unsubscribe(filters: readonly string[]): Promise<void> {
    await withDeadline(this.client.unsubscribeAsync([...filters]), this.opTimeoutMs, `unsubscribe at ${this.o.url}`);
  }

  /** Resolves at the next (or current) connection; rejects after `ms`. */
  waitConnected(ms: number): Promise<void> {
    if (this.client.connected) return Promise.resolve();
    return withDeadline(new Promise<void>((r) => this.client.once('connect', () => r())), ms, `connect to ${this.o.url}`);
  }

  /**
   * Disconnects. Clean (the default): a DISCONNECT, so the broker does not publish the will.
   * `force`: drops the socket as a crash would.
   */
  async close(force = false): Promise<void> {
    this.closed = true;
    await withDeadline(this.client.endAsync(force), 5000, `disconnect from ${this.o.url}`).catch(() => this.client.end(true));
  }
}
