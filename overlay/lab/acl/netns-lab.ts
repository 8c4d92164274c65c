/**
 * Two network namespaces joined by a veth pair, for the ACL's tests and benchmarks: the driver is
 * attached to one end, the same tc mechanism as on the WireGuard interface. Packets only ever go
 * between these namespaces. Commands inside a namespace run through `nsenter --net=` (not
 * `ip netns exec`, which remounts /sys and with it would hide nothing we need but costs a mount).
 */
import type { ChildProcess } from 'node:child_process';
import { runOk, run } from '../../acl/exec.js';
import { startWg, stopWg, wgKeys, type WgEnd } from './lab-wireguard.js';

export interface Side {
  readonly ns: string;
  readonly ifname: string;
  readonly v4: string;
  readonly v6: string;
  /** Node-pool addresses on the same link: outside the guarded prefixes. */
  readonly v4Unguarded: string;
  readonly v6Unguarded: string;
}

export interface Lab {
  readonly a: Side;
  readonly b: Side;
  /** Deletes and re-creates the veth pair with the same names and addresses. */
  recreateLink(): Promise<void>;
  destroy(): Promise<void>;
}

/** Guarded prefixes for the lab (the shape of fabric's slotPrefixes). */
export const LAB_GUARDED = ['100.96.0.0/11', 'fd5b:1:2:2::/64'] as const;

/** Runs a command in a namespace (nsenter --net keeps the mount namespace, and so our bpffs). */
export function inNs(ns: string, cmd: string, args: readonly string[]): Promise<string> {
  return runOk('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args]);
}

/**
 * Creates `<tag>a` and `<tag>b` namespaces; `n` (1..250) picks the addresses, so labs that run at
 * once must use different tags and numbers. link 'veth' (default): the sides' addresses sit on the
 * veth pair. link 'wireguard': they sit on a wireguard-go tunnel whose underlay is the veth pair
 * (100.64.n.0/24), and `ifname` is the tunnel's. Returns once the link answers.
 */
export async function createLab(tag: string, n: number, link: 'veth' | 'wireguard' = 'veth'): Promise<Lab> {
  const side = (s: 'a' | 'b', host: number): Side => ({
    ns: `${tag}${s}`,
    ifname: `${tag}${s}`.slice(-15),
    v4: `100.96.${n}.${host}`,
    v6: `fd5b:1:2:2::${n.toString(16)}:${host}`,
    v4Unguarded: `100.65.${n}.${host}`,
    v6Unguarded: `fd5b:1:2:1::${n.toString(16)}:${host}`,
  });
  const a = side('a', 1);
  const b = side('b', 2);
  const wg = link === 'wireguard';
  const under = (x: Side) => (wg ? `${x.ifname}u`.slice(-15) : x.ifname);
  const underAddr = (x: Side) => `100.64.${n}.${x === a ? 1 : 2}`;
  const keys = wg ? { a: await wgKeys(), b: await wgKeys() } : undefined;
  const daemons = new Map<Side, ChildProcess>();
  const addAddrs = async (x: Side, dev: string) => {
    const ip = (...args: string[]) => inNs(x.ns, 'ip', args);
    await ip('addr', 'add', `${x.v4}/24`, 'dev', dev);
    await ip('addr', 'add', `${x.v4Unguarded}/24`, 'dev', dev);
    await ip('addr', 'add', `${x.v6}/112`, 'dev', dev, 'nodad');
    await ip('addr', 'add', `${x.v6Unguarded}/112`, 'dev', dev, 'nodad');
    await ip('link', 'set', dev, 'up');
  };
  const wgEnd = (x: Side): WgEnd => ({ ns: x.ns, ifname: x.ifname, underlay: underAddr(x), addrs: [x.v4, x.v4Unguarded, x.v6, x.v6Unguarded] });
  const startTunnel = async (x: Side) => {
    const [peer, mine, theirs] = x === a ? [b, keys!.a, keys!.b] : [a, keys!.b, keys!.a];
    daemons.set(x, await startWg(wgEnd(x), mine, wgEnd(peer), theirs.pub, x === a));
    await addAddrs(x, x.ifname);
  };
  const teardown = async () => {
    for (const [x, child] of daemons) await stopWg(child, x.ns, x.ifname);
    await destroyNs(a.ns, b.ns);
  };
  await destroyNs(a.ns, b.ns);
  try {
    await runOk('ip', ['netns', 'add', a.ns]);
    await runOk('ip', ['netns', 'add', b.ns]);
    await runOk('ip', ['link', 'add', under(a), 'netns', a.ns, 'type', 'veth', 'peer', 'name', under(b), 'netns', b.ns]);
    for (const x of [a, b]) {
      await inNs(x.ns, 'ip', ['link', 'set', 'lo', 'up']);
      if (wg) {
        await inNs(x.ns, 'ip', ['addr', 'add', `${underAddr(x)}/24`, 'dev', under(x)]);
        await inNs(x.ns, 'ip', ['link', 'set', under(x), 'up']);
        await startTunnel(x);
      } else {
        await addAddrs(x, x.ifname);
      }
    }
    await settle(a, b, wg);
  } catch (e) {
    await teardown(); // the caller has no Lab to destroy yet: leave nothing behind
    throw e;
  }
  return {
    a,
    b,
    async recreateLink() {
      if (wg) {
        await stopWg(daemons.get(a), a.ns, a.ifname);
        await startTunnel(a);
      } else {
        await run('nsenter', [`--net=/run/netns/${a.ns}`, 'ip', 'link', 'del', a.ifname]);
        await runOk('ip', ['link', 'add', a.ifname, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns]);
        await addAddrs(a, a.ifname);
        await addAddrs(b, b.ifname);
      }
      await settle(a, b, wg);
    },
    destroy: teardown,
  };
}

/** One ICMP echo from `ns` to `to`; true if answered within `waitS` seconds. */
export async function ping(ns: string, to: string, waitS = 1): Promise<boolean> {
  const r = await run('nsenter', [`--net=/run/netns/${ns}`, 'ping', '-c1', '-n', `-W${waitS}`, to]);
  return r.code === 0;
}

/**
 * A fresh veth pair drops the first packets while its carrier comes up, and a WireGuard handshake
 * sent before the peer listened is retried only after 5 s (REKEY_TIMEOUT): wait until the link
 * answers both ways, up to 20 s. Pings the unguarded addresses, which pass whatever ACL is in force.
 * A link that never comes up is reported with what both ends hold, so that a rare failure in CI
 * can be read from its log.
 */
async function settle(a: Side, b: Side, wg: boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (const [from, to] of [[a, b.v4Unguarded], [a, b.v6Unguarded], [b, a.v4Unguarded], [b, a.v6Unguarded]] as const) {
    while (!(await ping(from.ns, to, 0.3))) {
      if (Date.now() > deadline) throw new Error(`lab link ${from.ns} -> ${to} never came up\n${await linkState([a, b], wg)}`);
    }
  }
}

/** `ip -br addr` and, on a WireGuard link, `wg show` (keys hidden) of each side. */
async function linkState(sides: readonly Side[], wg: boolean): Promise<string> {
  const out: string[] = [];
  for (const x of sides) {
    const cmd = async (c: string, args: string[]) => {
      const r = await run('nsenter', [`--net=/run/netns/${x.ns}`, c, ...args]);
      return `${x.ns}$ ${c} ${args.join(' ')}\n${(r.stdout + r.stderr).trim()}`;
    };
    out.push(await cmd('ip', ['-br', 'addr']));
    if (wg) out.push(await cmd('wg', ['show', x.ifname]));
  }
  return out.join('\n');
}

async function destroyNs(...names: string[]): Promise<void> {
  for (const ns of names) await run('ip', ['netns', 'del', ns]);
}
