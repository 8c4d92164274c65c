/**
 * A slot's network on its node: a persistent tap device made by the agent (TUNSETIFF through
 * /dev/net/tun, then TUNSETPERSIST: QEMU opens it, never creates it), the host side of the link
 * holding the slot's gateway addresses (169.254.0.1 and fe80::1, the same on every tap), and host
 * routes to the slot's overlay addresses through it. Idempotent: a restarted agent finds it made.
 */
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import koffi from 'koffi';
import { Sub0Error } from '../../fabric/errors.js';
import { runOk } from '../acl/exec.js';
import { SLOT_GATEWAY4, SLOT_GATEWAY6 } from './qemu-args.js';
import { guardSlot, unguardSlot } from './slot-guard.js';

const TUNSETIFF = 0x400454ca;
const TUNSETPERSIST = 0x400454cb;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFREQ_SIZE = 40;
const IP_TIMEOUT_MS = 10_000;

type Ioctl = (fd: number, req: number, ...args: unknown[]) => number;
let ioctlFn: Ioctl | undefined;
function ioctl(fd: number, req: number, arg: Buffer | number): number {
  ioctlFn ??= koffi.load('libc.so.6').func('int ioctl(int fd, unsigned long req, ...)') as unknown as Ioctl;
  return typeof arg === 'number' ? ioctlFn(fd, req, 'unsigned long', arg) : ioctlFn(fd, req, 'void *', arg);
}

/**
 * Whether this network namespace has interface `name`. From /proc/thread-self/net/dev, which
 * follows the caller's namespace; /sys/class/net follows the one sysfs was mounted in (a process
 * moved into a namespace by nsenter, as in the lab, still sees the host's interfaces there).
 */
export function linkExists(name: string): boolean {
  return readFileSync('/proc/thread-self/net/dev', 'utf8')
    .split('\n')
    .slice(2)
    .some((l) => l.slice(0, l.indexOf(':')).trim() === name);
}

/** Makes tap `name` (persistent, no packet info header) unless it is there. */
export function ensureTap(name: string): void {
  if (linkExists(name)) return;
  if (name.length > 15) throw new Sub0Error('invalid-input', `tap name ${name} is longer than 15 characters`);
  const fd = openSync('/dev/net/tun', 'r+');
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write(name, 0, 'ascii');
    ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI, 16);
    if (ioctl(fd, TUNSETIFF, ifr) !== 0) throw new Sub0Error('driver', `TUNSETIFF ${name} failed (errno ${koffi.errno()})`);
    if (ioctl(fd, TUNSETPERSIST, 1) !== 0) throw new Sub0Error('driver', `TUNSETPERSIST ${name} failed (errno ${koffi.errno()})`);
  } finally {
    closeSync(fd);
  }
}

const ip = (args: string[]) => runOk('ip', args, undefined, IP_TIMEOUT_MS);

/**
 * The tap up, pinned to the slot's MAC and addresses (slot-guard.ts; plus IPv4's strict
 * reverse-path filter), the gateway addresses on it, host routes and permanent neighbour entries
 * (the node never learns another MAC for the slot's addresses) to the slot through it.
 */
export async function wireSlot(tap: string, mac: string, ipv4: string, ipv6: string): Promise<void> {
  ensureTap(tap);
  // The guard is in place before the link comes up: no frame from the slot passes unchecked.
  await guardSlot(tap, mac, ipv4, ipv6);
  writeFileSync(`/proc/sys/net/ipv4/conf/${tap}/rp_filter`, '1');
  await ip(['link', 'set', tap, 'up']);
  await ip(['addr', 'replace', `${SLOT_GATEWAY4}/32`, 'dev', tap]);
  await ip(['-6', 'addr', 'replace', `${SLOT_GATEWAY6}/64`, 'dev', tap, 'nodad']);
  await ip(['route', 'replace', ipv4, 'dev', tap]);
  await ip(['-6', 'route', 'replace', ipv6, 'dev', tap]);
  await ip(['neigh', 'replace', ipv4.split('/')[0]!, 'lladdr', mac, 'dev', tap, 'nud', 'permanent']);
  await ip(['-6', 'neigh', 'replace', ipv6.split('/')[0]!, 'lladdr', mac, 'dev', tap, 'nud', 'permanent']);
}

/** Removes the tap (its routes go with it) and its guard; no error when they are gone already. */
export async function unwireSlot(tap: string): Promise<void> {
  if (linkExists(tap)) {
    // Gone meanwhile is no error either.
    await ip(['link', 'del', tap]).catch((e: Error) => {
      if (!/Cannot find device/.test(e.message)) throw e;
    });
  }
  await unguardSlot(tap);
}

/**
 * The node routes between its slots' taps and the WireGuard interface: forwarding on, in the
 * agent's network namespace. (With IPv6 forwarding on, the kernel stops taking router
 * advertisements on interfaces left at accept_ra=1: an uplink configured by SLAAC needs accept_ra=2.)
 */
export function enableForwarding(): void {
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
  writeFileSync('/proc/sys/net/ipv6/conf/all/forwarding', '1');
}

/** Real KVM: /dev/kvm and a vendor module (a PVM /dev/kvm, as on some cloud VMs, cannot run stock guests). */
export function realKvm(): boolean {
  return existsSync('/dev/kvm') && (existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd'));
}
