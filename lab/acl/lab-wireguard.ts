/**
 * A WireGuard link for the ACL lab: wireguard-go (a TUN device, link type "none", the same kind of
 * L3 device as the kernel's wg) on each side, peered over a veth underlay. This lets the tests run
 * the ACL on the very device type it guards in production. Test support only; the agent's real
 * WireGuard drivers live in overlay/wireguard.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOk } from '../../overlay/acl/exec.js';

export interface WgEnd {
  readonly ns: string;
  readonly ifname: string;
  /** The underlay address the peer reaches this end at. */
  readonly underlay: string;
  /** Addresses (host, no prefix) routed to this end through the tunnel. */
  readonly addrs: readonly string[];
}

interface Keys {
  readonly priv: string;
  readonly pub: string;
}

const PORT = 51820;

export async function wgKeys(): Promise<Keys> {
  const priv = (await runOk('wg', ['genkey'])).trim();
  const pub = (await runOk('wg', ['pubkey'], priv)).trim();
  return { priv, pub };
}

/**
 * Starts wireguard-go for `end` in its namespace and configures it to reach `peer`. Only the
 * `initiator` end keeps the link alive (and so starts the handshake): when both ends initiate at
 * once, Debian 12's wireguard-go (0.0.20220316) can settle on keys that work in one direction
 * only, until the next rekey two minutes later (seen here: "Received invalid response message" on
 * one end, then its packets never counted by the other).
 */
export async function startWg(end: WgEnd, keys: Keys, peer: WgEnd, peerPub: string, initiator: boolean): Promise<ChildProcess> {
  const child = spawn('nsenter', [`--net=/run/netns/${end.ns}`, 'wireguard-go', '-f', end.ifname], { stdio: 'ignore' });
  try {
    const sock = `/var/run/wireguard/${end.ifname}.sock`;
    for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    const inNs = (cmd: string, args: string[], input?: string) => runOk('nsenter', [`--net=/run/netns/${end.ns}`, cmd, ...args], input);
    // wg reads the key from a file; /dev/stdin is no use, node's stdio pipes are sockets.
    const keyFile = join(tmpdir(), `sub0-wg-${process.pid}-${end.ifname}.key`);
    writeFileSync(keyFile, keys.priv + '\n', { mode: 0o600 });
    try {
      await inNs('wg', ['set', end.ifname, 'listen-port', String(PORT), 'private-key', keyFile]);
    } finally {
      rmSync(keyFile, { force: true });
    }
    const allowed = peer.addrs.map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`)).join(',');
    await inNs('wg', ['set', end.ifname, 'peer', peerPub, 'endpoint', `${peer.underlay}:${PORT}`, 'allowed-ips', allowed, 'persistent-keepalive', initiator ? '1' : 'off']);
  } catch (e) {
    await stopWg(child, end.ns, end.ifname);
    throw e;
  }
  return child;
}

/** Stops a wireguard-go started by startWg (its TUN device goes with it). */
export async function stopWg(child: ChildProcess | undefined, ns: string, ifname: string): Promise<void> {
  await run('nsenter', [`--net=/run/netns/${ns}`, 'ip', 'link', 'del', ifname]);
  if (child && child.exitCode === null) {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill();
    await gone;
  }
}
