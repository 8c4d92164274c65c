/**
 * The ACL's test and bench lab: two nodes of a namespace lab (lab/lab.ts, the one mechanism the
 * lab, the tests and the benches share), with the ACL's addresses on the device it guards. Packets
 * only ever go between the lab's own namespaces. Commands inside a namespace run through
 * `nsenter --net=`, which keeps the mount namespace, and so the bpffs.
 */
import type { ChildProcess } from 'node:child_process';
import { runOk, run } from '../../overlay/acl/exec.js';
import { Lab as NamespaceLab, UNDERLAY_IF } from '../lab.js';
import { netnsPath } from '../netns.js';
import { startWg, stopWg, wgKeys, type WgEnd } from './lab-wireguard.js';

export interface Side {
  readonly ns: string;
  /** The device the ACL guards and the addresses below sit on. */
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
  /** Deletes and re-creates A's device with the same name and addresses. */
  recreateLink(): Promise<void>;
  destroy(): Promise<void>;
}

/** Guarded prefixes for the lab (the shape of fabric's slotPrefixes). */
export const LAB_GUARDED = ['100.96.0.0/11', 'fd5b:1:2:2::/64'] as const;

/** Runs a command in a namespace. */
export function inNs(ns: string, cmd: string, args: readonly string[]): Promise<string> {
  return runOk('nsenter', [`--net=${netnsPath(ns)}`, cmd, ...args]);
}

/**
 * Creates a two-node namespace lab tagged `tag`; `n` (1..250) picks the ACL addresses. link 'veth'
 * (default): the sides' addresses sit on each node's veth into the lab bridge. link 'wireguard':
 * they sit on a wireguard-go tunnel over that underlay, and `ifname` is the tunnel's. Returns once
 * the link answers both ways.
 */
export async function createLab(tag: string, n: number, link: 'veth' | 'wireguard' = 'veth'): Promise<Lab> {
  const lab = NamespaceLab.create({ nodes: ['a', 'b'], tag });
  const wg = link === 'wireguard';
  const side = (id: 'a' | 'b', host: number): Side => ({
    ns: lab.node(id).netns,
    ifname: wg ? lab.node(id).ifname : UNDERLAY_IF,
    v4: `100.96.${n}.${host}`,
    v6: `fd5b:1:2:2::${n.toString(16)}:${host}`,
    v4Unguarded: `100.65.${n}.${host}`,
    v6Unguarded: `fd5b:1:2:1::${n.toString(16)}:${host}`,
  });
  const a = side('a', 1);
  const b = side('b', 2);
  const underlay = (x: Side) => lab.node(x === a ? 'a' : 'b').underlay;
  const daemons = new Map<Side, ChildProcess>();
  const addAddrs = async (x: Side) => {
    const ip = (...args: string[]) => inNs(x.ns, 'ip', args);
    await ip('addr', 'add', `${x.v4}/24`, 'dev', x.ifname);
    await ip('addr', 'add', `${x.v4Unguarded}/24`, 'dev', x.ifname);
    await ip('addr', 'add', `${x.v6}/112`, 'dev', x.ifname, 'nodad');
    await ip('addr', 'add', `${x.v6Unguarded}/112`, 'dev', x.ifname, 'nodad');
    await ip('link', 'set', x.ifname, 'up');
  };
  const keys = wg ? { a: await wgKeys(), b: await wgKeys() } : undefined;
  const wgEnd = (x: Side): WgEnd => ({ ns: x.ns, ifname: x.ifname, underlay: underlay(x), addrs: [x.v4, x.v4Unguarded, x.v6, x.v6Unguarded] });
  const startTunnel = async (x: Side) => {
    const [peer, mine, theirs] = x === a ? [b, keys!.a, keys!.b] : [a, keys!.b, keys!.a];
    daemons.set(x, await startWg(wgEnd(x), mine, wgEnd(peer), theirs.pub, x === a));
    await addAddrs(x);
  };
  const destroy = async () => {
    for (const [x, child] of daemons) await stopWg(child, x.ns, x.ifname);
    lab.destroy();
  };
  try {
    for (const x of [a, b]) await (wg ? startTunnel(x) : addAddrs(x));
    await settle(a, b, wg);
  } catch (e) {
    await destroy(); // the caller has no Lab to destroy yet: leave nothing behind
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
        lab.recreateUnderlay('a');
        await addAddrs(a);
      }
      await settle(a, b, wg);
    },
    destroy,
  };
}

/** One ICMP echo from `ns` to `to`; true if answered within `waitS` seconds. */
export async function ping(ns: string, to: string, waitS = 1, identifier?: number): Promise<boolean> {
  const r = await run('nsenter', [`--net=${netnsPath(ns)}`, 'ping', '-c1', '-n', `-W${waitS}`, ...(identifier !== undefined ? ['-e', String(identifier)] : []), to]);
  return r.code === 0;
}

/**
 * A fresh veth drops the first packets while its carrier comes up, and a WireGuard handshake
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
      const r = await run('nsenter', [`--net=${netnsPath(x.ns)}`, c, ...args]);
      return `${x.ns}$ ${c} ${args.join(' ')}\n${(r.stdout + r.stderr).trim()}`;
    };
    out.push(await cmd('ip', ['-br', 'addr']));
    if (wg) out.push(await cmd('wg', ['show', x.ifname]));
  }
  return out.join('\n');
}
