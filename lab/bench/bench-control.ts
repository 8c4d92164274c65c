/**
 * bench:control: the control plane at 1,000 nodes, end to end, on one broker. A local chain holds
 * a registry of 1,000 nodes in DVCIs of 100 / 10,000 slots / 10,000 slot-to-slot rules, four in
 * five inside a DVCI (registry-fixture.ts, shape 'pairs'); the controller
 * runs as in production (ControllerService: incremental passes, admission, MQTT sink); 1,000
 * simulated agents in two processes verify each config and acknowledge it with their signed
 * status (sim-agents.ts). Measured, from the moment a block is finalized (its head reaches this
 * process) to the last acknowledgement of the configs it changed:
 *  - one ACL change (a rule between two slots on two nodes of different DVCIs);
 *  - a block touching every node (one node per DVCI moves its endpoint: every peer list changes);
 * with the controller's own part of each (read, compile, sign and publish: its pass record) and,
 * as the baseline, the chain's block time in the same run (extrinsic submitted -> block final).
 * The controller's gatekeeper watches every agent through its heartbeats (a status every 5 s),
 * as in production; last, a few agents vanish one at a time and the time until their peers run
 * without them is measured (silent-node.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { Logger } from 'pino';
import type { HealthPolicy } from '../../fabric/health.js';
import { OBSERVER_LOGIN } from '../../fabric/broker-login.js';
import { configHash } from '../../fabric/encoding.js';
import { generateSigningKey } from '../../fabric/envelope.js';
import { allStatuses, nodeOfTopic } from '../../fabric/topics.js';
import { MosquittoAdmission } from '../../controller/broker/mosquitto-admission.js';
import { connect } from '../../controller/chain/client.js';
import { authorizeGatekeeper } from '../../controller/chain/gatekeeper-proxy.js';
import { keyFromSuri } from '../../controller/chain/keys.js';
import { startLocalChain } from '../../controller/chain/local-chain.js';
import { openRegistry } from '../../controller/chain/open-registry.js';
import type { LogosRegistry, RegistryChange } from '../../controller/chain/registry.js';
import type { PassRecord } from '../../controller/controller.js';
import { ControllerService, type BrokerChoice } from '../../controller/service.js';
import { MqttLink } from '../../overlay/mqtt/mqtt-link.js';
import { freePort, Mosquitto } from '../mosquitto.js';
import { LAB_GATEKEEPERS } from '../control-lab.js';
import { median } from './median.js';
import { benchNodeId, loadRegistryFixture } from './registry-fixture.js';
import { silentNodeTrial, type SilentTrial } from './silent-node.js';

export interface ControlBenchOptions {
  readonly broker: 'aedes' | 'mosquitto';
  readonly nodes?: number;
  readonly trials?: number;
  readonly log: Logger;
  readonly say?: (line: string) => void;
}

export interface Trial {
  /** Finality -> last affected agent's acknowledgement. */
  readonly ms: number;
  readonly affected: number;
  /** The controller's pass for that block. */
  readonly pass: PassRecord['ms'] | undefined;
  /** Extrinsic submitted -> its block final. */
  readonly blockMs: number;
}

export interface ControlBenchResult {
  readonly broker: string;
  readonly nodes: number;
  /** First publish of every config (controller start -> all acknowledged). */
  readonly initialMs: number;
  readonly one: readonly Trial[];
  readonly full: readonly Trial[];
  /** A vanished agent, until its peers run without it. */
  readonly silent: readonly SilentTrial[];
  readonly policy: HealthPolicy;
  readonly heartbeatMs: number;
}

const NETWORK_OF_FIXTURE = 'lab';
/**
 * The gatekeeper's policy in this bench. Only the grace is in the silent-node figure (a will is
 * "offline" at once); the heartbeat timeout is three missed heartbeats and the settling time
 * longer than a full republish to 1,000 agents on 2 busy cores, so that no agent is quarantined
 * for being slow during the other cases.
 */
export const BENCH_POLICY: HealthPolicy = { heartbeatTimeoutMs: 15_000, settleMs: 10_000, graceMs: 2_000 };
export const BENCH_HEARTBEAT_MS = 5_000;

export async function benchControl(o: ControlBenchOptions): Promise<ControlBenchResult> {
  const nodes = o.nodes ?? 1000;
  const trials = o.trials ?? 5;
  const say = o.say ?? (() => undefined);
  const home = mkdtempSync(join(tmpdir(), 'sub0-bench-control-'));
  const cleanup: (() => Promise<unknown> | unknown)[] = [() => rmSync(home, { recursive: true, force: true })];
  try {
    const chain = await startLocalChain({ home, port: 0, fresh: true, network: NETWORK_OF_FIXTURE, log: o.log });
    cleanup.push(() => chain.close());
    const client = await connect(chain.endpoint, { timeoutMs: 30_000 });
    cleanup.push(() => client.close());
    const registry = openRegistry(client, chain.registry);
    const operator = { pair: await keyFromSuri('//Alice', { lab: true }) };
    const gatekeeper = await keyFromSuri(LAB_GATEKEEPERS[0], { lab: true });
    await authorizeGatekeeper(client, operator, gatekeeper.address);
    say(`registry: ${nodes} nodes, ${nodes * 10} slots, ${nodes * 10} rules`);
    await loadRegistryFixture(client, chain.registry, { nodes, slots: nodes * 10, rules: nodes * 10, identities: true, shape: 'pairs' });

    // Finality as this process sees it (the controller's follower shares this connection).
    const finalAt = new Map<number, number>();
    const waiters = new Map<number, (t: number) => void>();
    await client.api.rpc.chain.subscribeFinalizedHeads((h) => {
      const n = h.number.toNumber();
      const t = performance.now();
      if (!finalAt.has(n)) finalAt.set(n, t);
      waiters.get(n)?.(t);
    });
    const finalized = (n: number) => (finalAt.has(n) ? Promise.resolve(finalAt.get(n)!) : new Promise<number>((r) => waiters.set(n, r)));

    const key = generateSigningKey();
    const keyHex = bytesToHex(key.publicKey);
    const adminSecret = bytesToHex(generateSigningKey().secretKey);
    let url: string;
    let broker: BrokerChoice;
    if (o.broker === 'mosquitto') {
      const dir = join(home, 'mosquitto');
      await new MosquittoAdmission({ dir, controllerKey: key, adminPassword: adminSecret, log: o.log }).admit(NETWORK_OF_FIXTURE, new Map());
      const m = await Mosquitto.start({ dir, nofile: 8192 });
      cleanup.push(() => m.stop());
      url = m.url;
      broker = { kind: 'external', url, mosquitto: { dir, pidFile: m.pidFile } };
    } else {
      const port = await freePort();
      url = `mqtt://127.0.0.1:${port}`;
      broker = { kind: 'embedded', listen: [{ host: '127.0.0.1', port }] };
    }

    // Acknowledgements, as the controller's side of the broker sees them: when each config hash
    // was first reported applied (heartbeats repeat it). And when each "offline" will arrived.
    const acks = new Map<string, { hash: string; at: number }>();
    const offlineAt = new Map<string, number>();
    let onAck: (() => void) | undefined;
    const watcher = new MqttLink({ url, clientId: `${OBSERVER_LOGIN}-bench`, username: OBSERVER_LOGIN, password: () => adminSecret, log: o.log });
    cleanup.push(() => watcher.close(true));
    // The acknowledgement is read, not verified: the tests check status signatures; here the
    // watcher shares the controller's thread and must cost it as little as it can.
    watcher.onMessage((topic, payload) => {
      const t = performance.now();
      const who = nodeOfTopic(NETWORK_OF_FIXTURE, topic);
      if (!who || who.kind !== 'status' || payload.length === 0) return;
      const nl = payload.indexOf(0x0a);
      try {
        const body = JSON.parse(payload.subarray(nl + 1).toString('utf8')) as { state?: string; applied?: { hash?: string } };
        if (body.state === 'offline') offlineAt.set(who.node, t);
        else if (body.applied?.hash && acks.get(who.node)?.hash !== body.applied.hash) acks.set(who.node, { hash: body.applied.hash, at: t });
        onAck?.();
      } catch {
        /* not a status: not an acknowledgement */
      }
    });

    const passes = new Map<number, PassRecord>();
    const published = new Map<number, readonly string[]>();
    say(`controller with the ${o.broker === 'mosquitto' ? 'Mosquitto' : 'embedded aedes'} broker`);
    const t0 = performance.now();
    // The registry as the controller sees it, with the gatekeeper's quarantines timed as they are
    // submitted (a proxy call for the operator): their block time is the silent case's baseline.
    const quarantineSubmitted = new Map<string, number>();
    const timed: LogosRegistry = {
      locator: registry.locator,
      readSnapshot: (h) => registry.readSnapshot(h),
      readItems: (h, items) => registry.readItems(h, items),
      touchedBy: (b) => registry.touchedBy(b),
      submit: (changes, signer) => {
        const t = performance.now();
        for (const c of changes) if (signer.proxy && c.op === 'update' && c.kind === 'node' && c.fields.state === 'quarantined') quarantineSubmitted.set(c.id, t);
        return registry.submit(changes, signer);
      },
    };
    const service = await ControllerService.start({
      client,
      registry: timed,
      key,
      adminSecret,
      cursorFile: join(home, 'cursor.json'),
      log: o.log,
      broker,
      fullReadMs: 0,
      onPass: (p) => passes.set(p.block.number, p),
      onPublished: (b, r) => published.set(b.number, r.published),
      gatekeeper: { policy: BENCH_POLICY, signer: gatekeeper, staggerMs: 0 },
    });
    cleanup.push(() => service.stop());
    await watcher.waitConnected(30_000);
    await watcher.subscribe([allStatuses(NETWORK_OF_FIXTURE)]);

    say(`${nodes} simulated agents in 2 processes`);
    const agents: ChildProcess[] = [];
    const here = fileURLToPath(new URL('./sim-agents.ts', import.meta.url));
    const half = Math.ceil(nodes / 2);
    for (const [from, to] of [[0, half], [half, nodes]] as const) {
      const p = fork(here, [JSON.stringify({ url, network: NETWORK_OF_FIXTURE, controllerKey: keyHex, from, to, heartbeatMs: BENCH_HEARTBEAT_MS })], { execArgv: ['--import', 'tsx', ...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      agents.push(p);
      cleanup.push(() => p.kill('SIGKILL'));
    }
    await Promise.all(agents.map((p) => new Promise<void>((resolve, reject) => {
      p.on('message', (m: { ready?: number }) => m.ready !== undefined && resolve());
      p.once('exit', (c) => reject(new Error(`simulated agents exited (${c})`)));
    })));

    /** Resolves with the time the last of `expect` (node -> config hash) was acknowledged. */
    const acked = (expect: ReadonlyMap<string, string>, timeoutMs = 60_000) =>
      new Promise<number>((resolve, reject) => {
        const check = () => {
          let last = 0;
          for (const [node, hash] of expect) {
            const a = acks.get(node);
            if (a?.hash !== hash) return;
            last = Math.max(last, a.at);
          }
          onAck = undefined;
          clearTimeout(timer);
          resolve(last);
        };
        const timer = setTimeout(() => {
          const missing = [...expect].filter(([n, h]) => acks.get(n)?.hash !== h).length;
          reject(new Error(`${missing} of ${expect.size} agents did not acknowledge in ${timeoutMs / 1000} s`));
        }, timeoutMs);
        onAck = check;
        check();
      });
    const expected = (names: readonly string[]) => {
      const configs = service.controller.current!.configs;
      return new Map(names.map((n) => [n, configHash(configs.get(n)!)]));
    };

    const initialDone = await acked(expected([...service.controller.current!.configs.keys()]));
    const initialMs = initialDone - t0;
    say(`all ${nodes} agents hold their first config (${Math.round(initialMs)} ms from the controller's start)`);

    const trial = async (changes: RegistryChange[]): Promise<Trial> => {
      const sent = performance.now();
      const r = await registry.submit(changes, operator);
      const final = await finalized(r.block.number);
      await service.controller.reached(r.block.number, 60_000);
      const names = published.get(r.block.number) ?? [];
      const last = await acked(expected(names));
      return { ms: last - final, affected: names.length, pass: passes.get(r.block.number)?.ms, blockMs: final - sent };
    };

    const one: Trial[] = [];
    for (let k = 0; k < trials; k++) {
      // Two slots on nodes of different DVCIs (slot i runs on node i % nodes, in DVCI i % 10).
      const from = `slot-${k * 2 + 1}`;
      const to = `slot-${k * 2 + 2 + 100}`;
      one.push(await trial([{ op: 'create', kind: 'rule', fields: { id: `bench-${k}`, from: `slot:${from}`, to: `slot:${to}`, proto: 'tcp', ports: ['9000'] } }]));
      say(`one acl change: ${Math.round(one.at(-1)!.ms)} ms, ${one.at(-1)!.affected} agents`);
    }
    const full: Trial[] = [];
    const dvcis = Math.max(1, Math.ceil(nodes / 100));
    for (let k = 0; k < Math.max(3, trials); k++) {
      // One node per DVCI moves: every node's peer list changes.
      const moves: RegistryChange[] = Array.from({ length: dvcis }, (_, d) => ({ op: 'update', kind: 'node', id: benchNodeId(d), fields: { endpoints: [`192.0.2.${d + 1}:${51000 + k}`] } }));
      full.push(await trial(moves));
      say(`full republish: ${Math.round(full.at(-1)!.ms)} ms, ${full.at(-1)!.affected} agents`);
    }

    const vanish = (i: number) =>
      new Promise<void>((resolve) => {
        const p = agents[i < half ? 0 : 1]!;
        offlineAt.delete(benchNodeId(i)); // a will from an earlier lost connection is not this one
        const done = (m: { vanished?: number }) => {
          if (m.vanished !== i) return;
          p.off('message', done);
          resolve();
        };
        p.on('message', done);
        p.send({ vanish: i });
      });
    const offline = async (node: string, timeoutMs = 30_000) => {
      const end = performance.now() + timeoutMs;
      while (!offlineAt.has(node)) {
        if (performance.now() > end) throw new Error(`no last will from ${node} within ${timeoutMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return offlineAt.get(node)!;
    };
    const silent: SilentTrial[] = [];
    for (let k = 0; k < trials; k++) {
      const i = (Math.floor(nodes / 2) + k) % nodes;
      silent.push(await silentNodeTrial({ service, graceMs: BENCH_POLICY.graceMs, published, passes, vanish, offline, acked, finalized, submitted: (n) => quarantineSubmitted.get(n) }, i, benchNodeId(i)));
      const s = silent.at(-1)!;
      say(`silent node ${s.node}: dropped by its ${s.peers} peers ${Math.round(s.ms)} ms beyond the grace (due -> quarantine submitted ${Math.round(s.toSubmit)} ms, -> its block final ${Math.round(s.blockMs)} ms, -> last peer ack ${Math.round(s.toAck)} ms, of which the controller's pass ${s.pass ? `${s.pass.read} / ${s.pass.compile} / ${s.pass.publish}` : '?'} ms read / compile / publish)`);
    }
    for (const p of agents) p.send({ stop: true });
    return { broker: o.broker, nodes, initialMs, one, full, silent, policy: BENCH_POLICY, heartbeatMs: BENCH_HEARTBEAT_MS };
  } finally {
    for (const c of cleanup.reverse()) await Promise.resolve().then(c).catch(() => undefined);
  }
}

export function summarize(xs: readonly Trial[]) {
  return {
    ms: median(xs.map((x) => x.ms)),
    affected: median(xs.map((x) => x.affected)),
    blockMs: median(xs.map((x) => x.blockMs)),
    read: median(xs.map((x) => x.pass?.read ?? 0)),
    compile: median(xs.map((x) => x.pass?.compile ?? 0)),
    publish: median(xs.map((x) => x.pass?.publish ?? 0)),
    controller: median(xs.map((x) => x.pass?.total ?? 0)),
  };
}
