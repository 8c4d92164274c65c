/**
 * The cross-platform WireGuard configuration protocol (wireguard.com/xplatform), as wireguard-go
 * speaks it on /var/run/wireguard/<ifname>.sock: `get=1\n\n` or `set=1\n` + `key=value` lines +
 * a blank line; every reply ends with `errno=N\n\n`. Keys are hex on this wire (base64 everywhere
 * else in sub0). Pure: text in, text out.
 */
import { Sub0Error } from '../../fabric/errors.js';
import type { PeerOp } from '../drivers.js';
import { canonicalCidr, canonicalEndpoint } from '../../fabric/ip.js';
import { base64ToHex, hexToBase64 } from './keys.js';

export interface UapiPeer {
  /** base64 */
  readonly publicKey: string;
  readonly endpoint: string | undefined;
  readonly allowedIps: readonly string[];
  readonly keepalive: number;
  /** Unix seconds of the last handshake, 0 when none. */
  readonly lastHandshake: number;
  readonly rxBytes: number;
  readonly txBytes: number;
}

export interface UapiDevice {
  /** hex, as the wire has it; undefined when the device has none yet. */
  readonly privateKey: string | undefined;
  readonly listenPort: number;
  readonly fwmark: number;
  readonly peers: readonly UapiPeer[];
}

export const GET_REQUEST = 'get=1\n\n';

/** Device-level settings of a set transaction; only the fields present are sent. */
export interface DeviceSettings {
  readonly privateKeyHex?: string;
  readonly listenPort?: number;
}

/**
 * Encodes one `set=1` transaction. Peer ops are written in the order given (plan order: adds and
 * updates before removes). Endpoints must already be IP literals: the protocol has no DNS.
 */
export function encodeSet(device: DeviceSettings, ops: readonly PeerOp[]): string {
  const lines: string[] = ['set=1'];
  if (device.privateKeyHex !== undefined) lines.push(`private_key=${device.privateKeyHex}`);
  if (device.listenPort !== undefined) lines.push(`listen_port=${device.listenPort}`);
  for (const o of ops) {
    switch (o.op) {
      case 'listen-port':
        lines.push(`listen_port=${o.port}`);
        break;
      case 'peer-remove':
        lines.push(`public_key=${base64ToHex(o.publicKey)}`, 'remove=true');
        break;
      case 'peer-add':
      case 'peer-update': {
        const p = o.peer;
        const all = o.op === 'peer-add';
        const changed = (c: 'endpoint' | 'allowed-ips' | 'keepalive') => all || (o.op === 'peer-update' && o.changes.includes(c));
        lines.push(`public_key=${base64ToHex(p.publicKey)}`);
        const endpoint = p.endpoints[0];
        if (changed('endpoint') && endpoint !== undefined) lines.push(`endpoint=${endpoint}`);
        if (changed('keepalive')) lines.push(`persistent_keepalive_interval=${p.keepalive}`);
        if (changed('allowed-ips')) {
          lines.push('replace_allowed_ips=true');
          for (const ip of p.allowedIps) lines.push(`allowed_ip=${ip}`);
        }
        break;
      }
    }
  }
  return `${lines.join('\n')}\n\n`;
}

/** The errno of a reply (`errno=0` is success). Throws on a reply that carries none. */
export function parseErrno(reply: string): number {
  const m = /(?:^|\n)errno=(-?\d+)\n\n$/.exec(reply);
  if (!m) throw new Sub0Error('driver', `UAPI reply without errno: ${JSON.stringify(reply.slice(-80))}`);
  return Number(m[1]);
}

/** Parses a `get=1` reply. Unknown keys are skipped (newer wireguard-go versions add some). */
export function parseGet(reply: string): UapiDevice {
  const errno = parseErrno(reply);
  if (errno !== 0) throw new Sub0Error('driver', `UAPI get failed: errno=${errno}`);
  let privateKey: string | undefined;
  let listenPort = 0;
  let fwmark = 0;
  const peers: UapiPeer[] = [];
  let cur: { publicKey: string; endpoint: string | undefined; allowedIps: string[]; keepalive: number; lastHandshake: number; rxBytes: number; txBytes: number } | undefined;
  for (const line of reply.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq < 0) throw new Sub0Error('driver', `malformed UAPI line: ${JSON.stringify(line)}`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'public_key') {
      cur = { publicKey: hexToBase64(value), endpoint: undefined, allowedIps: [], keepalive: 0, lastHandshake: 0, rxBytes: 0, txBytes: 0 };
      peers.push(cur);
      continue;
    }
    if (!cur) {
      if (key === 'private_key') privateKey = value;
      else if (key === 'listen_port') listenPort = Number(value);
      else if (key === 'fwmark') fwmark = Number(value);
      continue;
    }
    switch (key) {
      case 'endpoint':
        cur.endpoint = canonicalEndpoint(value);
        break;
      case 'allowed_ip':
        cur.allowedIps.push(canonicalCidr(value));
        break;
      case 'persistent_keepalive_interval':
        cur.keepalive = Number(value);
        break;
      case 'last_handshake_time_sec':
        cur.lastHandshake = Number(value);
        break;
      case 'rx_bytes':
        cur.rxBytes = Number(value);
        break;
      case 'tx_bytes':
        cur.txBytes = Number(value);
        break;
    }
  }
  return { privateKey, listenPort, fwmark, peers };
}
