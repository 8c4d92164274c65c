/**
 * Where the ACL's maps and programs are pinned. The agent mounts a bpffs of its own (default
 * /run/sub0/bpf) instead of using /sys/fs/bpf: it is not mounted on every node, and `ip netns exec`
 * remounts /sys, which would hide the pins. Pins are per network namespace and per interface
 * (<root>/net-<netns inode>/<ifname>), because the mount is shared by every namespace of the
 * machine and two lab nodes may both name their interface the same.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';
import { run } from './exec.js';

export const DEFAULT_PIN_ROOT = '/run/sub0/bpf';

/** True when `dir` is the mount point of a bpf filesystem (reads /proc/self/mountinfo). */
export function isBpffs(dir: string): boolean {
  const info = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const line of info.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const mountPoint = pre.split(' ')[4]?.replace(/\\040/g, ' ');
    if (mountPoint === dir && post.split(' ')[0] === 'bpf') return true;
  }
  return false;
}

/** Mounts a bpffs at `root` unless one is there; idempotent. Sub0Error 'unsupported' if it cannot. */
export async function ensureBpffs(root: string): Promise<void> {
  if (isBpffs(root)) return;
  mkdirSync(root, { recursive: true });
  const r = await run('mount', ['-t', 'bpf', 'bpf', root]);
  if (r.code !== 0 && !isBpffs(root)) {
    throw new Sub0Error('unsupported', `cannot mount a bpf filesystem: ${r.stderr.trim()}`, { where: root });
  }
}

/** This process's network namespace, as a name that stays put while the namespace lives. */
export function netnsId(): string {
  return `net-${statSync('/proc/self/ns/net').ino}`;
}

export function pinDir(root: string, ifname: string): string {
  return join(root, netnsId(), ifname);
}
