/**
 * One suite, every broker: the embedded aedes broker and Mosquitto must both admit exactly the
 * nodes the chain admits and fence each to its own topics. Checked from the outside: a plain
 * MQTT.js client for aedes, mosquitto_sub/mosquitto_pub for Mosquitto, never sub0's own client.
 * Logins are the real ones (passwords derived from identity keys against the controller's key).
 */
import type { Test } from 'tap';
import { bytesToHex } from '@noble/hashes/utils.js';
import { CONTROLLER_LOGIN, OBSERVER_LOGIN, nodeBrokerPassword } from '../../../fabric/broker-login.js';
import { generateSigningKey, type SigningKey } from '../../../fabric/envelope.js';
import { configTopic, statusTopic } from '../../../fabric/topics.js';
import type { Admission, BrokerAdmission } from '../../../controller/broker/admission.js';

export const NETWORK = 'lab';

export interface BrokerUnderTest {
  readonly admission: BrokerAdmission;
  readonly controllerKey: SigningKey;
  readonly adminPassword: string;
}

/** What an outside client can do. `ms` bounds waits for things that must not happen. */
export interface Outside {
  /** Connects and disconnects: 'ok', or 'refused' when the broker turned the login down. */
  login(user: string, password: string, clientId?: string): Promise<'ok' | 'refused'>;
  /** Subscribes, collects messages until `count` came or `ms` passed. */
  listen(user: string, password: string, filter: string, o: { count: number; ms: number }): Promise<{ topic: string; payload: string }[]>;
  /** Publishes QoS 1, retained or not; resolves once sent (a refusal may be silent). */
  publish(user: string, password: string, topic: string, payload: string, retain: boolean): Promise<void>;
  /** Holds a subscription open; `dropped` resolves when the broker ends the connection for good. */
  hold(user: string, password: string, filter: string, clientId?: string): Promise<{ readonly dropped: Promise<void>; received(): string[]; close(): Promise<void> }>;
}

export interface SuiteOptions {
  start(t: Test): Promise<BrokerUnderTest>;
  outside: Outside;
  /** What the broker does with a client id that is not the username: refuse it, or replace it by the username. */
  readonly foreignClientId: 'refused' | 'replaced';
}

export function brokerSuite(t: Test, o: SuiteOptions): void {
  const ids: Record<'n1' | 'n2' | 'n3', SigningKey> = { n1: generateSigningKey(), n2: generateSigningKey(), n3: generateSigningKey() };
  const hex = (k: SigningKey) => bytesToHex(k.publicKey);
  let b: BrokerUnderTest;
  const pw = (node: keyof typeof ids, key = ids[node]) => nodeBrokerPassword(key, hex(b.controllerKey), NETWORK, node);
  const admitted = (...nodes: (keyof typeof ids)[]): Admission => new Map(nodes.map((n) => [n, hex(ids[n])]));
  const x = o.outside;
  const admin = () => [CONTROLLER_LOGIN, b.adminPassword] as const;

  t.before(async () => {
    b = await o.start(t);
    await b.admission.admit(NETWORK, admitted('n1', 'n2'));
    await x.publish(...admin(), configTopic(NETWORK, 'n1'), 'config-of-n1', true);
    await x.publish(...admin(), configTopic(NETWORK, 'n2'), 'config-of-n2', true);
  });

  t.test('registered nodes log in as themselves; anyone else is refused', async (t) => {
    t.equal(await x.login('n1', pw('n1')), 'ok', 'n1 with its derived password');
    t.equal(await x.login('n3', pw('n3')), 'refused', 'n3, not registered: refused');
    t.equal(await x.login('n1', pw('n1', generateSigningKey())), 'refused', 'n1 with a password from another identity key: refused');
    t.equal(await x.login('n1', pw('n2')), 'refused', "n1 with n2's password: refused");
    t.equal(await x.login('n1', 'x'.repeat(64)), 'refused', 'a made-up password: refused');
    t.equal(await x.login(CONTROLLER_LOGIN, 'nope'), 'refused', 'the controller login with a wrong secret: refused');
  });

  t.test('a node reads its own config and nothing else', async (t) => {
    const own = await x.listen('n1', pw('n1'), configTopic(NETWORK, 'n1'), { count: 1, ms: 3000 });
    t.same(own.map((m) => m.payload), ['config-of-n1'], 'its own retained config');
    const other = await x.listen('n1', pw('n1'), configTopic(NETWORK, 'n2'), { count: 1, ms: 800 });
    t.same(other, [], "not n2's config");
    const all = await x.listen('n1', pw('n1'), '#', { count: 2, ms: 800 });
    t.notOk(all.some((m) => m.payload === 'config-of-n2'), `not through # (got ${JSON.stringify(all.map((m) => m.topic))})`);
    const wild = await x.listen('n1', pw('n1'), `sub0/${NETWORK}/node/+/config`, { count: 2, ms: 800 });
    t.notOk(wild.some((m) => m.payload === 'config-of-n2'), 'not through +');
  });

  t.test('a node publishes its own status, and cannot publish as another node or as the controller', async (t) => {
    const watch = await x.hold(...admin(), `sub0/${NETWORK}/#`);
    await x.publish('n1', pw('n1'), statusTopic(NETWORK, 'n1'), 'status-of-n1', true);
    await x.publish('n1', pw('n1'), statusTopic(NETWORK, 'n2'), 'forged-status-of-n2', true).catch(() => undefined);
    await x.publish('n1', pw('n1'), configTopic(NETWORK, 'n2'), 'forged-config-of-n2', true).catch(() => undefined);
    await x.publish('n1', pw('n1'), configTopic(NETWORK, 'n1'), 'forged-config-of-n1', true).catch(() => undefined);
    // The last publish of the three: once the controller's view has it, the others were handled before.
    await x.publish('n1', pw('n1'), statusTopic(NETWORK, 'n1'), 'status-of-n1-again', true);
    const until = Date.now() + 3000;
    while (!watch.received().includes('status-of-n1-again') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const got = watch.received();
    await watch.close();
    t.ok(got.includes('status-of-n1'), 'its own status arrives');
    t.notOk(got.some((p) => p.startsWith('forged')), `no forged message arrives (got ${JSON.stringify(got)})`);
    const n2config = await x.listen(...admin(), configTopic(NETWORK, 'n2'), { count: 1, ms: 3000 });
    t.same(n2config.map((m) => m.payload), ['config-of-n2'], "n2's retained config is untouched");
  });

  t.test('the observer login reads everything and writes no config or status', async (t) => {
    const seen = await x.listen(OBSERVER_LOGIN, b.adminPassword, `sub0/${NETWORK}/node/+/config`, { count: 2, ms: 3000 });
    t.same(seen.map((m) => m.payload).sort(), ['config-of-n1', 'config-of-n2'], 'it reads every config');
    await x.publish(OBSERVER_LOGIN, b.adminPassword, configTopic(NETWORK, 'n1'), 'observer-config', true).catch(() => undefined);
    const n1 = await x.listen(...admin(), configTopic(NETWORK, 'n1'), { count: 1, ms: 3000 });
    t.same(n1.map((m) => m.payload), ['config-of-n1'], "n1's config is untouched");
  });

  t.test('a node cannot take over another node\'s session', async (t) => {
    const n1 = await x.hold('n1', pw('n1'), configTopic(NETWORK, 'n1'));
    const r = await x.login('n2', pw('n2'), 'n1');
    if (o.foreignClientId === 'refused') t.equal(r, 'refused', 'a client id other than the node id is refused');
    else t.equal(r, 'ok', 'the client id is replaced by the username');
    await x.publish(...admin(), configTopic(NETWORK, 'n1'), 'config-of-n1-v2', true);
    const until = Date.now() + 3000;
    while (!n1.received().includes('config-of-n1-v2') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    t.ok(n1.received().includes('config-of-n1-v2'), 'n1 is still connected and receives its config');
    await n1.close();
  });

  t.test('a node the chain retires is disconnected and cannot log in again', async (t) => {
    const n2 = await x.hold('n2', pw('n2'), configTopic(NETWORK, 'n2'));
    await b.admission.admit(NETWORK, admitted('n1'));
    const dropped = await Promise.race([n2.dropped.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    t.ok(dropped, 'its open connection is closed');
    t.equal(await x.login('n2', pw('n2')), 'refused', 'a new login is refused');
    t.equal(await x.login('n1', pw('n1')), 'ok', 'n1 is unaffected');
    await n2.close();
    await b.admission.admit(NETWORK, admitted('n1', 'n2'));
    t.equal(await x.login('n2', pw('n2')), 'ok', 're-admitted: it logs in again');
  });

  t.test('a node registered with a new identity key needs the new key', async (t) => {
    const fresh = generateSigningKey();
    const old = ids.n2;
    await b.admission.admit(NETWORK, new Map([['n1', hex(ids.n1)], ['n2', hex(fresh)]]));
    t.equal(await x.login('n2', pw('n2', old)), 'refused', 'the old key no longer logs in');
    t.equal(await x.login('n2', pw('n2', fresh)), 'ok', 'the new one does');
  });
}
