/**
 * `sub0 image slot`: a small slot image for tests and the lab, made with the boot image's pinned
 * inputs and tooling: Debian's kernel, an initramfs of busybox, the virtio modules and
 * bootimage/slot-guest/init.sh, in the tar a node's image store takes (overlay/slots/image-store.ts).
 * Reproducible: the same inputs give the same bytes, so the same ref.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';
import { imageRef } from '../../fabric/slot-image-ref.js';
import { runOk } from '../../overlay/acl/exec.js';
import { IMAGE_MEMBERS, sha256File } from '../../overlay/slots/image-store.js';
import { bootimagePath } from '../paths.js';
import { compress, selectModules } from './build-image.js';
import { cpioChunks } from './cpio.js';
import { CpioTree } from './cpio-tree.js';
import { fetchDebs, loadInputs } from './inputs.js';

/** The guest's drivers: virtio over MMIO (microvm) or PCI (q35), its NIC and its disk. */
const GUEST_MODULES = ['virtio_mmio', 'virtio_pci', 'virtio_net', 'virtio_blk'];

export interface SlotImage {
  readonly file: string;
  readonly ref: string;
  readonly bytes: number;
}

export async function buildSlotImage(o: { out: string; cache: string }): Promise<SlotImage> {
  const inputs = loadInputs();
  const work = join(o.out, '.slot-work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const kernelPkg = `linux-image-${inputs.kernel.release}`;
    const wanted = inputs.debs.filter((d) => d.name === kernelPkg || d.name === 'busybox-static');
    if (wanted.length !== 2) throw new Sub0Error('invalid-input', `inputs.json must pin ${kernelPkg} and busybox-static`);
    const files = await fetchDebs(wanted, join(o.cache, 'debs'));
    const dirs = new Map<string, string>();
    for (const [name, file] of files) {
      const dir = join(work, name);
      mkdirSync(dir, { recursive: true });
      await runOk('dpkg-deb', ['-x', file, dir]);
      dirs.set(name, dir);
    }
    const kernelDir = dirs.get(kernelPkg)!;
    const mods = await selectModules(kernelDir, inputs.kernel.release, GUEST_MODULES, work);

    const cpio = new CpioTree();
    for (const d of ['bin', 'dev', 'proc', 'sys', 'lib/modules']) cpio.dir(d);
    cpio.char('dev/console', 0o600, 5, 1);
    cpio.file('init', bootimagePath('slot-guest/init.sh'), 0o755);
    cpio.file('bin/busybox', join(dirs.get('busybox-static')!, 'bin/busybox'), 0o755);
    cpio.symlink('bin/sh', 'busybox');
    const modules = `lib/modules/${inputs.kernel.release}`;
    cpio.dir(modules);
    cpio.tree(modules, join(mods.dir, modules));

    const bundle = join(work, 'bundle');
    mkdirSync(bundle, { recursive: true });
    await compress(cpioChunks(cpio.entries, inputs.sourceDateEpoch), join(bundle, IMAGE_MEMBERS.initrd));
    await runOk('cp', [join(kernelDir, `boot/vmlinuz-${inputs.kernel.release}`), join(bundle, IMAGE_MEMBERS.kernel)]);
    mkdirSync(o.out, { recursive: true });
    const file = join(o.out, 'slot.tar');
    await runOk('tar', ['--sort=name', `--mtime=@${inputs.sourceDateEpoch}`, '--owner=0', '--group=0', '--numeric-owner', '--mode=0644', '--format=gnu', '-cf', file, '-C', bundle, IMAGE_MEMBERS.kernel, IMAGE_MEMBERS.initrd]);
    return { file, ref: imageRef(await sha256File(file)), bytes: statSync(file).size };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
