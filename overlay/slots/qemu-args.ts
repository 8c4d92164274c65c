/**
 * The QEMU command line of one slot, pure: a q35 machine booted directly from the image's kernel
 * and initramfs (its HPET gives the guest kernel a clock to calibrate against under emulation:
 * on microvm, with the PIT alone, calibration failed on a loaded host and the guest hung), the
 * chain's vCPUs and memory, the slot's disk, its tap with a MAC of its own, a QMP socket for the
 * agent and a serial console socket. No default devices, no display, QEMU's seccomp sandbox, no
 * vhost (no host-kernel shortcut), no NIC boot ROM.
 */
import { createHash } from 'node:crypto';
import { TCG_TB_MIB } from './slot-cgroup.js';
import { jailQemuArgs } from './slot-jail.js';

export interface SlotVmSpec {
  readonly id: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly kernel: string;
  readonly initrd: string;
  readonly disk: string;
  readonly tap: string;
  readonly ipv4: string;
  readonly ipv6: string;
  readonly qmp: string;
  readonly serial: string;
  /** A second serial port (the guest's ttyS1): an out-of-band console for the slot's operator. */
  readonly ops: string;
  /** QEMU writes its pid here; not when jailed (it would write its pid in its own namespace). */
  readonly pidFile?: string;
  readonly accel: 'kvm' | 'tcg';
  /** Chroot and unprivileged user (slot-jail.ts). */
  readonly jail?: { readonly uid: number; readonly root: string };
}

/** The gateway a slot's guest routes through: the host side of its tap (link-local). */
export const SLOT_GATEWAY4 = '169.254.0.1';
export const SLOT_GATEWAY6 = 'fe80::1';

const digest = (id: string) => createHash('sha256').update(id).digest();

/** A locally administered unicast MAC of the slot's own. */
export function slotMac(id: string): string {
  const h = digest(id);
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The slot's tap device: `s0v` and 10 hex of its id's hash (interface names stop at 15). */
export function slotTap(id: string): string {
  return `s0v${digest(id).subarray(0, 5).toString('hex')}`;
}

/** What the guest reads from its command line (bootimage/slot-guest/init.sh reads these). */
export function slotKernelArgs(s: Pick<SlotVmSpec, 'id' | 'ipv4' | 'ipv6'>): string {
  return ['console=ttyS0', 'reboot=t', 'panic=-1', 'quiet', `sub0.slot=${s.id}`, `sub0.ip4=${s.ipv4}`, `sub0.ip6=${s.ipv6}`, `sub0.gw4=${SLOT_GATEWAY4}`].join(' ');
}

export function slotQemuArgs(s: SlotVmSpec): string[] {
  return [
    '-name', `slot-${s.id},process=sub0-slot-${s.id}`,
    '-machine', 'q35',
    // TCG's translation cache is bounded: it counts against the slot's memory limit.
    '-accel', s.accel === 'kvm' ? 'kvm' : `tcg,tb-size=${TCG_TB_MIB}`,
    ...(s.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-smp', String(s.vcpus),
    '-m', String(s.memoryMiB),
    '-nodefaults', '-no-user-config', '-display', 'none',
    // QEMU 7.2 installs its seccomp filter before -runas: the filter must let it change its ids
    // once. After that change every uid of the process is the slot's and it has no capability, so
    // set*uid can only move between the slot's own ids.
    '-sandbox', `on,obsolete=deny,elevateprivileges=${s.jail ? 'allow' : 'deny'},spawn=deny,resourcecontrol=deny`,
    '-kernel', s.kernel,
    '-initrd', s.initrd,
    '-append', slotKernelArgs(s),
    '-drive', `file=${s.disk},format=raw,if=none,id=disk0,discard=unmap`,
    '-device', 'virtio-blk-pci,drive=disk0',
    '-netdev', `tap,id=net0,ifname=${s.tap},script=no,downscript=no,vhost=off`,
    '-device', `virtio-net-pci,netdev=net0,mac=${slotMac(s.id)},romfile=`,
    '-chardev', `socket,id=con0,path=${s.serial},server=on,wait=off`,
    '-serial', 'chardev:con0',
    '-chardev', `socket,id=ops0,path=${s.ops},server=on,wait=off`,
    '-serial', 'chardev:ops0',
    '-qmp', `unix:${s.qmp},server=on,wait=off`,
    ...(s.pidFile ? ['-pidfile', s.pidFile] : []),
    ...(s.jail ? jailQemuArgs(s.jail) : []),
  ];
}
