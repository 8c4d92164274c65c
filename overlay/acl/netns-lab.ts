/**
 * Two network namespaces joined by a veth pair, for the ACL's tests and benchmarks: the driver is
 * attached to one end, the same tc mechanism as on the WireGuard interface. Packets only ever go
 * between these namespaces. Commands inside a namespace run through `nsenter --net=` (not
 * `ip netns exec`, which remounts /sys and with it would hide nothing we need but costs a mount).
 */
import { runOk, run } from './exec.js';

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
 * once must use different tags and numbers. Returns after IPv6 DAD has settled.
 */
export async function createLab(tag: string, n: number): Promise<Lab> {
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
  await destroyNs(a.ns, b.ns);
  await runOk('ip', ['netns', 'add', a.ns]);
  await runOk('ip', ['netns', 'add', b.ns]);
  const link = async () => {
    await runOk('ip', ['link', 'add', a.ifname, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns]);
    for (const x of [a, b]) {
      const ip = (...args: string[]) => inNs(x.ns, 'ip', args);
      await ip('link', 'set', 'lo', 'up');
      await ip('addr', 'add', `${x.v4}/24`, 'dev', x.ifname);
      await ip('addr', 'add', `${x.v4Unguarded}/24`, 'dev', x.ifname);
      await ip('addr', 'add', `${x.v6}/112`, 'dev', x.ifname, 'nodad');
      await ip('addr', 'add', `${x.v6Unguarded}/112`, 'dev', x.ifname, 'nodad');
      await ip('link', 'set', x.ifname, 'up');
    }
  };
  await link();
  await settle(a, b);
  return {
    a,
    b,
    async recreateLink() {
      await run('nsenter', [`--net=/run/netns/${a.ns}`, 'ip', 'link', 'del', a.ifname]);
      await link();
      await settle(a, b);
    },
    destroy: () => destroyNs(a.ns, b.ns),
  };
}

/** One ICMP echo from `ns` to `to`; true if answered within `waitS` seconds. */
export async function ping(ns: string, to: string, waitS = 1): Promise<boolean> {
  const r = await run('nsenter', [`--net=/run/netns/${ns}`, 'ping', '-c1', '-n', `-W${waitS}`, to]);
  return r.code === 0;
}

/**
 * A fresh veth pair drops the first packets while its carrier comes up: wait until it answers.
 * Pings the unguarded addresses, which pass whatever ACL is in force.
 */
async function settle(a: Side, b: Side): Promise<void> {
  for (const to of [b.v4Unguarded, b.v6Unguarded]) {
    for (let i = 0; i < 20 && !(await ping(a.ns, to, 0.2)); i++) await new Promise((r) => setTimeout(r, 100));
  }
}

async function destroyNs(...names: string[]): Promise<void> {
  for (const ns of names) await run('ip', ['netns', 'del', ns]);
}
