/**
 * Boots a sub0 image in QEMU the way a machine boots the stick: OVMF (UEFI) firmware, the image
 * as a removable USB mass-storage device on an xHCI controller, first in the boot order. TCG
 * unless real KVM is present (this machine's /dev/kvm is a PVM flavour that cannot run stock
 * guests: KVM only when the kvm_intel or kvm_amd module is loaded). The serial console is the
 * node's console: its lines are handed to `onLine` as they come.
 *
 * Network: by default QEMU's user-mode network with `restrict=on` (a DHCP lease and nothing
 * beyond the guest); with `tap`, a tap device made inside that network namespace, so that a lab
 * namespace can bridge or route to the node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { join } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';
import { realKvm } from '../../overlay/slots/slot-net.js';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export interface BootOptions {
  readonly image: string;
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** A tap device of this name, in network namespace `netns` when given, instead of user-mode networking. */
  readonly tap?: { readonly ifname: string; readonly netns?: string; readonly mac?: string };
  /** Boot without network at all. */
  readonly noNetwork?: boolean;
  /** Each serial console line, without its line ending. */
  readonly onLine?: (line: string) => void;
  /** Serial console attached to this process's terminal (interactive `sub0 image boot`). */
  readonly interactive?: boolean;
  /**
   * Boots this kernel and initramfs directly (QEMU's own loader, no UEFI firmware), the image
   * still attached as the stick: for tests that run something else than the node's /init.
   */
  readonly direct?: { readonly kernel: string; readonly initrd: string; readonly append: string };
}

export interface BootedImage {
  readonly process: ChildProcess;
  readonly accel: 'kvm' | 'tcg';
  /** Resolves with the first console line that matches (the boot's lines so far included). */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** Every console line so far. */
  readonly lines: readonly string[];
  /** Powers the machine off (SIGTERM to QEMU, then SIGKILL) and removes its firmware variables. */
  stop(): Promise<void>;
  /** Resolves when QEMU exits, with its exit code. */
  readonly exited: Promise<number | null>;
}


export function qemuArgs(o: BootOptions, vars: string, accel: 'kvm' | 'tcg'): string[] {
  const args = [
    '-machine', `q35,accel=${accel}`,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(o.memoryMiB ?? 1024),
    '-smp', String(o.cpus ?? 2),
    '-no-reboot',
    ...(o.direct
      ? ['-kernel', o.direct.kernel, '-initrd', o.direct.initrd, '-append', o.direct.append]
      : ['-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${vars}`]),
    '-device', 'qemu-xhci,id=xhci',
    '-drive', `if=none,id=stick,format=raw,file=${o.image}`,
    '-device', `usb-storage,bus=xhci.0,drive=stick,removable=on${o.direct ? '' : ',bootindex=0'}`,
  ];
  // romfile= : no iPXE boot ROM on the NIC; the firmware would load and start it for nothing.
  if (o.noNetwork) args.push('-nic', 'none');
  else if (o.tap) args.push('-netdev', `tap,id=n0,ifname=${o.tap.ifname},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,romfile=${o.tap.mac ? `,mac=${o.tap.mac}` : ''}`);
  else args.push('-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0,romfile=');
  args.push(...(o.interactive ? ['-nographic'] : ['-display', 'none', '-serial', 'stdio', '-monitor', 'none']));
  return args;
}

export function bootImage(o: BootOptions): BootedImage {
  for (const f of [o.image, ...(o.direct ? [o.direct.kernel, o.direct.initrd] : [OVMF_CODE, OVMF_VARS])]) if (!existsSync(f)) throw new Sub0Error('unsupported', `${f}: not found${f.startsWith('/usr/share/OVMF') ? ' (Debian package ovmf)' : ''}`);
  const dir = mkdtempSync(join(tmpdir(), 'sub0-boot-'));
  const vars = join(dir, 'OVMF_VARS.fd');
  copyFileSync(OVMF_VARS, vars);
  const accel = realKvm() ? 'kvm' : 'tcg';
  const args = qemuArgs(o, vars, accel);
  const cmd = o.tap?.netns ? 'ip' : 'qemu-system-x86_64';
  const argv = o.tap?.netns ? ['netns', 'exec', o.tap.netns, 'qemu-system-x86_64', ...args] : args;
  const child = spawn(cmd, argv, { stdio: o.interactive ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (l: string) => void }>();
  let partial = '';
  // One decoder: a character split across two reads (the QR code's blocks) stays whole.
  const utf8 = new StringDecoder('utf8');
  const take = (chunk: Buffer) => {
    partial += utf8.write(chunk);
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      // The console may colour and position: keep the text.
      const line = partial.slice(0, nl).replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
      partial = partial.slice(nl + 1);
      lines.push(line);
      o.onLine?.(line);
      for (const w of waiters) if (w.pattern.test(line)) w.resolve(line);
    }
  };
  child.stdout?.on('data', take);
  const qemuSaid: string[] = [];
  child.stderr?.on('data', (d: Buffer) => {
    qemuSaid.push(d.toString().trimEnd());
    o.onLine?.(`qemu: ${d.toString().trimEnd()}`);
  });
  const last = () => `last lines:\n${lines.slice(-15).join('\n')}${qemuSaid.length ? `\nQEMU said: ${qemuSaid.join('\n').slice(-2000)}` : ''}`;
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  child.on('error', () => undefined);
  const spawnError = new Promise<never>((_, reject) => child.once('error', (e) => reject(new Sub0Error('unsupported', `cannot start QEMU (Debian package qemu-system-x86): ${e.message}`))));
  void exited.then(() => rmSync(dir, { recursive: true, force: true }));

  return {
    process: child,
    accel,
    lines,
    exited,
    waitFor(pattern, timeoutMs) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const w = { pattern, resolve: (l: string) => finish(() => resolve(l)) };
        const timer = setTimeout(() => finish(() => reject(new Sub0Error('timeout', `no console line matching ${pattern} within ${timeoutMs / 1000} s; ${last()}`))), timeoutMs);
        const finish = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(w);
          f();
        };
        waiters.add(w);
        void exited.then((code) => finish(() => reject(new Sub0Error('driver', `QEMU exited (code ${code}) before a console line matched ${pattern}; ${last()}`))));
        spawnError.catch((e: Error) => finish(() => reject(e)));
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
