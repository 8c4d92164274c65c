/**
 * Runs the slots a node's config assigns to it, level-based like the network: desired slots in,
 * running VMs observed, the difference applied, again whenever either changes.
 *  - assigned, not running: image from the store (by content), tap wired, ACL attached to the tap
 *    (fail closed: no enforcement, no start), disk made or grown, QEMU started;
 *  - running with other resources (vCPUs, memory, disk, image, addresses): stopped, started anew;
 *  - no longer assigned (retired, or moved to another node): stopped, tap removed, its directory
 *    (the disk) removed after a grace period;
 *  - a VM that ends on its own: started again with backoff (1 s doubling to 60 s, back to 1 s once
 *    it ran a minute).
 * Each slot's state, uptime, restarts and last error are kept for the agent's status. The agent
 * stopping leaves the VMs running (as it leaves the data plane); the next agent adopts them.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isSub0Error } from '../../fabric/errors.js';
import type { HostedSlot } from '../../fabric/node-config.js';
import type { SlotPhase } from '../../fabric/node-status.js';
import type { ImageStore } from './image-store.js';
import { slotMac, slotTap } from './qemu-args.js';
import { unwireSlot, wireSlot } from './slot-net.js';
import { SlotVm, slotFiles } from './slot-vm.js';
import { detectCgroups, removeSlotCgroup, slotLimits, type CgroupLayout } from './slot-cgroup.js';
import { prepareJail } from './slot-jail.js';

export interface SlotStatus {
  readonly id: string;
  readonly phase: SlotPhase;
  /** When the VM last started (ms since the epoch), while it runs. */
  readonly startedAt?: number;
  /** Its QEMU's process id, while it runs. */
  readonly pid?: number;
  readonly restarts: number;
  readonly lastError?: { readonly code: string; readonly message: string; readonly at: number };
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly diskGiB: number;
  readonly image: string;
}

export interface SlotManagerOptions {
  readonly slotsDir: string;
  readonly store: ImageStore;
  readonly accel: 'kvm' | 'tcg';
  readonly log: Logger;
  /** Attaches the node's ACL to a slot's tap; a throw stops the slot from starting. */
  readonly attachAcl: (tap: string) => Promise<void>;
  readonly qemu?: string;
  readonly retireGraceMs?: number;
  /** Where the cgroup controllers are (default: found in /proc/self/mountinfo). */
  readonly cgroups?: CgroupLayout | undefined;
}

const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
const STABLE_MS = 60_000;
const RETIRE_GRACE_MS = 24 * 3600_000;
const SPEC_FILE = 'spec.json';
const RETIRED_FILE = 'retired.json';
const RESYNC_MS = 30_000;

/** What a running VM was started with: a change in any of these restarts it. */
function fingerprint(s: HostedSlot): string {
  return JSON.stringify([s.vcpus, s.memoryMiB, s.diskGiB, s.image, s.ipv4, s.ipv6]);
}

interface Entry {
  phase: SlotPhase;
  restarts: number;
  backoffMs: number;
  retryAt: number;
  startedAt?: number;
  lastError?: { code: string; message: string; at: number };
}

export class SlotManager {
  private desired = new Map<string, HostedSlot>();
  private readonly vms = new Map<string, SlotVm>();
  private readonly entries = new Map<string, Entry>();
  private passing: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private resync: NodeJS.Timeout | undefined;
  /** Called after every pass and every VM that ended: the slots' status may have changed. */
  onChange: () => void = () => undefined;

  private readonly cgroups: CgroupLayout | undefined;

  constructor(private readonly o: SlotManagerOptions) {
    this.cgroups = 'cgroups' in o ? o.cgroups : detectCgroups();
  }

  /** Finds the VMs a previous agent left running; passes again every resyncMs (retired disks' grace, VMs gone unseen). */
  async start(resyncMs = RESYNC_MS): Promise<void> {
    this.resync = setInterval(() => this.kick(), resyncMs);
    this.resync.unref();
    if (!existsSync(this.o.slotsDir)) return;
    for (const id of readdirSync(this.o.slotsDir)) {
      const vm = await SlotVm.adopt(slotFiles(this.o.slotsDir, id));
      if (!vm) continue;
      this.watch(id, vm);
      this.entries.set(id, { phase: 'running', restarts: 0, backoffMs: BACKOFF_MIN_MS, retryAt: 0, startedAt: vm.startedAt });
      this.o.log.info({ slot: id, pid: vm.pid }, 'slot VM found running');
    }
  }

  /** The newest desired slots win; a pass follows. */
  setDesired(slots: readonly HostedSlot[]): void {
    this.desired = new Map(slots.map((s) => [s.id, s]));
    this.kick();
  }

  status(): SlotStatus[] {
    return [...this.desired.values()].map((s) => {
      const e = this.entries.get(s.id);
      return {
        id: s.id,
        phase: e?.phase ?? 'starting',
        ...(e?.startedAt !== undefined && e.phase === 'running' ? { startedAt: e.startedAt, pid: this.vms.get(s.id)?.pid } : {}),
        restarts: e?.restarts ?? 0,
        ...(e?.lastError ? { lastError: e.lastError } : {}),
        vcpus: s.vcpus,
        memoryMiB: s.memoryMiB,
        diskGiB: s.diskGiB,
        image: s.image,
      };
    });
  }

  /** Lets go of the VMs (they keep running) and stops passing. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.resync);
    await this.passing;
    for (const vm of this.vms.values()) vm.detach();
    this.vms.clear();
  }

  /** Resolves once no pass runs or is due (tests, and the agent's stop). */
  async settled(): Promise<void> {
    while (this.passing) await this.passing;
  }

  private kick(): void {
    if (this.closed) return;
    if (this.passing) {
      this.again = true;
      return;
    }
    this.passing = this.pass()
      .catch((e: unknown) => this.o.log.error({ err: (e as Error).message }, 'slot pass failed'))
      .finally(() => {
        this.passing = undefined;
        this.onChange();
        if (this.again) {
          this.again = false;
          this.kick();
        } else this.scheduleRetry();
      });
  }

  private scheduleRetry(): void {
    clearTimeout(this.timer);
    const due = [...this.entries.values()].filter((e) => e.phase === 'backoff' || e.phase === 'failed').map((e) => e.retryAt);
    if (due.length === 0 || this.closed) return;
    this.timer = setTimeout(() => this.kick(), Math.max(0, Math.min(...due) - Date.now()));
    this.timer.unref();
  }

  private async pass(): Promise<void> {
    for (const [id, slot] of this.desired) {
      const vm = this.vms.get(id);
      if (vm && !vm.alive()) {
        vm.onExit('QEMU is gone');
        continue;
      }
      if (vm && this.startedWith(id) !== fingerprint(slot)) {
        this.o.log.info({ slot: id }, 'slot resources changed on chain: restarting its VM');
        await this.stopVm(id, vm);
      }
      if (!this.vms.has(id)) await this.startVm(slot);
    }
    // Gone from the config: its VM (running, or waiting out a backoff) stopped, its tap removed.
    for (const id of new Set([...this.vms.keys(), ...this.entries.keys()])) {
      if (this.desired.has(id)) continue;
      this.o.log.info({ slot: id }, 'slot no longer assigned here: stopping its VM');
      const vm = this.vms.get(id);
      if (vm) await this.stopVm(id, vm);
      await unwireSlot(slotTap(id)).catch((e: Error) => this.o.log.warn({ slot: id, err: e.message }, 'cannot remove the slot tap'));
      await removeSlotCgroup(this.cgroups, id).catch((e: Error) => this.o.log.warn({ slot: id, err: e.message }, 'cannot remove the slot cgroup'));
      const dir = slotFiles(this.o.slotsDir, id).dir;
      if (existsSync(dir)) writeFileSync(join(dir, RETIRED_FILE), JSON.stringify({ at: Date.now() }));
      this.entries.delete(id);
    }
    this.removeExpired();
  }

  private startedWith(id: string): string | undefined {
    try {
      return readFileSync(join(slotFiles(this.o.slotsDir, id).dir, SPEC_FILE), 'utf8');
    } catch {
      return undefined;
    }
  }

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (!e) this.entries.set(id, (e = { phase: 'starting', restarts: 0, backoffMs: BACKOFF_MIN_MS, retryAt: 0 }));
    return e;
  }

  private async startVm(slot: HostedSlot): Promise<void> {
    const e = this.entry(slot.id);
    if ((e.phase === 'backoff' || e.phase === 'failed') && Date.now() < e.retryAt) return;
    e.phase = 'starting';
    const files = slotFiles(this.o.slotsDir, slot.id);
    const tap = slotTap(slot.id);
    try {
      const boot = await this.o.store.boot(slot.image);
      await wireSlot(tap, slotMac(slot.id), slot.ipv4, slot.ipv6);
      await this.o.attachAcl(tap);
      // Confined: its own user, an empty root, its own namespaces, its cgroup limits (slot-jail.ts).
      const jail = prepareJail(this.o.slotsDir, slot.id, this.cgroups, slotLimits(slot.vcpus, slot.memoryMiB, this.o.accel));
      const vm = await SlotVm.start({ id: slot.id, vcpus: slot.vcpus, memoryMiB: slot.memoryMiB, kernel: boot.kernel, initrd: boot.initrd, tap, ipv4: slot.ipv4, ipv6: slot.ipv6, accel: this.o.accel }, files, slot.diskGiB, this.o.qemu, jail);
      writeFileSync(join(files.dir, SPEC_FILE), fingerprint(slot));
      rmSync(join(files.dir, RETIRED_FILE), { force: true });
      this.watch(slot.id, vm);
      e.phase = 'running';
      e.startedAt = Date.now();
      this.o.log.info({ slot: slot.id, pid: vm.pid, vcpus: slot.vcpus, memoryMiB: slot.memoryMiB }, 'slot VM started');
    } catch (err) {
      // An image that is refused, missing or a disk that cannot shrink waits for the chain to change; the rest retries.
      const code = isSub0Error(err) ? err.code : 'internal';
      e.lastError = { code, message: (err as Error).message, at: Date.now() };
      e.phase = code === 'invalid-input' || code === 'not-found' ? 'failed' : 'backoff';
      e.retryAt = Date.now() + e.backoffMs;
      e.backoffMs = Math.min(e.backoffMs * 2, BACKOFF_MAX_MS);
      this.o.log.error({ slot: slot.id, code, err: e.lastError.message }, 'slot VM not started');
    }
  }

  private watch(id: string, vm: SlotVm): void {
    this.vms.set(id, vm);
    vm.onExit = (reason) => {
      if (this.vms.get(id) !== vm) return;
      this.vms.delete(id);
      const e = this.entry(id);
      const ran = e.startedAt ? Date.now() - e.startedAt : 0;
      if (ran > STABLE_MS) e.backoffMs = BACKOFF_MIN_MS;
      e.restarts += 1;
      e.phase = 'backoff';
      e.lastError = { code: 'driver', message: reason, at: Date.now() };
      e.retryAt = Date.now() + e.backoffMs;
      e.backoffMs = Math.min(e.backoffMs * 2, BACKOFF_MAX_MS);
      this.o.log.warn({ slot: id, reason, retryInMs: e.retryAt - Date.now() }, 'slot VM ended; restarting with backoff');
      this.onChange();
      this.kick();
    };
  }

  private async stopVm(id: string, vm: SlotVm): Promise<void> {
    const e = this.entry(id);
    e.phase = 'stopping';
    this.vms.delete(id);
    await vm.stop();
  }

  /** Directories of slots retired longer than the grace period: the disk goes with them. */
  private removeExpired(): void {
    if (!existsSync(this.o.slotsDir)) return;
    const grace = this.o.retireGraceMs ?? RETIRE_GRACE_MS;
    for (const id of readdirSync(this.o.slotsDir)) {
      if (this.desired.has(id)) continue;
      const f = join(slotFiles(this.o.slotsDir, id).dir, RETIRED_FILE);
      try {
        const { at } = JSON.parse(readFileSync(f, 'utf8')) as { at: number };
        if (Date.now() - at >= grace) {
          rmSync(slotFiles(this.o.slotsDir, id).dir, { recursive: true, force: true });
          this.o.log.info({ slot: id }, 'retired slot\'s disk removed after its grace period');
        }
      } catch {
        // not retired (or being made)
      }
    }
  }
}
