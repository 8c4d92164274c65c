/**
 * The `wireguard` generic netlink family (include/uapi/linux/wireguard.h), encoded and decoded by
 * hand. Pure: bytes in, bytes out. Written here rather than taken from the `netlink` package,
 * whose WireGuard module numbers the commands from 1 (the kernel's WG_CMD_GET_DEVICE is 0) and
 * rejects the kernel's nested arrays (every element is numbered 0).
 *
 * Large sets are split over several messages, as wg(8) does: the first carries the device
 * settings, each peer fragment repeats the public key, and only a peer's first fragment replaces
 * its allowed IPs. A GET_DEVICE dump is merged back the same way.
 */
import { Sub0Error } from '../../fabric/errors.js';
import type { PeerOp } from '../drivers.js';
import { attrMap, cstr, nested, parseAttrs, str, u16, u32, attr } from '../netlink/attrs.js';
import { formatCidr, formatIp, joinHostPort, parseCidr, parseIp, splitHostPort } from '../../fabric/ip.js';

export const WG_GENL_NAME = 'wireguard';
export const WG_GENL_VERSION = 1;
export const WG_CMD_GET_DEVICE = 0;
export const WG_CMD_SET_DEVICE = 1;

const WGDEVICE_A_IFNAME = 2;
const WGDEVICE_A_PRIVATE_KEY = 3;
const WGDEVICE_A_LISTEN_PORT = 6;
const WGDEVICE_A_PEERS = 8;

const WGPEER_A_PUBLIC_KEY = 1;
const WGPEER_A_FLAGS = 3;
const WGPEER_A_ENDPOINT = 4;
const WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL = 5;
const WGPEER_A_LAST_HANDSHAKE_TIME = 6;
const WGPEER_A_ALLOWEDIPS = 9;
const WGPEER_F_REMOVE_ME = 1;
const WGPEER_F_REPLACE_ALLOWEDIPS = 2;

const WGALLOWEDIP_A_FAMILY = 1;
const WGALLOWEDIP_A_IPADDR = 2;
const WGALLOWEDIP_A_CIDR_MASK = 3;

const AF_INET = 2;
const AF_INET6 = 10;

/** Payload budget of one SET_DEVICE message; wg(8) stays near a page, the kernel takes more. */
const MESSAGE_BUDGET = 16 * 1024;
const IPS_PER_FRAGMENT = 256;

export interface KernelPeer {
  readonly publicKey: string; // base64
  readonly endpoint: string | undefined;
  readonly allowedIps: readonly string[];
  readonly keepalive: number;
  readonly lastHandshake: number;
}

export interface KernelDevice {
  readonly privateKey: string | undefined; // base64
  readonly listenPort: number;
  readonly peers: readonly KernelPeer[];
}

/** The generic netlink header: cmd, version, reserved. */
export function genlHeader(cmd: number, version = WG_GENL_VERSION): Buffer {
  return Buffer.of(cmd, version, 0, 0);
}

export function encodeGetDevice(ifname: string): Buffer[] {
  return [genlHeader(WG_CMD_GET_DEVICE), str(WGDEVICE_A_IFNAME, ifname)];
}

export interface DeviceSettings {
  readonly privateKey?: string; // base64
  readonly listenPort?: number;
}

/** SET_DEVICE message bodies (genl header included) for device settings and peer ops, in order. */
export function encodeSetDevice(ifname: string, device: DeviceSettings, ops: readonly PeerOp[]): Buffer[][] {
  const head = (): Buffer[] => [genlHeader(WG_CMD_SET_DEVICE), str(WGDEVICE_A_IFNAME, ifname)];
  const first = head();
  if (device.privateKey !== undefined) first.push(attr(WGDEVICE_A_PRIVATE_KEY, key(device.privateKey)));
  if (device.listenPort !== undefined) first.push(u16(WGDEVICE_A_LISTEN_PORT, device.listenPort));
  const fragments: Buffer[] = [];
  for (const o of ops) {
    if (o.op === 'listen-port') first.push(u16(WGDEVICE_A_LISTEN_PORT, o.port));
    else fragments.push(...peerFragments(o));
  }
  const messages: Buffer[][] = [];
  let cur = first;
  let peers: Buffer[] = [];
  let size = 0;
  const flush = () => {
    if (peers.length > 0) cur.push(nested(WGDEVICE_A_PEERS, peers));
    messages.push(cur);
    cur = head();
    peers = [];
    size = 0;
  };
  for (const f of fragments) {
    if (size + f.length > MESSAGE_BUDGET && peers.length > 0) flush();
    peers.push(f);
    size += f.length;
  }
  if (peers.length > 0 || messages.length === 0) flush();
  return messages;
}

function peerFragments(o: Exclude<PeerOp, { op: 'listen-port' }>): Buffer[] {
  if (o.op === 'peer-remove') {
    return [nested(0, [attr(WGPEER_A_PUBLIC_KEY, key(o.publicKey)), u32(WGPEER_A_FLAGS, WGPEER_F_REMOVE_ME)])];
  }
  const p = o.peer;
  const all = o.op === 'peer-add';
  const changed = (c: 'endpoint' | 'allowed-ips' | 'keepalive') => all || (o.op === 'peer-update' && o.changes.includes(c));
  const pub = attr(WGPEER_A_PUBLIC_KEY, key(p.publicKey));
  const firstAttrs: Buffer[] = [pub];
  const replaceIps = changed('allowed-ips');
  if (replaceIps) firstAttrs.push(u32(WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS));
  const endpoint = p.endpoints[0];
  if (changed('endpoint') && endpoint !== undefined) firstAttrs.push(attr(WGPEER_A_ENDPOINT, sockaddr(endpoint)));
  if (changed('keepalive')) firstAttrs.push(u16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p.keepalive));
  if (!replaceIps) return [nested(0, firstAttrs)];
  const out: Buffer[] = [];
  for (let i = 0; i === 0 || i < p.allowedIps.length; i += IPS_PER_FRAGMENT) {
    const ips = p.allowedIps.slice(i, i + IPS_PER_FRAGMENT).map(allowedIp);
    const attrs = i === 0 ? firstAttrs : [pub];
    out.push(nested(0, [...attrs, nested(WGPEER_A_ALLOWEDIPS, ips)]));
  }
  return out;
}

function allowedIp(cidr: string): Buffer {
  const c = parseCidr(cidr);
  return nested(0, [u16(WGALLOWEDIP_A_FAMILY, c.family === 4 ? AF_INET : AF_INET6), attr(WGALLOWEDIP_A_IPADDR, c.addr), attr(WGALLOWEDIP_A_CIDR_MASK, Buffer.of(c.bits))]);
}

function key(b64: string): Buffer {
  const b = Buffer.from(b64, 'base64');
  if (b.length !== 32) throw new Sub0Error('invalid-input', 'a WireGuard key is 32 bytes');
  return b;
}

/** struct sockaddr_in / sockaddr_in6 for an IP-literal endpoint. */
export function sockaddr(endpoint: string): Buffer {
  const { host, port } = splitHostPort(endpoint);
  const ip = parseIp(host);
  if (ip.length === 4) {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    b.set(ip, 4);
    return b;
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  b.set(ip, 8);
  return b;
}

export function parseSockaddr(b: Buffer): string | undefined {
  if (b.length < 2) return undefined;
  const family = b.readUInt16LE(0);
  if (family === AF_INET && b.length >= 8) return `${formatIp(b.subarray(4, 8))}:${b.readUInt16BE(2)}`;
  if (family === AF_INET6 && b.length >= 24) return joinHostPort(formatIp(b.subarray(8, 24)), b.readUInt16BE(2));
  return undefined;
}

/** A reply the kernel would not send: refused whole (the pass fails and reads again). */
const malformed = (what: string) => new Sub0Error('invalid-input', `malformed WireGuard device dump: ${what}`);

function u16At(b: Buffer, what: string): number {
  if (b.length < 2) throw malformed(`a ${what} of ${b.length} bytes`);
  return b.readUInt16LE(0);
}

/**
 * Merges the messages of one GET_DEVICE dump (genl header included). A peer split over two
 * messages appears twice in a row with the same key: its allowed IPs are concatenated.
 */
export function parseDeviceDump(messages: readonly Buffer[]): KernelDevice {
  let privateKey: string | undefined;
  let listenPort = 0;
  const peers: { publicKey: string; endpoint: string | undefined; allowedIps: string[]; keepalive: number; lastHandshake: number }[] = [];
  for (const msg of messages) {
    const dev = attrMap(msg.subarray(4));
    const pk = dev.get(WGDEVICE_A_PRIVATE_KEY);
    if (pk && pk.some((x) => x !== 0)) privateKey = pk.toString('base64');
    const lp = dev.get(WGDEVICE_A_LISTEN_PORT);
    if (lp) listenPort = u16At(lp, 'listen port');
    const list = dev.get(WGDEVICE_A_PEERS);
    if (!list) continue;
    for (const el of parseAttrs(list)) {
      const p = attrMap(el.data);
      const key = p.get(WGPEER_A_PUBLIC_KEY);
      if (!key) continue;
      if (key.length !== 32) throw malformed(`a peer's public key of ${key.length} bytes`);
      const pub = key.toString('base64');
      const ips = parseAllowedIps(p.get(WGPEER_A_ALLOWEDIPS));
      const last = peers[peers.length - 1];
      if (last && last.publicKey === pub) {
        last.allowedIps.push(...ips);
        continue;
      }
      const ep = p.get(WGPEER_A_ENDPOINT);
      const hs = p.get(WGPEER_A_LAST_HANDSHAKE_TIME);
      peers.push({
        publicKey: pub,
        endpoint: ep ? parseSockaddr(ep) : undefined,
        allowedIps: ips,
        keepalive: ((k) => (k ? u16At(k, 'keepalive interval') : 0))(p.get(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL)),
        lastHandshake: hs && hs.length >= 8 ? Number(hs.readBigInt64LE(0)) : 0,
      });
    }
  }
  return { privateKey, listenPort, peers };
}

function parseAllowedIps(list: Buffer | undefined): string[] {
  if (!list) return [];
  const out: string[] = [];
  for (const el of parseAttrs(list)) {
    const a = attrMap(el.data);
    const ip = a.get(WGALLOWEDIP_A_IPADDR);
    const mask = a.get(WGALLOWEDIP_A_CIDR_MASK);
    if (!ip || !mask) continue;
    if ((ip.length !== 4 && ip.length !== 16) || mask.length < 1 || mask[0]! > ip.length * 8) throw malformed(`an allowed IP of ${ip.length} bytes with mask ${mask[0]}`);
    out.push(formatCidr({ addr: ip, bits: mask[0]! }));
  }
  return out;
}

/** CTRL_CMD_GETFAMILY for `name` on the generic netlink controller. */
export const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;

export function encodeGetFamily(name: string): Buffer[] {
  return [genlHeader(CTRL_CMD_GETFAMILY, 1), str(CTRL_ATTR_FAMILY_NAME, name)];
}

export function parseFamilyId(msg: Buffer): number | undefined {
  const a = attrMap(msg.subarray(4));
  const name = a.get(CTRL_ATTR_FAMILY_NAME);
  const id = a.get(CTRL_ATTR_FAMILY_ID);
  if (!id || id.length < 2 || (name && cstr(name) === '')) return undefined;
  return id.readUInt16LE(0);
}
