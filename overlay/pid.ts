/** Processes the agent starts and finds again by their pid files (wireguard-go, slot VMs). */
import { readFileSync } from 'node:fs';

/** The pid a pid file holds, or undefined (no file, not a pid). */
export function readPid(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Running, and not a zombie waiting to be reaped (kill(pid, 0) succeeds on those). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
