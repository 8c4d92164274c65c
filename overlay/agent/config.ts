/**
 * The agent's configuration: flags and environment parsed once, at start, into one frozen object.
 * Flags win over environment variables (SUB0_*), which win over defaults.
 */
import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import * as z from 'zod';
import { Sub0Error } from '../../fabric/errors.js';
import { ID_PATTERN } from '../../fabric/schema.js';

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** The interface name of a node: `s0-<id>`, or a hashed form that fits Linux's 15 characters. */
export function interfaceName(nodeId: string): string {
  const plain = `s0-${nodeId}`;
  if (plain.length <= 15) return plain;
  const h = createHash('sha256').update(nodeId).digest('hex').slice(0, 5);
  return `s0-${nodeId.slice(0, 6)}-${h}`;
}

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a 32-byte ed25519 public key in lower-case hex');

const BrokerUrl = z.string().regex(/^mqtts?:\/\/[^/\s]+(?::\d{1,5})?\/?$/, 'must be mqtt://host:port or mqtts://host:port');

export const AgentConfig = z.strictObject({
  /** A signed NodeConfig envelope file to watch (tests, air-gapped nodes). */
  config: z.string().min(1).optional(),
  /** MQTT brokers to take the node's config from and publish its status to. */
  brokers: z.array(BrokerUrl),
  /** The network id (MQTT topics name it); required with brokers. */
  network: z.string().regex(ID_PATTERN, 'must be a network id').optional(),
  /** How often the signed status is published even when nothing changed, ms. */
  statusIntervalMs: z.number().int().min(1000),
  /** Trusted controller keys (ed25519, hex). */
  trust: z.array(Hex32).min(1, 'at least one trusted controller key (--trust) is required'),
  /** This node's id; when absent, the first accepted config pins it. */
  node: z.string().optional(),
  /** The WireGuard interface; default s0-<node>. */
  ifname: z.string().regex(IFNAME, 'must be 1-15 characters of A-Z a-z 0-9 _ . -').optional(),
  stateDir: z.string().min(1),
  /** Where the ACL driver mounts its bpffs and pins its maps (never under /sys). */
  pinDir: z.string().min(1),
  wgBackend: z.enum(['auto', 'kernel', 'uapi']),
  /** ebpf (falls back to nftables), nftables, or off (labs and benchmarks only: nothing is filtered). */
  acl: z.enum(['ebpf', 'nftables', 'off']),
  /** UAPI socket directory (wireguard-go's). */
  socketDir: z.string().min(1),
  resyncMs: z.number().int().min(0),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  /** Run the slots the config assigns to this node as VMs (QEMU); off: slots are addresses only (labs). */
  slots: z.boolean(),
});
export type AgentConfig = Readonly<z.output<typeof AgentConfig>>;

/** Registers the agent's flags on a command (`sub0 agent`, `sub0 agent plan`, dist/agent.js). */
export function agentFlags(cmd: Command): Command {
  return cmd
    .option('--broker <url...>', 'MQTT broker(s) to take the config from and report status to, mqtt://host:port (env SUB0_BROKER, comma-separated)')
    .option('--network <id>', 'the network id (with --broker; env SUB0_NETWORK)')
    .option('--config <file>', 'a signed NodeConfig envelope file to watch instead of, or besides, a broker (env SUB0_CONFIG)')
    .option('--status-interval-ms <ms>', 'publish the signed status (the heartbeat) at least this often (default 5000)')
    .option('--trust <hex...>', 'trusted controller ed25519 public key(s), hex (env SUB0_TRUST, comma-separated)')
    .option('--node <id>', 'this node id (default: taken from the first config)')
    .option('--ifname <name>', 'WireGuard interface name (default s0-<node>; unique on the machine)')
    .option('--state-dir <dir>', 'state directory: private key, last config, status (env SUB0_STATE_DIR)')
    .option('--pin-dir <dir>', 'bpffs mount for the ACL maps (env SUB0_PIN_DIR)')
    .option('--wg-backend <kind>', 'auto | kernel | uapi')
    .option('--acl <kind>', 'ebpf | nftables | off')
    .option('--socket-dir <dir>', 'wireguard-go UAPI socket directory')
    .option('--resync-ms <ms>', 'periodic re-check of the kernel state, 0 to disable')
    .option('--log-level <level>', 'pino level (env SUB0_LOG_LEVEL)')
    .option('--log-format <format>', 'text | json (default: text on a terminal; env SUB0_LOG_FORMAT)')
    .option('--slots', 'run the slots assigned to this node as QEMU VMs (images from <state-dir>/images; env SUB0_SLOTS=1)');
}

export interface AgentFlags {
  broker?: string[];
  network?: string;
  statusIntervalMs?: string;
  config?: string;
  trust?: string[];
  node?: string;
  ifname?: string;
  stateDir?: string;
  pinDir?: string;
  wgBackend?: string;
  acl?: string;
  socketDir?: string;
  resyncMs?: string;
  logLevel?: string;
  logFormat?: string;
  slots?: boolean;
}

export function parseAgentConfig(flags: AgentFlags, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const trust = flags.trust ?? env.SUB0_TRUST?.split(',').map((s) => s.trim()).filter(Boolean) ?? [];
  const brokers = flags.broker ?? env.SUB0_BROKER?.split(',') ?? [];
  const raw = {
    config: flags.config ?? env.SUB0_CONFIG,
    brokers: brokers.flatMap((b) => b.split(',')).map((b) => b.trim()).filter(Boolean),
    network: flags.network ?? env.SUB0_NETWORK,
    statusIntervalMs: Number(flags.statusIntervalMs ?? env.SUB0_STATUS_INTERVAL_MS ?? 5_000),
    trust: trust.flatMap((t) => t.split(',')).map((t) => t.trim().toLowerCase()),
    node: flags.node ?? env.SUB0_NODE,
    ifname: flags.ifname ?? env.SUB0_IFNAME,
    stateDir: flags.stateDir ?? env.SUB0_STATE_DIR ?? '/var/lib/sub0/agent',
    pinDir: flags.pinDir ?? env.SUB0_PIN_DIR ?? '/run/sub0/bpf',
    wgBackend: flags.wgBackend ?? env.SUB0_WG_BACKEND ?? 'auto',
    acl: flags.acl ?? env.SUB0_ACL ?? 'ebpf',
    socketDir: flags.socketDir ?? '/var/run/wireguard',
    resyncMs: Number(flags.resyncMs ?? env.SUB0_RESYNC_MS ?? 15000),
    logLevel: flags.logLevel ?? env.SUB0_LOG_LEVEL ?? 'info',
    slots: flags.slots ?? env.SUB0_SLOTS === '1',
  };
  const parsed = AgentConfig.safeParse(raw);
  if (!parsed.success) throw new Sub0Error('invalid-input', `agent flags: ${z.prettifyError(parsed.error)}`);
  if (!parsed.data.ifname && !parsed.data.node) throw new Sub0Error('invalid-input', 'agent flags: give --ifname or --node (the interface name derives from the node id)');
  if (parsed.data.config === undefined && parsed.data.brokers.length === 0) throw new Sub0Error('invalid-input', 'agent flags: give --broker mqtt://… (or --config <file>): where the node gets its config');
  if (parsed.data.brokers.length > 0 && (!parsed.data.node || !parsed.data.network)) throw new Sub0Error('invalid-input', 'agent flags: --broker needs --node and --network (the node logs in as itself, on its network\'s topics)');
  if (parsed.data.pinDir.startsWith('/sys/')) throw new Sub0Error('invalid-input', `agent flags: --pin-dir ${parsed.data.pinDir}: keep pins outside /sys (ip netns exec remounts it)`);
  return Object.freeze({ ...parsed.data, trust: Object.freeze([...parsed.data.trust]) as string[] });
}

export function ifnameOf(c: AgentConfig): string {
  return c.ifname ?? interfaceName(c.node!);
}
