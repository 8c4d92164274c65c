/**
 * aedes (MQTT 3.1.1) with admission from the chain: the embedded broker's core, run in a worker
 * thread of the controller's process (embedded-broker.ts), or wherever a test starts it. A DVCI
 * that outgrows one process runs Mosquitto (mosquitto-admission.ts) instead.
 *
 * Logins: the controller (CONTROLLER_LOGIN, a random secret of its own), read-only tools on its
 * machine (OBSERVER_LOGIN, the same secret), and admitted nodes, each
 * as itself (username = client id = node id) with the password derived from its registered
 * identity key (fabric/broker-login.ts). Topics: a node subscribes to its config topic only and
 * publishes to its status topic only (its last will included); nothing else is forwarded to it.
 * Everything refused is logged with the node and the address it came from.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { Aedes, type Client } from 'aedes';
import type { Logger } from 'pino';
import { CONTROLLER_LOGIN, OBSERVER_LOGIN, expectedBrokerPassword } from '../../fabric/broker-login.js';
import type { SigningKey } from '../../fabric/envelope.js';
import { TOPIC_ROOT, configTopic, observerTree, statusTopic } from '../../fabric/topics.js';
import type { Admission, BrokerAdmission } from './admission.js';

export interface AedesBrokerOptions {
  /** The network served; until admit() names it, only the controller may log in. */
  readonly network?: string;
  /** The controller's signing key: node passwords are derived against it. */
  readonly controllerKey: SigningKey;
  /** The controller's own login secret. */
  readonly adminPassword: string;
  readonly log: Logger;
}

type Role = { readonly kind: 'admin' } | { readonly kind: 'observer' } | { readonly kind: 'node'; readonly node: string; readonly key: string };

const AUTH_BAD_LOGIN = 4;
const AUTH_IDENTIFIER_REJECTED = 2;

export class AedesBroker implements BrokerAdmission {
  private admitted: Admission = new Map();
  private network: string | undefined;
  private readonly roles = new WeakMap<Client, Role>();
  /** node + identity key -> expected password (an X25519 agreement costs ~1 ms). */
  private readonly passwords = new Map<string, string>();
  private readonly servers: Server[] = [];
  private readonly log: Logger;

  private constructor(readonly aedes: Aedes, private readonly o: AedesBrokerOptions) {
    this.log = o.log.child({ component: 'broker' });
    this.network = o.network;
  }

  static async start(o: AedesBrokerOptions): Promise<AedesBroker> {
    const aedes = new Aedes();
    const b = new AedesBroker(aedes, o);
    aedes.preConnect = (client, packet, done) => done(null, b.willAllowed(packet.username, packet.will?.topic, client));
    aedes.authenticate = (client, username, password, done) => b.authenticate(client, username, password, done);
    aedes.authorizeSubscribe = (client, sub, done) => done(null, b.maySubscribe(client, sub.topic) ? sub : null);
    aedes.authorizePublish = (client, packet, done) => done(b.mayPublish(client, packet.topic) ? null : new Error(`publish to ${packet.topic} refused`));
    aedes.authorizeForward = (client, packet) => (b.mayReceive(client, packet.topic) ? packet : null);
    await aedes.listen();
    return b;
  }

  /** Serves MQTT on host:port (0: any free port); resolves with the address bound. */
  async listen(host: string, port: number): Promise<{ host: string; port: number; url: string }> {
    const server = createServer((socket) => this.aedes.handle(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.push(server);
    const a = server.address() as AddressInfo;
    const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return { host: a.address, port: a.port, url: `mqtt://${shown}:${a.port}` };
  }

  /** Serves MQTT on a socket server made elsewhere (e.g. inside a network namespace). */
  serve(server: Server): void {
    server.on('connection', (socket) => this.aedes.handle(socket));
    this.servers.push(server);
  }

  get admittedNodes(): Admission {
    return this.admitted;
  }

  async admit(network: string, nodes: Admission): Promise<void> {
    const before = this.network === network ? this.admitted : new Map<string, string>();
    if (this.network !== network) for (const k of this.passwords.keys()) this.passwords.delete(k);
    this.network = network;
    this.admitted = new Map(nodes);
    for (const [node, key] of before) {
      if (nodes.get(node) === key) continue;
      this.passwords.delete(`${node}/${key}`);
      const client = (this.aedes as unknown as { clients: Record<string, Client | undefined> }).clients[node];
      const role = client ? this.roles.get(client) : undefined;
      if (client && role?.kind === 'node' && role.node === node) {
        this.log.warn({ node }, 'broker access revoked: disconnected');
        client.close();
      }
    }
  }

  async close(): Promise<void> {
    for (const s of this.servers) s.close();
    await new Promise<void>((r) => this.aedes.close(() => r()));
  }

  private willAllowed(username: string | undefined, willTopic: string | undefined, client: Client): boolean {
    if (willTopic === undefined || username === CONTROLLER_LOGIN) return true;
    if (username !== undefined && this.network !== undefined && willTopic === statusTopic(this.network, username)) return true;
    this.log.warn({ node: username, willTopic, from: remote(client) }, 'login refused: a last will on a topic not its own');
    return false;
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (e: (Error & { returnCode: number }) | null, ok: boolean | null) => void): void {
    const refuse = (code: number, why: string) => {
      this.log.warn({ user: username, clientId: client.id, from: remote(client) }, `login refused: ${why}`);
      done(Object.assign(new Error(why), { returnCode: code }), null);
    };
    if (username === undefined || password === undefined) return refuse(AUTH_BAD_LOGIN, 'no username or password');
    if (username === CONTROLLER_LOGIN || username === OBSERVER_LOGIN) {
      if (!same(password, this.o.adminPassword)) return refuse(AUTH_BAD_LOGIN, `wrong ${username} password`);
      this.roles.set(client, { kind: username === CONTROLLER_LOGIN ? 'admin' : 'observer' });
      return done(null, true);
    }
    const key = this.admitted.get(username);
    const network = this.network;
    if (key === undefined || network === undefined) return refuse(AUTH_BAD_LOGIN, 'not a node the chain admits (unknown, not active, or no identity key)');
    if (client.id !== username) return refuse(AUTH_IDENTIFIER_REJECTED, `client id "${client.id}" is not the node id`);
    let expected = this.passwords.get(`${username}/${key}`);
    if (expected === undefined) {
      try {
        expected = expectedBrokerPassword(this.o.controllerKey, key, network, username);
      } catch (e) {
        return refuse(AUTH_BAD_LOGIN, (e as Error).message);
      }
      this.passwords.set(`${username}/${key}`, expected);
    }
    if (!same(password, expected)) return refuse(AUTH_BAD_LOGIN, 'wrong password for its registered identity key');
    this.roles.set(client, { kind: 'node', node: username, key });
    done(null, true);
  }

  private maySubscribe(client: Client, topic: string): boolean {
    const role = this.roles.get(client);
    if (role?.kind === 'admin' || role?.kind === 'observer') return true;
    if (role?.kind === 'node' && this.network !== undefined && topic === configTopic(this.network, role.node)) return true;
    this.log.warn({ node: role?.kind === 'node' ? role.node : undefined, topic }, 'subscription refused');
    return false;
  }

  private mayPublish(client: Client | null, topic: string): boolean {
    if (client === null) return true; // the broker's own messages
    const role = this.roles.get(client);
    if (role?.kind === 'admin') return topic.startsWith(`${TOPIC_ROOT}/`);
    if (role?.kind === 'observer') return this.network !== undefined && topic.startsWith(observerTree(this.network).slice(0, -1));
    if (role?.kind === 'node' && this.network !== undefined && topic === statusTopic(this.network, role.node)) return true;
    this.log.warn({ node: role?.kind === 'node' ? role.node : undefined, topic }, 'publish refused; client disconnected');
    return false;
  }

  private mayReceive(client: Client, topic: string): boolean {
    const role = this.roles.get(client);
    return role?.kind === 'admin' || role?.kind === 'observer' || (role?.kind === 'node' && this.network !== undefined && topic === configTopic(this.network, role.node));
  }
}

function same(given: Buffer, expected: string): boolean {
  const e = Buffer.from(expected);
  return given.length === e.length && timingSafeEqual(given, e);
}

function remote(client: Client): string | undefined {
  const s = (client as unknown as { conn?: { remoteAddress?: string } }).conn;
  return s?.remoteAddress;
}
