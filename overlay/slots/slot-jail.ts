/**
 * How a slot's QEMU is confined, besides its seccomp sandbox (qemu-args.ts) and its cgroup
 * (slot-cgroup.ts): it starts in a mount and a pid namespace of its own (`unshare`), opens what it
 * needs as root (its disk, kernel, initrd, tap, sockets), then chroots into an empty directory and
 * becomes the slot's own unprivileged user (QEMU's -chroot and -runas), before the guest runs.
 * From then on it sees no host file and no other process, and holds no capability.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';
import { ensureSlotCgroup, type CgroupLayout, type SlotLimits } from './slot-cgroup.js';

/** Slot uids (and gids) come from this range, far above any account a distribution makes. */
export const SLOT_UID_BASE = 640_000;
const SLOT_UID_SPAN = 60_000;
const UID_FILE = 'uid';

export interface SlotJail {
  readonly uid: number;
  /** An empty directory QEMU chroots into. */
  readonly root: string;
  /** cgroup.procs files the launcher joins before QEMU runs. */
  readonly procs: readonly string[];
}

/** The slot's own uid: allocated once (the lowest free in the range), kept in its directory. */
export function slotUid(slotsDir: string, id: string): number {
  const own = readUid(join(slotsDir, id));
  if (own !== undefined) return own;
  const taken = new Set<number>();
  for (const other of safeList(slotsDir)) {
    const u = readUid(join(slotsDir, other));
    if (u !== undefined) taken.add(u);
  }
  for (let uid = SLOT_UID_BASE; uid < SLOT_UID_BASE + SLOT_UID_SPAN; uid++) {
    if (taken.has(uid)) continue;
    mkdirSync(join(slotsDir, id), { recursive: true });
    writeFileSync(join(slotsDir, id, UID_FILE), `${uid}\n`);
    return uid;
  }
  throw new Sub0Error('unsupported', `no free slot uid left in ${SLOT_UID_BASE}-${SLOT_UID_BASE + SLOT_UID_SPAN - 1}`);
}

function readUid(dir: string): number | undefined {
  try {
    const n = Number(readFileSync(join(dir, UID_FILE), 'utf8').trim());
    return Number.isInteger(n) && n >= SLOT_UID_BASE && n < SLOT_UID_BASE + SLOT_UID_SPAN ? n : undefined;
  } catch {
    return undefined;
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The empty, root-owned directory the slot's QEMU chroots into. */
export function ensureJailRoot(dir: string): string {
  const root = join(dir, 'jail');
  mkdirSync(root, { recursive: true, mode: 0o555 });
  if (readdirSync(root).length > 0) throw new Sub0Error('invalid-input', `${root} must be empty: it is all the slot's QEMU sees of this machine`);
  return root;
}

/** Everything a slot's QEMU is confined by, made ready: its uid, its empty root, its cgroup with `limits`. */
export function prepareJail(slotsDir: string, id: string, cgroups: CgroupLayout | undefined, limits: SlotLimits): SlotJail {
  return { uid: slotUid(slotsDir, id), root: ensureJailRoot(join(slotsDir, id)), procs: ensureSlotCgroup(cgroups, id, limits) };
}

/** QEMU's own flags for the jail. */
export function jailQemuArgs(j: Pick<SlotJail, 'uid' | 'root'>): string[] {
  return ['-chroot', j.root, '-runas', `${j.uid}:${j.uid}`];
}

/**
 * The launcher: a shell that puts itself into the slot's cgroups, then becomes `unshare`, which
 * makes the mount and pid namespaces and runs QEMU as their first process.
 */
export function jailedCommand(qemu: string, qemuArgs: readonly string[], procs: readonly string[]): { cmd: string; args: string[] } {
  const script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"';
  return { cmd: '/bin/sh', args: ['-c', script, 'sub0-slot-launch', ...procs, '--', 'unshare', '--mount', '--pid', '--fork', '--', qemu, ...qemuArgs] };
}
