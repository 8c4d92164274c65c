/**
 * Network namespace primitives for the lab and the tests: create and delete named namespaces
 * (/run/netns/NAME, as `ip netns` does), run commands in one, and move the calling thread into one.
 *
 * Commands run through `nsenter --net=…`, never `ip netns exec`: the latter remounts /sys, which
 * hides a bpffs mounted under /sys/fs/bpf. Setup shells out to `ip`: this is lab plumbing, not the
 * agent's hot path.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { Sub0Error } from '../fabric/errors.js';
import { isAlive } from '../overlay/pid.js';

export const NETNS_DIR = '/run/netns';
const CLONE_NEWNET = 0x40000000;

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

/** Runs a command synchronously; throws Sub0Error with its stderr when it fails. */
export function run(cmd: string, args: readonly string[], opts: { input?: string; allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    if (opts.allowFail) return '';
    const err = e as { stderr?: string; message: string };
    throw new Sub0Error('driver', `${cmd} ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`, { cause: e });
  }
}

export function createNetns(name: string): void {
  run('ip', ['netns', 'add', name]);
  run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

/** The pids of every process whose network namespace is `name`. */
export function netnsPids(name: string): number[] {
  return run('ip', ['netns', 'pids', name], { allowFail: true })
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

export function deleteNetns(name: string): void {
  if (netnsExists(name)) run('ip', ['netns', 'del', name], { allowFail: true });
}

/**
 * Removes namespaces that sub0's labs and tests left behind: names `s0-<tag>-<pid>…` whose pid
 * is gone. Every process still inside one was started by that run, and is killed first.
 */
export function sweepStaleNetns(): string[] {
  let names: string[];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
  const swept: string[] = [];
  for (const name of names) {
    const m = /^s0-[a-z0-9]+-(\d+)(?:-|$)/.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    for (const pid of netnsPids(name)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    deleteNetns(name);
    swept.push(name);
  }
  return swept;
}

export { isAlive as processAlive };

/** `ip -n NAME …` */
export function ipIn(name: string, ...args: string[]): string {
  return run('ip', ['-n', name, ...args]);
}

/** Runs a command inside the namespace, synchronously. */
export function execIn(name: string, cmd: string, args: readonly string[], opts: { allowFail?: boolean } = {}): string {
  return run('nsenter', [`--net=${netnsPath(name)}`, '--', cmd, ...args], opts);
}

/** Spawns a long-running command inside the namespace (the pid is the command's own: nsenter execs it). */
export function spawnIn(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn('nsenter', [`--net=${netnsPath(name)}`, '--', cmd, ...args], opts);
}

let setnsFn: ((fd: number, nstype: number) => number) | undefined;

/**
 * Moves the calling thread (Node's main thread) into the namespace: netlink sockets opened and
 * processes spawned afterwards live there. For test and bench processes only; returns a function
 * that moves back. Sockets opened before stay where they were.
 */
export async function enterNetns(name: string): Promise<() => void> {
  if (!setnsFn) {
    const koffi = (await import('koffi')).default;
    const libc = koffi.load('libc.so.6');
    setnsFn = libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number;
  }
  const setns = setnsFn;
  const back = openSync('/proc/thread-self/ns/net', 'r');
  const fd = openSync(netnsPath(name), 'r');
  try {
    if (setns(fd, CLONE_NEWNET) !== 0) throw new Sub0Error('permission', `setns into ${name} failed`);
  } finally {
    closeSync(fd);
  }
  return () => {
    setns(back, CLONE_NEWNET);
    closeSync(back);
  };
}
