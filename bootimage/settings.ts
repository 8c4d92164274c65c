/**
 * The per-network settings a boot stick carries (`sub0/network.json` on its ESP), rewritten by
 * `sub0 image configure` without a rebuild. Never a secret: the node makes its own keys on first
 * boot. Pure: the schema, and errors that name the field at fault.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import * as z from 'zod';
import { Ed25519Key, ID_PATTERN, Id, isIpv4 } from '../fabric/schema.js';
import { Sub0Error } from '../fabric/errors.js';

export const SETTINGS_PATH = 'sub0/network.json';

const BrokerUrl = z.string().regex(/^mqtts?:\/\/[^/\s]+(?::\d{1,5})?\/?$/, 'must be mqtt://host:port or mqtts://host:port');
const Ipv4Cidr = z.string().refine((s) => {
  const [a, len, ...rest] = s.split('/');
  return rest.length === 0 && isIpv4(a ?? '') && /^\d{1,2}$/.test(len ?? '') && Number(len) <= 32;
}, 'must be an IPv4 address with its prefix length, e.g. 192.0.2.10/24');
const Ipv4 = z.string().refine(isIpv4, 'must be an IPv4 address');
/** 64 hex digits are not enough: a key that is no point of the curve would stop the agent at start. */
const ControllerKey = Ed25519Key.refine((hex) => {
  try {
    ed25519.Point.fromHex(hex);
    return true;
  } catch {
    return false;
  }
}, 'is not an ed25519 public key (not a point of the curve): copy it from `sub0 controller key`');

export const NetworkSettings = z.strictObject({
  /** The network id (MQTT topics name it). */
  network: Id,
  /** The DVCI this node joins (printed in its registration line). */
  dvci: Id,
  /** The DVCI's brokers; the node takes the newest valid config from any of them. */
  brokers: z.array(BrokerUrl).min(1, 'at least one broker URL'),
  /** The controller keys the node trusts at first; later configs name the chain's set. */
  controllers: z.array(ControllerKey).min(1, 'at least one controller key (`sub0 controller key` prints it)'),
  /** This node's id on chain; default node-<first 8 hex digits of its identity key>. */
  node: Id.optional(),
  /** WireGuard's UDP port, printed in the registration line. */
  listenPort: z.number().int().min(1).max(65535).default(51820),
  /** A static address instead of DHCP. */
  static: z
    .strictObject({
      interface: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/, 'must be an interface name').default('eth0'),
      address: Ipv4Cidr,
      gateway: Ipv4.optional(),
      dns: z.array(Ipv4).max(3).default([]),
    })
    .optional(),
});
export type NetworkSettings = z.output<typeof NetworkSettings>;

/** Parses settings text; the error names the file and every field at fault. */
export function parseSettings(text: string, where: string): NetworkSettings {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Sub0Error('invalid-input', `${where}: not JSON (${(e as Error).message})`);
  }
  const r = NetworkSettings.safeParse(json);
  if (!r.success) throw new Sub0Error('invalid-input', `${where}: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** The node id a node uses when the settings name none: stable, from its identity key. */
export function defaultNodeId(identityHex: string): string {
  const id = `node-${identityHex.slice(0, 8)}`;
  if (!ID_PATTERN.test(id)) throw new Sub0Error('invalid-input', `bad identity key ${identityHex}`);
  return id;
}

/** The exact command an operator runs to register this node. */
export function registerLine(s: NetworkSettings, node: string, wgKey: string, identityHex: string, address: string | undefined): string {
  const addr = address ? `${address}:${s.listenPort}` : `<host>:${s.listenPort}`;
  const port = s.listenPort === 51820 ? '' : ` --listen-port ${s.listenPort}`;
  return `sub0 node register ${node} --dvci ${s.dvci} --key ${wgKey} --identity ${identityHex} --addr ${addr}${port}`;
}
