/**
 * The whole system on one machine: a local chain (a real Substrate runtime), a broker (the
 * embedded aedes one, or Mosquitto), the controller, and N node agents in network namespaces
 * joined by the WireGuard overlay. Every node, slot and rule is registered on chain by signed
 * extrinsics; every config an agent enforces comes from the chain through the controller and the
 * broker, signed. `sub0 lab up` runs it; the end-to-end tests and the control bench drive it.
 *
 * The nodes reach the broker at the lab's data center address (10.77.0.1:1883, relayed to the
 * broker on loopback, dc-gateway.ts); the controller runs in this process or as a process of its
 * own (which tests kill). Slots are simulated by their addresses on the node's loopback, following
 * the config each node accepted (slot-sim.ts), or, with `vmSlots`, run as VMs by the agents. destroy() removes everything, also after a crash
 * (the namespace lab's sweep), and leaves the chain's files in `home` for inspection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import type { SigningKey } from '../fabric/envelope.js';
import { Sub0Error } from '../fabric/errors.js';
import type { BlockRef } from '../fabric/schema.js';
import { loadOrCreateAdminSecret } from '../controller/broker/admin-secret.js';
import { MosquittoAdmission } from '../controller/broker/mosquitto-admission.js';
import { connect, type ChainClient } from '../controller/chain/client.js';
import { keyFromSuri } from '../controller/chain/keys.js';
import { authorizeGatekeeper } from '../controller/chain/gatekeeper-proxy.js';
import { DEFAULT_POLICY } from '../controller/config.js';
import type { HealthPolicy } from '../fabric/health.js';
import { startLocalChain, type LocalChain } from '../controller/chain/local-chain.js';
import { openRegistry } from '../controller/chain/open-registry.js';
import type { LogosRegistry, RegistryChange, Signer, Submitted } from '../controller/chain/registry.js';
import { ControllerService } from '../controller/service.js';
import { verifyConfig } from '../fabric/signing.js';
import { ACCEPTED_FILE } from '../overlay/agent/config-gate.js';
import type { AgentStatus } from '../overlay/agent/status.js';
import { agentLogTail, readAgentStatus, waitAgentStatus } from './agent-files.js';
import { logTail, stopProcess } from './processes.js';
import { loadOrCreateIdentity } from '../overlay/agent/identity.js';
import { loadOrCreateSigningKey } from '../overlay/signing-key-file.js';
import { forwardIntoNetns, type Forward } from './dc-gateway.js';
import { DC_ADDRESS, Lab, type LabNode } from './lab.js';
import { Mosquitto } from './mosquitto.js';
import { agentProgram, REPO, sub0Program } from './programs.js';
import { SlotSim } from './slot-sim.js';
import { ImageStore } from '../overlay/slots/image-store.js';
import { slotFiles } from '../overlay/slots/slot-vm.js';
import { realKvm } from '../overlay/slots/slot-net.js';
import { sweepSlotCgroups } from '../overlay/slots/slot-cgroup.js';
import { OpsConsole } from './ops-console.js';

export const LAB_NETWORK = 'lab';
export const LAB_DVCI = 'lab';
export const BROKER_PORT = 1883;

export interface ControlLabOptions {
  /** Holds the chain, the controller's state and the broker's files; started afresh. */
  readonly home: string;
  readonly nodes?: number;
  readonly broker?: 'embedded' | 'mosquitto';
  readonly controller?: 'in-process' | 'process';
  readonly tag?: string;
  readonly chainPort?: number;
  readonly log: Logger;
  /** One line per start-up step, for a person watching. */
  readonly progress?: (line: string) => void;
  /** Extra agent flags. */
  readonly agentFlags?: readonly string[];
  /** Register the lab's slots and rules (default true). */
  readonly seed?: boolean;
  /** How the gatekeepers judge nodes (default: the controller's defaults). */
  readonly gatekeeper?: Partial<HealthPolicy>;
  /**
   * A second controller of the DVCI, with its own key, its own embedded broker (at the data center
   * address, port 1884) and its own gatekeeper account, in a process of its own: the agents use
   * both brokers and trust both keys.
   */
  readonly secondController?: boolean;
  /**
   * Slots as VMs: every agent runs with --slots, the slots are registered with this image (put in
   * each node's image store first), and no slot is simulated on a loopback.
   */
  readonly vmSlots?: { readonly file: string; readonly ref: string };
}

/** The lab's gatekeeper accounts (one per controller), authorized by the operator at start. */
export const LAB_GATEKEEPERS = ['//Dave', '//Eve'] as const;
export const SECOND_BROKER_PORT = 1884;

/** A second controller: a process with its embedded broker, reached by the nodes at DC_ADDRESS:1884. */
export interface SecondController {
  readonly dir: string;
  readonly key: SigningKey;
  readonly keyHex: string;
  readonly adminSecret: string;
  readonly brokerPort: number;
  readonly brokerUrl: string;
  readonly gateway: Forward;
  proc: ChildProcess | undefined;
}

export interface LabNodeInfo extends LabNode {
  /** The node's identity key (hex), registered on chain. */
  readonly identityKey: string;
}

/** The lab network's slots: one per node, roles web, rpc, db in turn. */
export function labSlots(nodes: readonly string[]): { id: string; node: string; group: string }[] {
  const roles = ['web', 'rpc', 'db'];
  return nodes.map((node, i) => ({ id: `${roles[i % 3]}-${Math.floor(i / 3) + 1}`, node, group: roles[i % 3]! }));
}

export const LAB_RULES = [
  { id: 'web-to-rpc', from: 'group:web', to: 'group:rpc', proto: 'tcp', ports: ['9944'] },
  { id: 'rpc-to-db', from: 'group:rpc', to: 'group:db', proto: 'tcp', ports: ['5432'] },
  { id: 'ping-rpc', from: 'group:web', to: 'group:rpc', proto: 'icmp', ports: [] },
] as const;

export class ControlLab {
  private readonly agents = new Map<string, ChildProcess>();
  private controllerProc: ChildProcess | undefined;
  service: ControllerService | undefined;
  private destroyed = false;

  private constructor(
    private readonly o: ControlLabOptions,
    readonly lab: Lab,
    readonly nodes: readonly LabNodeInfo[],
    readonly chain: LocalChain,
    readonly client: ChainClient,
    readonly registry: LogosRegistry,
    readonly operator: Signer,
    readonly controllerKey: SigningKey,
    readonly adminSecret: string,
    readonly controllerDir: string,
    /** Where this process (and the controller) reach the broker. */
    readonly brokerUrl: string,
    readonly brokerPort: number,
    readonly mosquitto: Mosquitto | undefined,
    readonly gateway: Forward,
    readonly slots: SlotSim,
    readonly second: SecondController | undefined,
  ) {}

  /** The controller keys of the DVCI (hex): the first controller's, then the second's. */
  get controllerKeys(): string[] {
    return [this.controllerKeyHex, ...(this.second ? [this.second.keyHex] : [])];
  }

  private get gatekeeperFlags(): string[] {
    const g = this.o.gatekeeper ?? {};
    return [
      ...(g.heartbeatTimeoutMs !== undefined ? ['--heartbeat-timeout-ms', String(g.heartbeatTimeoutMs)] : []),
      ...(g.settleMs !== undefined ? ['--settle-ms', String(g.settleMs)] : []),
      ...(g.graceMs !== undefined ? ['--quarantine-grace-ms', String(g.graceMs)] : []),
    ];
  }

  /** The lab's data directory: its chain's record is there (SUB0_HOME for the CLI against this lab). */
  get home(): string {
    return this.o.home;
  }

  /** Where the nodes reach the broker. */
  get nodeBrokerUrl(): string {
    return `mqtt://${DC_ADDRESS}:${BROKER_PORT}`;
  }

  get controllerKeyHex(): string {
    return bytesToHex(this.controllerKey.publicKey);
  }

  static async start(o: ControlLabOptions): Promise<ControlLab> {
    const say = o.progress ?? (() => undefined);
    const count = o.nodes ?? 3;
    if (!Number.isInteger(count) || count < 1 || count > 200) throw new Sub0Error('invalid-input', `--nodes must be 1 to 200, got ${count}`);
    // A fresh start: the chain starts from genesis (fresh), the controller and broker from nothing.
    for (const d of ['controller', 'mosquitto']) rmSync(join(o.home, d), { recursive: true, force: true });
    mkdirSync(o.home, { recursive: true });
    const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);

    say(`network namespaces for ${count} node(s) and the data center (${DC_ADDRESS})`);
    const lab = Lab.create({ nodes: ids, tag: o.tag ?? 'lab' });
    const cleanups: (() => Promise<void> | void)[] = [() => lab.destroy()];
    const undo = async () => {
      for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    };
    try {
      const nodes = lab.nodes.map((n) => ({ ...n, identityKey: loadOrCreateIdentity(n.stateDir).publicKeyHex }));

      say('the local chain (a Substrate runtime, offline) and the registry');
      const chain = await startLocalChain({ home: o.home, port: o.chainPort ?? 0, fresh: true, network: LAB_NETWORK, networkName: 'sub0 lab', log: o.log });
      cleanups.push(() => chain.close());
      const client = await connect(chain.endpoint);
      cleanups.push(() => client.close());
      const registry = openRegistry(client, chain.registry);
      const operator: Signer = { pair: await keyFromSuri('//Alice', { lab: true }) };

      const controllerDir = join(o.home, 'controller');
      const { key } = loadOrCreateSigningKey(join(controllerDir, 'signing.key'));
      const adminSecret = loadOrCreateAdminSecret(join(controllerDir, 'broker.secret'));

      let mosquitto: Mosquitto | undefined;
      let brokerUrl: string;
      let brokerPort: number;
      if (o.broker === 'mosquitto') {
        say('Mosquitto, admission from the chain');
        const dir = join(o.home, 'mosquitto');
        await new MosquittoAdmission({ dir, controllerKey: key, adminPassword: adminSecret, log: o.log }).admit(LAB_NETWORK, new Map());
        mosquitto = await Mosquitto.start({ dir });
        cleanups.push(() => mosquitto!.stop());
        brokerUrl = mosquitto.url;
        brokerPort = mosquitto.port;
      } else {
        const { freePort } = await import('./mosquitto.js');
        brokerPort = await freePort();
        brokerUrl = `mqtt://127.0.0.1:${brokerPort}`;
      }
      const gateway = await forwardIntoNetns(lab.bridgeNs, DC_ADDRESS, BROKER_PORT, { host: '127.0.0.1', port: brokerPort });
      cleanups.push(() => gateway.close());
      let second: SecondController | undefined;
      if (o.secondController) {
        const dir = join(o.home, 'controller-b');
        rmSync(dir, { recursive: true, force: true });
        const k2 = loadOrCreateSigningKey(join(dir, 'signing.key')).key;
        const { freePort } = await import('./mosquitto.js');
        const port2 = await freePort();
        const gw2 = await forwardIntoNetns(lab.bridgeNs, DC_ADDRESS, SECOND_BROKER_PORT, { host: '127.0.0.1', port: port2 });
        cleanups.push(() => gw2.close());
        second = { dir, key: k2, keyHex: bytesToHex(k2.publicKey), adminSecret: loadOrCreateAdminSecret(join(dir, 'broker.secret')), brokerPort: port2, brokerUrl: `mqtt://127.0.0.1:${port2}`, gateway: gw2, proc: undefined };
      }
      const slots = new SlotSim(lab, [key.publicKey, ...(second ? [second.key.publicKey] : [])]);
      cleanups.push(() => slots.stop());

      say(`the gatekeeper account${second ? 's' : ''} (${LAB_GATEKEEPERS.slice(0, second ? 2 : 1).join(', ')}): proxies of the operator on chain`);
      for (const suri of LAB_GATEKEEPERS.slice(0, second ? 2 : 1)) await authorizeGatekeeper(client, operator, (await keyFromSuri(suri, { lab: true })).address);

      const cl = new ControlLab(o, lab, nodes, chain, client, registry, operator, key, adminSecret, controllerDir, brokerUrl, brokerPort, mosquitto, gateway, slots, second);
      cleanups.length = 0; // from here on, destroy() owns everything
      try {
        say(`the controller (${o.controller === 'process' ? 'its own process' : 'in this process'}) with the ${o.broker === 'mosquitto' ? 'Mosquitto' : 'embedded'} broker`);
        await cl.startController();
        if (second) {
          say('a second controller of the DVCI, with its own broker (its own process)');
          await cl.startSecondController();
        }
        let setup: Submitted | undefined;
        if (o.seed ?? true) {
          say(`registering on chain: DVCI "${LAB_DVCI}" (controller key${second ? 's' : ''} ${cl.controllerKeys.map((k) => `${k.slice(0, 12)}…`).join(', ')}), ${count} node(s), ${count} slot(s), ${LAB_RULES.length} rules`);
          setup = await cl.submit(labNetwork(nodes, cl.controllerKeys, o.vmSlots?.ref));
        }
        if (o.vmSlots) for (const n of nodes) await new ImageStore(join(n.stateDir, 'images')).add(o.vmSlots.file);
        else slots.start();
        say(`starting ${count} node agent(s)`);
        for (const n of nodes) cl.startAgent(n.id);
        if (setup) {
          say('waiting for every node to apply its config');
          await Promise.all(nodes.map((n) => cl.waitApplied(n.id, setup!.block, 60_000)));
          if (o.vmSlots) {
            say(`waiting for the slot VMs to boot (${realKvm() ? 'KVM' : 'emulated by QEMU: no KVM on this machine'})`);
            await Promise.all(labSlots(ids).map(async (x) => (await cl.slotConsole(x.id, 180_000)).close()));
          }
        }
        return cl;
      } catch (e) {
        await cl.destroy();
        throw e;
      }
    } catch (e) {
      await undo();
      throw e;
    }
  }

  node(id: string): LabNodeInfo {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Sub0Error('not-found', `no lab node "${id}"`);
    return n;
  }

  /** Submits registry changes signed by the operator (//Alice); resolves once finalized. */
  submit(changes: readonly RegistryChange[], signer: Signer = this.operator): Promise<Submitted> {
    return this.registry.submit(changes, signer);
  }

  // ---------------------------------------------------------------- controller

  /** Starts the controller, in this process or as `sub0 controller` in its own. */
  async startController(): Promise<void> {
    const o = this.o;
    const cursorFile = join(this.controllerDir, 'cursor.json');
    const embedded = o.broker !== 'mosquitto';
    if (o.controller === 'process') {
      const p = this.spawnController(this.controllerDir, LAB_GATEKEEPERS[0], embedded
        ? ['--embedded-broker', '--listen', `127.0.0.1:${this.brokerPort}`]
        : ['--broker', this.brokerUrl, '--mosquitto-dir', this.mosquitto!.dir, '--mosquitto-pid', this.mosquitto!.pidFile]);
      this.controllerProc = p;
      await this.waitListening(embedded);
      return;
    }
    this.service = await ControllerService.start({
      client: this.client,
      registry: this.registry,
      key: this.controllerKey,
      adminSecret: this.adminSecret,
      cursorFile,
      log: o.log.child({ component: 'controller' }),
      broker: embedded ? { kind: 'embedded', listen: [{ host: '127.0.0.1', port: this.brokerPort }] } : { kind: 'external', url: this.brokerUrl, mosquitto: { dir: this.mosquitto!.dir, pidFile: this.mosquitto!.pidFile } },
      gatekeeper: { policy: { ...DEFAULT_POLICY, ...o.gatekeeper }, signer: await keyFromSuri(LAB_GATEKEEPERS[0], { lab: true }) },
    });
  }

  /** `sub0 controller` in a process of its own, logging to `dir`/controller.log. */
  private spawnController(dir: string, gatekeeper: string, brokerFlags: readonly string[]): ChildProcess {
    const [cmd, ...pre] = sub0Program();
    const args = [...pre, 'controller', '--endpoint', this.chain.endpoint, '--registry', this.chain.registry, '--state-dir', dir, '--log-format', 'json', '--gatekeeper-suri', gatekeeper, ...this.gatekeeperFlags, ...brokerFlags];
    const log = openSync(join(dir, 'controller.log'), 'a');
    // The lab's chain record is in its home: the controller knows it is the local chain (dev keys).
    return spawn(cmd!, args, { cwd: REPO, stdio: ['ignore', log, log], env: { ...process.env, SUB0_HOME: this.o.home } });
  }

  /** Starts the second controller (`sub0 controller` with its embedded broker) in its own process. */
  async startSecondController(): Promise<void> {
    const b = this.second;
    if (!b) throw new Sub0Error('invalid-input', 'this lab has no second controller');
    b.proc = this.spawnController(b.dir, LAB_GATEKEEPERS[1], ['--embedded-broker', '--listen', `127.0.0.1:${b.brokerPort}`]);
    await this.waitBroker(b.brokerUrl, b.adminSecret, b.proc, join(b.dir, 'controller.log'));
  }

  /** Kills the second controller and, with it, its broker. */
  async killSecondController(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.second?.proc;
    if (!p) return;
    await stopProcess(p, signal);
    this.second!.proc = undefined;
  }

  /** Kills the controller (SIGKILL by default: a crash) and waits until it is gone. */
  async killController(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.controllerProc;
    if (p) {
      await stopProcess(p, signal);
      this.controllerProc = undefined;
    }
    if (this.service) {
      await this.service.stop();
      this.service = undefined;
    }
  }

  /** The controller process's log (when it runs as one). */
  controllerLog(lines = 30): string {
    return logTail(join(this.controllerDir, 'controller.log'), lines);
  }

  private async waitListening(embedded: boolean): Promise<void> {
    if (!embedded) {
      if (this.controllerProc && this.controllerProc.exitCode !== null) throw new Sub0Error('driver', `the controller exited:\n${this.controllerLog()}`);
      return;
    }
    await this.waitBroker(this.brokerUrl, this.adminSecret, this.controllerProc, join(this.controllerDir, 'controller.log'));
  }

  /** A controller's process is up once the observer login works at its embedded broker. */
  private async waitBroker(url: string, secret: string, proc: ChildProcess | undefined, logFile: string): Promise<void> {
    const { MqttLink } = await import('../overlay/mqtt/mqtt-link.js');
    const { OBSERVER_LOGIN } = await import('../fabric/broker-login.js');
    const tail = () => logTail(logFile);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (proc && proc.exitCode !== null) throw new Sub0Error('driver', `the controller exited:\n${tail()}`);
      const link = new MqttLink({ url, clientId: `lab-probe-${process.pid}`, username: OBSERVER_LOGIN, password: () => secret, log: this.o.log, reconnectMs: 0 });
      const ok = await link.waitConnected(1000).then(() => true, () => false);
      await link.close(true);
      if (ok) return;
    }
    throw new Sub0Error('timeout', `the controller did not come up in 60 s:\n${tail()}`);
  }

  // ---------------------------------------------------------------- agents

  startAgent(id: string, extra: readonly string[] = []): ChildProcess {
    const n = this.node(id);
    const [cmd, ...pre] = agentProgram();
    const args = [
      ...pre,
      '--broker', this.nodeBrokerUrl, ...(this.second ? ['--broker', `mqtt://${DC_ADDRESS}:${SECOND_BROKER_PORT}`] : []),
      '--network', LAB_NETWORK,
      '--node', n.id,
      '--trust', ...this.controllerKeys,
      '--ifname', n.ifname,
      '--state-dir', n.stateDir,
      '--pin-dir', this.lab.pinDir,
      '--resync-ms', '5000',
      '--status-interval-ms', '5000',
      '--log-format', 'json',
      ...(this.o.vmSlots ? ['--slots'] : []),
      ...(this.o.agentFlags ?? []),
      ...extra,
    ];
    const log = this.lab.logFd(id, 'agent.log');
    const p = this.lab.spawn(id, cmd!, args, { cwd: REPO, stdio: ['ignore', log, log] });
    this.agents.set(id, p);
    return p;
  }

  async stopAgent(id: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.agents.get(id);
    if (p) await stopProcess(p, signal);
  }

  /** The agent's status.json. */
  status(id: string): AgentStatus | undefined {
    return readAgentStatus(this.node(id).stateDir);
  }

  agentLog(id: string, lines = 20): string {
    return agentLogTail(this.node(id).stateDir, lines);
  }

  /** Waits until the node's agent status satisfies `pred`; fails with its log tail. */
  waitStatus(id: string, pred: (s: AgentStatus) => boolean, what: string, timeoutMs = 30_000): Promise<AgentStatus> {
    return waitAgentStatus({ node: id, stateDir: this.node(id).stateDir, proc: this.agents.get(id) }, pred, what, timeoutMs);
  }

  /** Waits until the node applied (fully converged to) a config compiled at or after `block`. */
  waitApplied(id: string, block: BlockRef | number, timeoutMs?: number): Promise<AgentStatus> {
    const n = typeof block === 'number' ? block : block.number;
    return this.waitStatus(id, (s) => !!s.converged && s.converged.revision >= n && s.accepted?.hash === s.converged.hash, `a config of block #${n} or later to be applied`, timeoutMs);
  }

  /** The slot's addresses without prefix length, from the node that runs it. */
  slotAddress(slot: string): { v4: string; v6: string; node: string } {
    for (const n of this.nodes) {
      try {
        const { config } = verifyConfig(readFileSync(join(n.stateDir, ACCEPTED_FILE)), this.controllerKeys.map((k) => hexToBytes(k)));
        const s = config.slots.find((x) => x.id === slot);
        if (s) return { v4: s.ipv4.split('/')[0]!, v6: s.ipv6.split('/')[0]!, node: n.id };
      } catch {
        /* no config yet */
      }
    }
    throw new Sub0Error('not-found', `slot "${slot}" runs on no lab node`);
  }

  /**
   * The out-of-band console of a VM slot, once its guest's shell answers (lab/ops-console.ts):
   * how the lab and the tests make traffic from inside a slot.
   */
  async slotConsole(slot: string, timeoutMs = 120_000): Promise<OpsConsole> {
    if (!this.o.vmSlots) throw new Sub0Error('invalid-input', 'this lab simulates its slots (no --vm-slots): they have no console');
    const node = this.node(this.slotAddress(slot).node);
    const until = Date.now() + timeoutMs;
    await this.waitStatus(node.id, (s) => s.slots?.some((x) => x.id === slot && x.phase === 'running') ?? false, `slot ${slot} running`, timeoutMs);
    const c = await OpsConsole.open(slotFiles(join(node.stateDir, 'slots'), slot).ops);
    try {
      await c.ready(Math.max(1000, until - Date.now()));
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  /** Tears everything down; idempotent. The chain's files stay in `home`. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const id of this.agents.keys()) await this.stopAgent(id, 'SIGTERM').catch(() => undefined);
    await this.killController('SIGTERM').catch(() => undefined);
    await this.killSecondController('SIGTERM').catch(() => undefined);
    await this.second?.gateway.close().catch(() => undefined);
    this.slots.stop();
    await this.gateway.close().catch(() => undefined);
    await this.mosquitto?.stop().catch(() => undefined);
    await this.client.close().catch(() => undefined);
    await this.chain.close().catch(() => undefined);
    this.lab.destroy();
    // The slot VMs died with the lab's namespaces: their cgroups are empty now.
    if (this.o.vmSlots) sweepSlotCgroups();
  }
}

/** The lab network as registry changes: the DVCI, the nodes with their real keys, slots, rules. */
export function labNetwork(nodes: readonly LabNodeInfo[], controllers: readonly string[] = [], vmImage?: string): RegistryChange[] {
  const changes: RegistryChange[] = [{ op: 'create', kind: 'dvci', fields: { id: LAB_DVCI, name: 'Lab DC', controllers: [...controllers] } }];
  for (const n of nodes) {
    changes.push({ op: 'create', kind: 'node', fields: { id: n.id, dvci: LAB_DVCI, wgPublicKey: n.publicKey, identityKey: n.identityKey, endpoints: [n.endpoint], listenPort: n.listenPort, state: 'active' } });
  }
  for (const s of labSlots(nodes.map((n) => n.id))) {
    // Simulated slots only hold addresses; VM slots boot the lab's small image.
    const res = vmImage ? { vcpus: 1, memoryMiB: 128, diskGiB: 1, image: vmImage } : { vcpus: 1, memoryMiB: 512, diskGiB: 5, image: 'debian-12' };
    changes.push({ op: 'create', kind: 'slot', fields: { id: s.id, node: s.node, state: 'assigned', ...res, groups: [s.group] } });
  }
  for (const r of LAB_RULES) changes.push({ op: 'create', kind: 'rule', fields: { ...r, ports: [...r.ports] } });
  return changes;
}
