/**
 * Attaching the ACL program to an interface's clsact ingress and egress hooks, direct-action,
 * through libbpf's bpf_tc_* API, or through `tc filter replace ... bpf da` where that API is
 * missing. Our filter is the one at (priority 1, handle 0x5b0): other filters on the device are
 * left alone, and attach() replaces ours atomically, so traffic is never unfiltered meanwhile.
 */
import { Sub0Error } from '../../fabric/errors.js';
import { run, runOk } from './exec.js';
import { check, EEXIST, type TcApi } from './libbpf.js';
import { findLink, openRouteSocket } from '../routes/links.js';

export const TC_PRIORITY = 1;
export const TC_HANDLE = 0x5b0;
const BPF_TC_INGRESS = 1;
const BPF_TC_EGRESS = 2;
const BPF_TC_F_REPLACE = 1;
const HOOK_SIZE = 24; // struct bpf_tc_hook: sz, ifindex, attach_point, parent
const OPTS_SIZE = 32; // struct bpf_tc_opts: sz, prog_fd, flags, prog_id, handle, priority

/**
 * 'ether' for Ethernet-like devices (veth), 'none' for L3 devices (WireGuard): the link's ARPHRD
 * type over rtnetlink (no iproute2 needed: the boot image has only busybox's ip).
 */
export async function linkType(ifname: string): Promise<string> {
  const nl = openRouteSocket();
  try {
    const link = await findLink(nl, ifname);
    if (!link) throw new Sub0Error('driver', 'no such link', { where: ifname });
    return typeof link.type === 'string' ? link.type.toLowerCase() : String(link.type);
  } finally {
    nl.close();
  }
}

function hook(ifindex: number, point: number): Buffer {
  const h = Buffer.alloc(HOOK_SIZE);
  h.writeBigUInt64LE(BigInt(HOOK_SIZE), 0);
  h.writeInt32LE(ifindex, 8);
  h.writeUInt32LE(point, 12);
  return h;
}

function opts(progFd: number, flags: number): Buffer {
  const o = Buffer.alloc(OPTS_SIZE);
  o.writeBigUInt64LE(BigInt(OPTS_SIZE), 0);
  o.writeInt32LE(progFd, 8);
  o.writeUInt32LE(flags, 12);
  o.writeUInt32LE(TC_HANDLE, 20);
  o.writeUInt32LE(TC_PRIORITY, 24);
  return o;
}

/**
 * Makes sure both hooks run one of `ours` (program ids), attaching progFd where they do not.
 * Without progFd it only counts. Returns how many hooks lacked our program: 0 = all in place.
 */
export function attachLibbpf(tc: TcApi, ifname: string, ifindex: number, ours: ReadonlySet<number>, progFd?: number): number {
  let missing = 0;
  for (const point of [BPF_TC_INGRESS, BPF_TC_EGRESS]) {
    const where = `${ifname} ${point === BPF_TC_INGRESS ? 'ingress' : 'egress'}`;
    const h = hook(ifindex, point);
    const q = opts(0, 0);
    const qrc = tc.query(h, q); // fails (ENOENT, EINVAL) when the filter or the clsact qdisc is missing
    if (qrc === 0 && ours.has(q.readUInt32LE(16))) continue;
    missing++;
    if (progFd === undefined) continue;
    const rc = tc.hookCreate(h); // the clsact qdisc, shared with anyone else's filters
    if (rc !== -EEXIST) check(rc, 'bpf_tc_hook_create', where);
    check(tc.attach(h, opts(progFd, BPF_TC_F_REPLACE)), 'bpf_tc_attach', where);
  }
  return missing;
}

/** Removes our filter from both hooks; a missing filter or device is not an error. */
export function detachLibbpf(tc: TcApi, ifindex: number): void {
  for (const point of [BPF_TC_INGRESS, BPF_TC_EGRESS]) tc.detach(hook(ifindex, point), opts(0, 0));
}

/** The fallback: iproute2's tc with the pinned program. Always replaces (it cannot cheaply query). */
export async function attachTcCli(ifname: string, progPin: string): Promise<void> {
  const q = await run('tc', ['qdisc', 'add', 'dev', ifname, 'clsact']);
  if (q.code !== 0 && !/File exists/i.test(q.stderr)) {
    throw new Sub0Error('driver', `tc qdisc add clsact: ${q.stderr.trim()}`, { where: ifname });
  }
  for (const dir of ['ingress', 'egress']) {
    await runOk('tc', ['filter', 'replace', 'dev', ifname, dir, 'pref', String(TC_PRIORITY), 'handle', `0x${TC_HANDLE.toString(16)}`, 'bpf', 'object-pinned', progPin, 'da']);
  }
}

export async function detachTcCli(ifname: string): Promise<void> {
  for (const dir of ['ingress', 'egress']) {
    await run('tc', ['filter', 'del', 'dev', ifname, dir, 'pref', String(TC_PRIORITY), 'handle', `0x${TC_HANDLE.toString(16)}`, 'bpf']);
  }
}
