/**
 * A slot's cgroup: the chain's vCPUs become a CPU quota, its memory (plus QEMU's own overhead) a
 * hard memory limit, and the VM gets a bound on its threads. cgroup v2 where its cpu and memory
 * controllers are available (cpu.max, memory.max, pids.max; the boot image mounts it), the v1
 * controllers otherwise (cpu.cfs_quota_us, memory.limit_in_bytes, pids.max), as on hosts that
 * still run the hybrid layout. The chain defines no I/O figure, so no io.max is set.
 *
 * The launcher writes its own pid into every `procs` file before it executes QEMU, so the VM
 * never runs a moment outside its limits (slot-jail.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';

export const CPU_PERIOD_US = 100_000;
/** QEMU's own memory beside the guest's: its code, device models, I/O buffers. */
const OVERHEAD_MIB = 128;
/** TCG's translation cache, bounded by -accel tcg,tb-size (qemu-args.ts). */
export const TCG_TB_MIB = 64;
const PIDS_MAX = 256;
const DIR = 'sub0-slots';

export interface SlotLimits {
  readonly cpuQuotaUs: number;
  readonly cpuPeriodUs: number;
  readonly memoryBytes: number;
  readonly pidsMax: number;
}

/** The limits of a VM with the chain's resources (pure). */
export function slotLimits(vcpus: number, memoryMiB: number, accel: 'kvm' | 'tcg'): SlotLimits {
  const mib = memoryMiB + OVERHEAD_MIB + (accel === 'tcg' ? TCG_TB_MIB : 0);
  return { cpuQuotaUs: vcpus * CPU_PERIOD_US, cpuPeriodUs: CPU_PERIOD_US, memoryBytes: mib * 1024 * 1024, pidsMax: PIDS_MAX };
}

export type CgroupLayout = { readonly version: 2; readonly root: string } | { readonly version: 1; readonly cpu: string; readonly memory: string; readonly pids?: string };

/** Where the cgroup controllers are mounted (from /proc/self/mountinfo), or undefined. */
export function detectCgroups(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): CgroupLayout | undefined {
  const v1: Record<string, string> = {};
  let v2: string | undefined;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const mountPoint = line.slice(0, sep).split(' ')[4]!;
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup2') {
      const controllers = readText(join(mountPoint, 'cgroup.controllers'))?.split(/\s+/) ?? [];
      if (controllers.includes('cpu') && controllers.includes('memory')) v2 ??= mountPoint;
    } else if (fstype === 'cgroup') {
      for (const opt of superOpts.split(',')) if (opt === 'cpu' || opt === 'memory' || opt === 'pids') v1[opt] ??= mountPoint;
    }
  }
  if (v2) return { version: 2, root: v2 };
  if (v1.cpu && v1.memory) return { version: 1, cpu: v1.cpu, memory: v1.memory, ...(v1.pids ? { pids: v1.pids } : {}) };
  return undefined;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The files each limit goes to, and their values (pure). */
export function limitFiles(layout: CgroupLayout, id: string, l: SlotLimits): { dirs: string[]; files: [string, string][]; procs: string[] } {
  if (layout.version === 2) {
    const dir = join(layout.root, DIR, id);
    return {
      dirs: [dir],
      files: [
        [join(dir, 'cpu.max'), `${l.cpuQuotaUs} ${l.cpuPeriodUs}`],
        [join(dir, 'memory.max'), String(l.memoryBytes)],
        [join(dir, 'memory.swap.max'), '0'],
        [join(dir, 'pids.max'), String(l.pidsMax)],
      ],
      procs: [join(dir, 'cgroup.procs')],
    };
  }
  const cpu = join(layout.cpu, DIR, id);
  const mem = join(layout.memory, DIR, id);
  const pids = layout.pids ? join(layout.pids, DIR, id) : undefined;
  return {
    dirs: [cpu, mem, ...(pids ? [pids] : [])],
    files: [
      [join(cpu, 'cpu.cfs_period_us'), String(l.cpuPeriodUs)],
      [join(cpu, 'cpu.cfs_quota_us'), String(l.cpuQuotaUs)],
      [join(mem, 'memory.limit_in_bytes'), String(l.memoryBytes)],
      ...(pids ? [[join(pids, 'pids.max'), String(l.pidsMax)] as [string, string]] : []),
    ],
    procs: [cpu, mem, ...(pids ? [pids] : [])].map((d) => join(d, 'cgroup.procs')),
  };
}

/**
 * Makes slot `id`'s cgroup with its limits (again, when they changed); returns the `procs` files
 * its launcher joins. Throws Sub0Error 'unsupported' without cgroups: a slot does not start unbounded.
 */
export function ensureSlotCgroup(layout: CgroupLayout | undefined, id: string, limits: SlotLimits): string[] {
  if (!layout) throw new Sub0Error('unsupported', 'no cgroup hierarchy with the cpu and memory controllers is mounted: a slot does not start without its limits');
  if (layout.version === 2) {
    // Controllers are handed down level by level: the root's children, then sub0-slots' children.
    enable(layout.root);
    mkdirSync(join(layout.root, DIR), { recursive: true });
    enable(join(layout.root, DIR));
  }
  const plan = limitFiles(layout, id, limits);
  for (const d of plan.dirs) mkdirSync(d, { recursive: true });
  for (const [file, value] of plan.files) {
    try {
      writeFileSync(file, value);
    } catch (e) {
      throw new Sub0Error('driver', `cannot set ${file} to ${value}: ${(e as Error).message}`);
    }
  }
  return plan.procs;
}

function enable(dir: string): void {
  const have = readText(join(dir, 'cgroup.subtree_control'))?.split(/\s+/) ?? [];
  const offered = readText(join(dir, 'cgroup.controllers'))?.split(/\s+/) ?? [];
  const want = ['cpu', 'memory', 'pids'].filter((c) => offered.includes(c) && !have.includes(c));
  if (want.length) writeFileSync(join(dir, 'cgroup.subtree_control'), want.map((c) => `+${c}`).join(' '));
}

/**
 * Removes slot `id`'s cgroup once its VM is gone. The launcher leaves it a moment after QEMU
 * ended (it reaps QEMU first): a cgroup still holding a process is retried until `waitMs`.
 */
export async function removeSlotCgroup(layout: CgroupLayout | undefined, id: string, waitMs = 5_000): Promise<void> {
  if (!layout) return;
  const dirs = layout.version === 2 ? [join(layout.root, DIR, id)] : [layout.cpu, layout.memory, ...(layout.pids ? [layout.pids] : [])].map((m) => join(m, DIR, id));
  const until = Date.now() + waitMs;
  for (const d of dirs) {
    for (;;) {
      if (!existsSync(d)) break;
      try {
        rmdirSync(d);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EBUSY' || Date.now() > until) throw new Sub0Error('driver', `cannot remove the cgroup ${d}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
}

/**
 * Removes every slot cgroup that holds no process (their VMs are gone: a lab torn down, a test
 * ended). One still in use refuses (EBUSY) and stays; an agent re-creates one it needs again.
 */
export function sweepSlotCgroups(layout: CgroupLayout | undefined = detectCgroups()): void {
  if (!layout) return;
  const roots = (layout.version === 2 ? [layout.root] : [layout.cpu, layout.memory, ...(layout.pids ? [layout.pids] : [])]).map((m) => join(m, DIR));
  for (const root of roots) {
    let ids: string[];
    try {
      ids = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      continue;
    }
    for (const id of ids) {
      try {
        rmdirSync(join(root, id));
      } catch {
        // in use
      }
    }
  }
}
