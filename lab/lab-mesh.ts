/**
 * A sub0 mesh on a namespace lab: a chain snapshot built from the lab's nodes (their real
 * WireGuard public keys, their lab endpoints), compiled by fabric, signed by a lab controller key
 * and written where each node's agent watches; one agent process per node namespace; and waits on
 * the agents' status files.
 */
import { type ChildProcess } from 'node:child_process';
import { writeFileAtomic } from '../overlay/atomic-file.js';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bytesToHex } from '@noble/hashes/utils.js';
import { compile } from '../fabric/compile.js';
import { configHash } from '../fabric/encoding.js';
import { Sub0Error } from '../fabric/errors.js';
import type { NodeConfig } from '../fabric/node-config.js';
import { parseSnapshot } from '../fabric/parse-snapshot.js';
import type { ChainSnapshot } from '../fabric/schema.js';
import { generateSigningKey, signConfig, type SigningKey } from '../fabric/signing.js';
import type { AgentStatus } from '../overlay/agent/status.js';
import { agentLogTail, readAgentStatus, waitAgentStatus } from './agent-files.js';
import type { Lab } from './lab.js';

/** Account addresses of the lab's network (from fabric/examples/lab.json). */
export const LAB_OPERATOR = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
export const LAB_OWNER = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';

export interface SlotSpec {
  readonly id: string;
  readonly node: string;
  readonly groups?: readonly string[];
}

export interface RuleSpec {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly proto: 'tcp' | 'udp' | 'icmp' | 'any';
  readonly ports?: readonly string[];
}

export interface MeshSpec {
  /** The block number: each publish needs a higher one (agents refuse older revisions). */
  readonly block: number;
  readonly slots?: readonly SlotSpec[];
  readonly rules?: readonly RuleSpec[];
  /** Node states other than active. */
  readonly nodeState?: Readonly<Record<string, 'pending' | 'active' | 'quarantined' | 'retired'>>;
}

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));

export interface AgentProc {
  readonly node: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
}

export class LabMesh {
  readonly key: SigningKey = generateSigningKey();
  private readonly agents = new Map<string, AgentProc>();

  constructor(
    readonly lab: Lab,
    readonly network = 'lab',
    /** The agent program and its leading arguments. */
    private readonly agentCommand: readonly string[] = [process.execPath, '--import', 'tsx', join(REPO, 'cli/agent-main.ts')],
  ) {}

  get trustHex(): string {
    return bytesToHex(this.key.publicKey);
  }

  snapshot(spec: MeshSpec): ChainSnapshot {
    const raw = {
      network: { id: this.network, operator: LAB_OPERATOR },
      block: { number: spec.block, hash: `0x${spec.block.toString(16).padStart(64, '0')}` },
      dvcis: [{ id: 'lab', operator: LAB_OPERATOR }],
      nodes: this.lab.nodes.map((n, i) => ({
        id: n.id,
        seq: i + 1,
        owner: LAB_OWNER,
        dvci: 'lab',
        wgPublicKey: n.publicKey,
        endpoints: [n.endpoint],
        listenPort: n.listenPort,
        state: spec.nodeState?.[n.id] ?? 'active',
      })),
      slots: (spec.slots ?? []).map((s, i) => ({ id: s.id, seq: i + 1, owner: LAB_OWNER, node: s.node, state: 'assigned', vcpus: 1, memoryMiB: 256, diskGiB: 1, image: 'lab', groups: s.groups ?? [] })),
      rules: (spec.rules ?? []).map((r) => ({ ...r, owner: LAB_OWNER, ports: r.ports ?? [] })),
    };
    const { snapshot, issues } = parseSnapshot(raw, 'lab snapshot');
    const errors = issues.filter((i) => i.severity === 'error');
    if (errors.length > 0) throw new Sub0Error('invalid-input', `lab snapshot: ${errors.map((e) => e.message).join('; ')}`);
    return snapshot;
  }

  /** Compiles the spec and returns every node's config (no files written). */
  compile(spec: MeshSpec): ReadonlyMap<string, NodeConfig> {
    const result = compile(this.snapshot(spec));
    const errors = result.issues.filter((i) => i.severity === 'error');
    if (errors.length > 0) throw new Sub0Error('invalid-input', `lab compile: ${errors.map((e) => e.message).join('; ')}`);
    return result.configs;
  }

  /**
   * Compiles, signs and writes every node's config (atomically, by rename), and puts each hosted
   * slot's addresses on its node's loopback. Returns the configs published.
   */
  publish(spec: MeshSpec, only?: readonly string[]): ReadonlyMap<string, NodeConfig> {
    const prepared = this.prepare(spec, only);
    this.write(prepared);
    return prepared.configs;
  }

  /** Compiles and signs, writes nothing: for timing the write alone (see write()). */
  prepare(spec: MeshSpec, only?: readonly string[]): { configs: ReadonlyMap<string, NodeConfig>; envelopes: ReadonlyMap<string, Uint8Array> } {
    const configs = this.compile(spec);
    const envelopes = new Map<string, Uint8Array>();
    for (const [node, cfg] of configs) {
      if (only && !only.includes(node)) continue;
      this.lab.addSlotAddresses(node, cfg.slots.flatMap((s) => [s.ipv4, s.ipv6]));
      envelopes.set(node, signConfig(cfg, this.key));
    }
    return { configs, envelopes };
  }

  write(prepared: { envelopes: ReadonlyMap<string, Uint8Array> }): void {
    for (const [node, wire] of prepared.envelopes) this.writeEnvelope(node, wire);
  }

  /** Writes any bytes or text as the node's config file (atomically): also for malformed-config tests. */
  writeEnvelope(nodeId: string, wire: string | Uint8Array): void {
    writeFileAtomic(this.lab.node(nodeId).configPath, wire);
  }

  startAgent(nodeId: string, opts: { acl?: 'ebpf' | 'nftables' | 'off'; resyncMs?: number; extra?: readonly string[] } = {}): AgentProc {
    const n = this.lab.node(nodeId);
    const [cmd, ...pre] = this.agentCommand;
    const args = [
      ...pre,
      '--config', n.configPath,
      '--trust', this.trustHex,
      '--node', n.id,
      '--ifname', n.ifname,
      '--state-dir', n.stateDir,
      '--pin-dir', this.lab.pinDir,
      '--acl', opts.acl ?? 'ebpf',
      '--resync-ms', String(opts.resyncMs ?? 5000),
      ...(opts.extra ?? []),
    ];
    const log = this.lab.logFd(nodeId, 'agent.log');
    const proc = this.lab.spawn(nodeId, cmd!, args, { cwd: REPO, stdio: ['ignore', log, log] });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const a = { node: nodeId, proc, exited };
    this.agents.set(nodeId, a);
    return a;
  }

  /** Signals the node's agent and waits for it to exit. */
  async stopAgent(nodeId: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const a = this.agents.get(nodeId);
    if (!a || a.proc.exitCode !== null || a.proc.signalCode !== null) return;
    a.proc.kill(signal);
    await a.exited;
  }

  status(nodeId: string): AgentStatus | undefined {
    return readAgentStatus(this.lab.node(nodeId).stateDir);
  }

  agentLog(nodeId: string, lines = 20): string {
    return agentLogTail(this.lab.node(nodeId).stateDir, lines);
  }

  /** Waits until the node's status satisfies `pred`; rejects with the agent's log tail on timeout. */
  waitStatus(nodeId: string, pred: (s: AgentStatus) => boolean, what: string, timeoutMs = 15_000): Promise<AgentStatus> {
    return waitAgentStatus({ node: nodeId, stateDir: this.lab.node(nodeId).stateDir, proc: this.agents.get(nodeId)?.proc }, pred, what, timeoutMs);
  }

  /** Waits until the node's agent has fully converged to exactly this config. */
  waitConverged(nodeId: string, config: NodeConfig, timeoutMs?: number): Promise<AgentStatus> {
    const hash = configHash(config);
    return this.waitStatus(nodeId, (s) => s.converged?.hash === hash, `revision #${config.revision.number} to converge`, timeoutMs);
  }

  /** Waits for every node in `configs` to converge. */
  async waitAll(configs: ReadonlyMap<string, NodeConfig>, timeoutMs?: number): Promise<void> {
    await Promise.all([...configs].map(([n, c]) => this.waitConverged(n, c, timeoutMs)));
  }
}
