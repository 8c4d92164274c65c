/** The broker suite on the embedded broker (aedes, in its worker thread), seen by a plain MQTT.js client. */
import t from 'tap';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { EmbeddedBroker } from '../../../controller/broker/embedded-broker.js';
import { generateSigningKey } from '../../../fabric/envelope.js';
import { brokerSuite, type Outside } from './broker-suite.js';

let url = '';
const log = pino({ level: process.env.SUB0_TEST_LOG ?? 'silent' });

function client(user: string, password: string, clientId = user): Promise<MqttClient | 'refused'> {
  return new Promise((resolve) => {
    const c = mqtt.connect(url, { protocolVersion: 4, clientId, username: user, password, clean: true, reconnectPeriod: 0, connectTimeout: 5000 });
    c.once('connect', () => resolve(c));
    c.once('error', () => {
      c.end(true);
      resolve('refused');
    });
    c.once('close', () => resolve('refused'));
  });
}

const outside: Outside = {
  async login(user, password, clientId) {
    const c = await client(user, password, clientId);
    if (c === 'refused') return 'refused';
    await c.endAsync();
    return 'ok';
  },
  async listen(user, password, filter, o) {
    const c = await client(user, password);
    if (c === 'refused') throw new Error(`${user} cannot log in`);
    const got: { topic: string; payload: string }[] = [];
    let done: () => void = () => undefined;
    const enough = new Promise<void>((r) => (done = r));
    c.on('message', (topic, payload) => {
      got.push({ topic, payload: payload.toString() });
      if (got.length >= o.count) done();
    });
    // MQTT.js rejects a subscription the broker refuses (SUBACK 128): then nothing can arrive.
    const granted = await c.subscribeAsync(filter, { qos: 1 }).then(() => true, () => false);
    if (granted) await Promise.race([enough, new Promise((r) => setTimeout(r, o.ms))]);
    await c.endAsync(true);
    return got;
  },
  async publish(user, password, topic, payload, retain) {
    const c = await client(user, password);
    if (c === 'refused') throw new Error(`${user} cannot log in`);
    // aedes closes the connection of a client whose publish it refuses: the PUBACK never comes.
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    await Promise.race([c.publishAsync(topic, payload, { qos: 1, retain }), closed]);
    await c.endAsync(true);
  },
  async hold(user, password, filter, clientId) {
    const c = await client(user, password, clientId);
    if (c === 'refused') throw new Error(`${user} cannot log in`);
    const got: string[] = [];
    c.on('message', (_t, p) => got.push(p.toString()));
    const dropped = new Promise<void>((r) => c.once('close', () => r()));
    await c.subscribeAsync(filter, { qos: 1 });
    return { dropped, received: () => got, close: () => c.endAsync(true) };
  },
};

brokerSuite(t, {
  foreignClientId: 'refused',
  outside,
  async start(t) {
    const controllerKey = generateSigningKey();
    const adminPassword = 'ab'.repeat(32);
    const broker = await EmbeddedBroker.start({ controllerKey, adminPassword, log });
    url = (await broker.listen('127.0.0.1', 0)).url;
    t.teardown(() => broker.close());
    return { admission: broker, controllerKey, adminPassword };
  },
});
