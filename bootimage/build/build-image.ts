/**
 * `sub0 image build`: the raw GPT/EFI disk image a user flashes to a USB stick.
 *
 *   usb.img = GPT [ sub0-esp: FAT, EFI/BOOT/BOOTX64.EFI (a unified kernel image: Debian's
 *                    kernel + our initramfs + command line on systemd's EFI stub) and the network
 *                    settings sub0/network.json ]
 *                 [ sub0-sys: a read-only squashfs with QEMU (the slots' hypervisor) and the
 *                    libraries it links, mounted at /opt/sub0/hv: it is read when a slot starts,
 *                    not loaded with the kernel at every boot ]
 *                 [ sub0-state: an empty ext4 with a journal; the node keeps its keys and last
 *                    accepted config there (last on the disk: room to grow) ]
 *
 * Reproducible: every input pinned (inputs.ts), the initramfs a sorted cpio with one mtime, the
 * PE stamp, the FAT and the GPT written with fixed ids and times. Two builds give the same bytes.
 * Host tools: dpkg-deb, depmod, modinfo, zstd, objcopy, strip, mkfs.vfat, mtools, sfdisk, mke2fs, mksquashfs (setup.sh).
 */
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { runOk } from '../../overlay/acl/exec.js';
import { bootimagePath, projectRoot } from '../paths.js';
import { SETTINGS_PATH } from '../settings.js';
import { cpioChunks, type CpioEntry } from './cpio.js';
import { CpioTree } from './cpio-tree.js';
import { fetchDebs, fetchNode, loadInputs, type Inputs } from './inputs.js';
import { pinPeTimestamp } from './pe.js';
import { Sub0Error } from '../../fabric/errors.js';

/** Modules the image carries (with their dependencies): the stick, NICs, the data plane, the hypervisor. */
export const MODULES = {
  storage: ['xhci_pci', 'ehci_pci', 'ohci_pci', 'uhci_hcd', 'usb_storage', 'uas', 'sd_mod', 'virtio_blk', 'virtio_scsi', 'nvme', 'ahci', 'vfat', 'nls_cp437', 'nls_ascii', 'crc32c_generic', 'crc32c_intel', 'ext4', 'squashfs'],
  nics: ['virtio_net', 'e1000', 'e1000e', 'igb', 'igc', 'ixgbe', 'i40e', 'ice', 'r8169', 'tg3', 'bnx2x', 'bnxt_en', 'mlx4_en', 'mlx5_core'],
  dataplane: ['wireguard', 'tun', 'sch_ingress', 'cls_bpf', 'veth', 'bridge'],
  hypervisor: ['kvm_intel', 'kvm_amd', 'vhost_net'],
  misc: ['virtio_pci', 'virtio_rng', 'virtio_console'],
} as const;

export const IMAGE_VERSION = 'sub0-image-1';
const CMDLINE = 'console=tty0 console=ttyS0,115200 loglevel=4 panic=30';
/** Fixed GPT ids: a rebuilt image is the same image. */
const DISK_GUID = '5E0B0000-0000-4000-8000-000000000001';
const ESP_GUID = '5E0B0000-0000-4000-8000-000000000002';
const STATE_GUID = '5E0B0000-0000-4000-8000-000000000003';
const SYS_GUID = '5E0B0000-0000-4000-8000-000000000006';
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const LINUX_TYPE = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
const MiB = 1024 * 1024;
/** The state partition as shipped: an empty ext4 with a journal. */
const STATE_MIB = 16;
const STATE_FS_UUID = '5e0b0000-0000-4000-8000-000000000004';
const STATE_FS_HASH_SEED = '5e0b0000-0000-4000-8000-000000000005';

export interface BuildOptions {
  readonly out: string;
  /** Where fetched inputs are kept between builds. */
  readonly cache: string;
  /** Extra firmware (a /lib/firmware-shaped tree): Debian's non-free firmware is not taken. */
  readonly firmware?: string;
  /** Network settings to put on the ESP (else: none, and the node asks for them on its console). */
  readonly network?: string;
  /** The project's dist/ (agent bundle, eBPF object) and node_modules (native parts). */
  readonly root?: string;
  readonly progress?: (line: string) => void;
}

export interface BuildResult {
  readonly image: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly uki: number;
  readonly initrd: number;
  /** The sub0-sys partition (QEMU). */
  readonly sys: number;
  readonly modules: number;
  /** Firmware files the carried drivers name that the image does not carry. */
  readonly firmwareMissing: Readonly<Record<string, readonly string[]>>;
  readonly seconds: number;
}


export async function buildImage(o: BuildOptions): Promise<BuildResult> {
  const t0 = performance.now();
  const root = o.root ?? projectRoot();
  const inputs = loadInputs();
  const say = o.progress ?? (() => undefined);
  const STEPS = 9;
  let step = 0;
  let stepStart = performance.now();
  const begin = (what: string) => {
    stepStart = performance.now();
    say(`[${++step}/${STEPS}] ${what}`);
  };
  const done = (what = '') => say(`      done in ${((performance.now() - stepStart) / 1000).toFixed(1)} s${what ? `: ${what}` : ''}`);

  for (const f of ['dist/image-node.js', 'dist/bpf/acl.bpf.o']) if (!existsSync(join(root, f))) throw new Sub0Error('invalid-input', `${f} is missing: run 'npm run build' (and 'npm run build:bpf') first`);
  if (o.network && !existsSync(o.network)) throw new Sub0Error('invalid-input', `--network ${o.network}: no such file`);
  mkdirSync(o.out, { recursive: true });
  const work = join(o.out, '.work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    begin(`inputs: ${inputs.debs.length + inputs.hypervisor.length} Debian packages and Node ${inputs.node.version}, pinned by checksum`);
    const debs = new Map<string, string>();
    const files = await fetchDebs([...inputs.debs, ...inputs.hypervisor], join(o.cache, 'debs'));
    for (const [name, file] of files) {
      const dir = join(work, 'debs', name);
      mkdirSync(dir, { recursive: true });
      await runOk('dpkg-deb', ['-x', file, dir]);
      debs.set(name, dir);
    }
    const nodeTgz = await fetchNode(inputs.node, join(o.cache, 'npm'));
    const nodeDir = join(work, 'node');
    mkdirSync(nodeDir, { recursive: true });
    await runOk('tar', ['-xzf', nodeTgz, '-C', nodeDir, 'package/bin/node']);
    // Without its symbols and debug sections: a smaller initramfs to load from the stick and unpack.
    const nodeBin = join(nodeDir, 'node');
    await runOk('strip', ['--strip-all', '-o', nodeBin, join(nodeDir, 'package/bin/node')]);
    done();

    begin('kernel modules and firmware');
    const kernelDir = debs.get(`linux-image-${inputs.kernel.release}`);
    if (!kernelDir) throw new Sub0Error('invalid-input', `inputs.json names no linux-image-${inputs.kernel.release} package`);
    const mods = await selectModules(kernelDir, inputs.kernel.release, Object.values(MODULES).flat(), work);
    const firmware = await firmwareOf(mods.dir, inputs.kernel.release, mods.names, o.firmware);
    done(`${mods.count} modules; firmware ${firmware.carried.length} file(s) carried, ${Object.keys(firmware.missing).length} driver(s) without theirs`);

    begin('initramfs tree');
    const entries = initramfsEntries({ root, inputs, debs, nodeBin, modulesDir: mods.dir, firmware: firmware.carried, firmwareDir: o.firmware });
    done(`${entries.length} entries`);

    begin('initramfs: sorted cpio, zstd');
    const initrd = join(work, 'initrd.zst');
    await compress(cpioChunks(entries, inputs.sourceDateEpoch), initrd);
    done(`${(statSync(initrd).size / MiB).toFixed(1)} MiB`);

    begin('hypervisor partition (QEMU, squashfs)');
    const sys = join(work, 'sys.sqfs');
    await hypervisorImage(inputs, debs, work, sys);
    done(`${(statSync(sys).size / MiB).toFixed(1)} MiB`);

    begin('unified kernel image (EFI stub + kernel + initramfs + command line)');
    const uki = join(work, 'BOOTX64.EFI');
    await unifiedKernelImage({ stub: join(debs.get('systemd-boot-efi')!, 'usr/lib/systemd/boot/efi/linuxx64.efi.stub'), kernel: join(kernelDir, `boot/vmlinuz-${inputs.kernel.release}`), initrd, out: uki, work, epoch: inputs.sourceDateEpoch });
    done(`${(statSync(uki).size / MiB).toFixed(1)} MiB`);

    begin('EFI system partition (FAT)');
    const espMiB = Math.ceil((statSync(uki).size + 4 * MiB) / MiB);
    const esp = join(work, 'esp.img');
    await makeEsp(esp, espMiB, uki, o.network, inputs.sourceDateEpoch, work);
    done(`${espMiB} MiB`);

    begin('GPT disk image');
    const image = join(o.out, 'usb.img');
    await makeDisk(image, esp, espMiB, sys, inputs.sourceDateEpoch);
    done();

    begin('checksums');
    const sha256 = createHash('sha256').update(readFileSync(image)).digest('hex');
    writeFileSync(join(o.out, 'SHA256SUMS'), `${sha256}  usb.img\n`);
    done(sha256);
    return { image, sha256, bytes: statSync(image).size, uki: statSync(uki).size, initrd: statSync(initrd).size, sys: statSync(sys).size, modules: mods.count, firmwareMissing: firmware.missing, seconds: (performance.now() - t0) / 1000 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const norm = (m: string) => m.replace(/-/g, '_');

/** Copies `wanted` and their dependencies out of the kernel package into a tree of their own, with depmod's indexes. */
export async function selectModules(kernelDir: string, release: string, wanted: readonly string[], work: string): Promise<{ dir: string; names: string[]; count: number }> {
  const src = join(kernelDir, 'lib/modules', release);
  await runOk('depmod', ['-b', kernelDir, release]);
  const deps = new Map<string, { path: string; deps: string[] }>();
  for (const line of readFileSync(join(src, 'modules.dep'), 'utf8').split('\n')) {
    const [path, rest] = line.split(':');
    if (!path || rest === undefined) continue;
    deps.set(norm(basename(path, '.ko')), { path, deps: rest.trim() ? rest.trim().split(/\s+/) : [] });
  }
  const builtin = new Set(readFileSync(join(src, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map((p) => norm(basename(p, '.ko'))));
  const take = new Set<string>();
  for (const m of wanted) {
    const d = deps.get(norm(m));
    if (!d) {
      if (builtin.has(norm(m))) continue;
      throw new Sub0Error('invalid-input', `kernel ${release} has no module ${m}`);
    }
    take.add(d.path);
    for (const p of d.deps) take.add(p);
  }
  const dir = join(work, 'modroot');
  const dst = join(dir, 'lib/modules', release);
  for (const p of take) {
    mkdirSync(dirname(join(dst, p)), { recursive: true });
    copyFileSync(join(src, p), join(dst, p));
  }
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) copyFileSync(join(src, f), join(dst, f));
  await runOk('depmod', ['-b', dir, release]);
  return { dir, names: [...take].map((p) => norm(basename(p, '.ko'))), count: take.size };
}

/** The firmware files the carried modules name: those found in `extra` are carried, the rest reported per driver. */
async function firmwareOf(modroot: string, release: string, names: readonly string[], extra: string | undefined): Promise<{ carried: string[]; missing: Record<string, string[]> }> {
  const carried: string[] = [];
  const missing: Record<string, string[]> = {};
  for (const m of names) {
    const files = (await runOk('modinfo', ['-b', modroot, '-k', release, '-F', 'firmware', m])).split('\n').filter(Boolean);
    for (const f of files) {
      if (extra && existsSync(join(extra, f))) carried.push(f);
      else (missing[m] ??= []).push(f);
    }
  }
  return { carried: [...new Set(carried)].sort(), missing };
}

interface TreeInput {
  readonly root: string;
  readonly inputs: Inputs;
  readonly debs: ReadonlyMap<string, string>;
  readonly nodeBin: string;
  readonly modulesDir: string;
  readonly firmware: readonly string[];
  readonly firmwareDir: string | undefined;
}

/** The shared libraries Node, libbpf and koffi load, by soname, and the package that has each. */
const LIBS: readonly [string, string, string][] = [
  ['libc6', 'lib/x86_64-linux-gnu', 'libc.so.6'],
  ['libc6', 'lib/x86_64-linux-gnu', 'libm.so.6'],
  ['libc6', 'lib/x86_64-linux-gnu', 'libdl.so.2'],
  ['libc6', 'lib/x86_64-linux-gnu', 'libpthread.so.0'],
  ['libc6', 'lib/x86_64-linux-gnu', 'libresolv.so.2'],
  ['libc6', 'lib/x86_64-linux-gnu', 'libnss_dns.so.2'],
  ['libc6', 'lib/x86_64-linux-gnu', 'libnss_files.so.2'],
  ['libstdc++6', 'usr/lib/x86_64-linux-gnu', 'libstdc++.so.6'],
  ['libgcc-s1', 'lib/x86_64-linux-gnu', 'libgcc_s.so.1'],
  ['libbpf1', 'usr/lib/x86_64-linux-gnu', 'libbpf.so.1'],
  ['libelf1', 'usr/lib/x86_64-linux-gnu', 'libelf.so.1'],
  ['zlib1g', 'lib/x86_64-linux-gnu', 'libz.so.1'],
];

/** The native packages the agent bundle loads at run time, copied from node_modules as they are. */
const NATIVE_PACKAGES = ['koffi', '@koromix/koffi-linux-x64', 'netlink', 'node-gyp-build'];

function initramfsEntries(t: TreeInput): CpioEntry[] {
  const cpio = new CpioTree();
  const dir = (p: string) => cpio.dir(p);
  const file = (path: string, from: string, mode?: number) => cpio.file(path, from, mode);
  const text = (path: string, body: string, mode?: number) => cpio.text(path, body, mode);
  const tree = (into: string, from: string, keep?: (rel: string) => boolean) => cpio.tree(into, from, keep);
  const deb = (name: string) => {
    const d = t.debs.get(name);
    if (!d) throw new Sub0Error('invalid-input', `inputs.json names no ${name} package`);
    return d;
  };

  for (const d of ['dev', 'proc', 'sys', 'run', 'tmp', 'mnt', 'var/lib/sub0', 'etc']) dir(d);
  cpio.char('dev/console', 0o600, 5, 1);
  cpio.char('dev/null', 0o666, 1, 3);
  file('init', bootimagePath('init/init.sh'), 0o755);
  file('etc/sub0/udhcpc.sh', bootimagePath('init/udhcpc.sh'), 0o755);
  text('etc/sub0/image-version', `${IMAGE_VERSION} (Node ${t.inputs.node.version}, kernel ${t.inputs.kernel.release})\n`);
  text('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  text('etc/group', 'root:x:0:\n');
  text('etc/nsswitch.conf', 'hosts: files dns\n');
  text('etc/hosts', '127.0.0.1 localhost\n::1 localhost\n');
  file('bin/busybox', join(deb('busybox-static'), 'bin/busybox'), 0o755);
  cpio.symlink('bin/sh', 'busybox');
  file('usr/bin/node', t.nodeBin, 0o755);
  file('usr/bin/qemu-system-x86_64', bootimagePath('init/qemu-wrapper.sh'), 0o755);
  dir('opt/sub0/hv');
  file('usr/bin/wireguard-go', join(deb('wireguard-go'), 'usr/bin/wireguard-go'), 0o755);
  file('lib64/ld-linux-x86-64.so.2', join(deb('libc6'), 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'), 0o755);
  for (const [pkg, at, soname] of LIBS) file(join('lib/x86_64-linux-gnu', soname), join(deb(pkg), at, soname), 0o755);

  // The node program (agent inside), the eBPF object beside it, its native parts.
  file('opt/sub0/node.js', join(t.root, 'dist/image-node.js'), 0o755);
  file('opt/sub0/bpf/acl.bpf.o', join(t.root, 'dist/bpf/acl.bpf.o'), 0o644);
  text('opt/sub0/package.json', '{"type":"module"}\n');
  for (const p of NATIVE_PACKAGES) {
    const from = join(t.root, 'node_modules', p);
    if (!existsSync(from)) throw new Sub0Error('invalid-input', `node_modules/${p} is missing: run 'npm ci'`);
    // Only what runs: no C sources, docs or other architectures' prebuilds.
    tree(join('opt/sub0/node_modules', p), from, (rel) => !/(^|\/)(src\/.*\.(cc|hh|h|c|inc)|doc|vendor|musl_x64|prebuilds\/(?!linux-x64)[^/]+)(\/|$)/.test(rel) && !rel.endsWith('.md'));
  }

  tree('', t.modulesDir);
  for (const f of t.firmware) file(join('lib/firmware', f), join(t.firmwareDir!, f), 0o644);
  return cpio.entries;
}

/**
 * Streams the archive through zstd on every core: zstd's multi-threaded mode cuts the input into
 * jobs of a fixed size, so its output is the same bytes whatever the number of threads (checked:
 * -T1, -T2 and -T4 agree), on any machine.
 */
export function compress(chunks: readonly Buffer[], out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const z = spawn('zstd', ['-q', '-f', '-15', '-T0', '-o', out], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    z.stderr.on('data', (d: Buffer) => (err += d.toString()));
    z.on('error', (e) => reject(new Sub0Error('invalid-input', `cannot run zstd (Debian package zstd): ${e.message}`)));
    z.on('close', (code) => (code === 0 ? resolve() : reject(new Sub0Error('invalid-input', `zstd: ${err.trim() || `exit ${code}`}`))));
    z.stdin.on('error', () => undefined);
    (async () => {
      for (const c of chunks) if (!z.stdin.write(c)) await new Promise((r) => z.stdin.once('drain', r));
      z.stdin.end();
    })().catch(reject);
  });
}

async function unifiedKernelImage(o: { stub: string; kernel: string; initrd: string; out: string; work: string; epoch: number }): Promise<void> {
  const osrel = join(o.work, 'os-release');
  const cmdline = join(o.work, 'cmdline');
  writeFileSync(osrel, `NAME=sub0\nID=sub0\nPRETTY_NAME="sub0 node (${IMAGE_VERSION})"\nVERSION_ID=${IMAGE_VERSION}\n`);
  writeFileSync(cmdline, `${CMDLINE}\0`);
  // Section addresses above the stub's own; the kernel (~8 MiB) below the initramfs.
  const linuxSize = statSync(o.kernel).size;
  if (linuxSize >= 0x1000000) throw new Sub0Error('invalid-input', `the kernel (${linuxSize} bytes) does not fit below the initramfs section`);
  await runOk('objcopy', [
    '--add-section', `.osrel=${osrel}`, '--change-section-vma', '.osrel=0x20000',
    '--add-section', `.cmdline=${cmdline}`, '--change-section-vma', '.cmdline=0x30000',
    '--add-section', `.linux=${o.kernel}`, '--change-section-vma', '.linux=0x2000000',
    '--add-section', `.initrd=${o.initrd}`, '--change-section-vma', '.initrd=0x3000000',
    o.stub, o.out,
  ]);
  const pe = readFileSync(o.out);
  pinPeTimestamp(pe, o.epoch);
  writeFileSync(o.out, pe);
}

async function makeEsp(esp: string, mib: number, uki: string, network: string | undefined, epoch: number, work: string): Promise<void> {
  await runOk('mkfs.vfat', ['-C', '--invariant', '-i', '5e0b0001', '-n', 'SUB0', esp, String(mib * 1024)]);
  const when = new Date(epoch * 1000);
  const stage = join(work, 'esp');
  mkdirSync(join(stage, 'EFI/BOOT'), { recursive: true });
  mkdirSync(join(stage, 'sub0'), { recursive: true });
  copyFileSync(uki, join(stage, 'EFI/BOOT/BOOTX64.EFI'));
  writeFileSync(join(stage, 'sub0/README.txt'), 'sub0 boot stick: sub0/network.json holds this network\'s settings (sub0 image configure).\r\n');
  if (network) copyFileSync(network, join(stage, SETTINGS_PATH));
  for (const p of ['EFI/BOOT/BOOTX64.EFI', 'sub0/README.txt', ...(network ? [SETTINGS_PATH] : []), 'EFI/BOOT', 'EFI', 'sub0']) utimesSync(join(stage, p), when, when);
  // mcopy -s -m: the tree, keeping the (pinned) times; SOURCE_DATE_EPOCH for what it creates.
  await runOk('env', [`SOURCE_DATE_EPOCH=${epoch}`, 'mcopy', '-i', esp, '-s', '-m', '-Q', join(stage, 'EFI'), join(stage, 'sub0'), '::/']);
}

/** Writes the settings file into an image's ESP (at its GPT offset) without a rebuild. */
export async function writeSettings(image: string, settingsText: string, epoch: number): Promise<void> {
  const esp = await espOffset(image);
  const tmp = join(dirname(image), `.settings-${process.pid}.json`);
  writeFileSync(tmp, settingsText);
  utimesSync(tmp, new Date(epoch * 1000), new Date(epoch * 1000));
  try {
    await runOk('env', [`SOURCE_DATE_EPOCH=${epoch}`, 'mcopy', '-o', '-m', '-i', `${image}@@${esp}`, tmp, `::/${SETTINGS_PATH}`]);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The byte offset of the image's sub0-esp partition. */
export async function espOffset(image: string): Promise<number> {
  const dump = JSON.parse(await runOk('sfdisk', ['--json', image])) as { partitiontable: { sectorsize?: number; partitions: { start: number; name?: string }[] } };
  const p = dump.partitiontable.partitions.find((x) => x.name === 'sub0-esp');
  if (!p) throw new Sub0Error('invalid-input', `${image}: no sub0-esp partition (not a sub0 boot image?)`);
  return p.start * (dump.partitiontable.sectorsize ?? 512);
}

/** A new file of `bytes` zeros (sparse where the filesystem allows). */
function zeroFile(path: string, bytes: number): void {
  rmSync(path, { force: true });
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, Buffer.alloc(1), 0, 1, bytes - 1);
  } finally {
    closeSync(fd);
  }
}

/** QEMU's data files the slots use (x86 only): option ROMs, SeaBIOS for q35, qboot for microvm. */
const QEMU_DATA = ['kvmvapic.bin', 'linuxboot.bin', 'linuxboot_dma.bin', 'multiboot.bin', 'multiboot_dma.bin', 'pvh.bin', 'bios-microvm.bin', 'qboot.rom'];

/**
 * The sub0-sys partition: QEMU as Debian builds it, every shared library of the hypervisor
 * packages, its firmware; a squashfs (zstd) made reproducibly. /usr/bin/qemu-system-x86_64 in
 * the initramfs runs it from there (bootimage/init/qemu-wrapper.sh).
 */
async function hypervisorImage(inputs: Inputs, debs: ReadonlyMap<string, string>, work: string, out: string): Promise<void> {
  const root = join(work, 'sys');
  const deb = (name: string) => {
    const d = debs.get(name);
    if (!d) throw new Sub0Error('invalid-input', `inputs.json names no ${name} package`);
    return d;
  };
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'lib'), { recursive: true });
  mkdirSync(join(root, 'share/qemu'), { recursive: true });
  copyFileSync(join(deb('qemu-system-x86'), 'usr/bin/qemu-system-x86_64'), join(root, 'bin/qemu-system-x86_64'));
  for (const d of inputs.hypervisor) {
    for (const at of ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu']) {
      const from = join(deb(d.name), at);
      if (!existsSync(from)) continue;
      for (const f of readdirSync(from).sort()) {
        if (!/\.so(\.|$)/.test(f)) continue;
        const abs = join(from, f);
        const st = lstatSync(abs);
        if (st.isSymbolicLink()) symlinkSync(readlinkSync(abs), join(root, 'lib', f));
        else if (st.isFile()) copyFileSync(abs, join(root, 'lib', f));
      }
    }
  }
  for (const f of QEMU_DATA) copyFileSync(join(deb('qemu-system-data'), 'usr/share/qemu', f), join(root, 'share/qemu', f));
  const seabios = join(deb('seabios'), 'usr/share/seabios');
  for (const f of readdirSync(seabios).sort()) if (f.endsWith('.bin')) copyFileSync(join(seabios, f), join(root, 'share/qemu', f));
  await checkLinked(root, new Set(LIBS.map(([, , soname]) => soname)));
  await runOk('mksquashfs', [root, out, '-noappend', '-quiet', '-no-progress', '-comp', 'zstd', '-Xcompression-level', '15', '-all-root', '-no-xattrs', '-mkfs-time', String(inputs.sourceDateEpoch), '-all-time', String(inputs.sourceDateEpoch)]).catch((e: Error) => {
    throw new Sub0Error('invalid-input', `mksquashfs (Debian package squashfs-tools): ${e.message}`);
  });
}

/**
 * Every library QEMU and its libraries ask for (ELF NEEDED, read by readelf) is on the partition
 * or in the initramfs: a pinned QEMU that links one more library fails the build, naming it,
 * instead of failing on the node.
 */
async function checkLinked(root: string, initramfs: ReadonlySet<string>): Promise<void> {
  const have = new Set(readdirSync(join(root, 'lib')));
  const missing = new Map<string, string[]>();
  const elfs = [join(root, 'bin/qemu-system-x86_64'), ...[...have].filter((f) => !lstatSync(join(root, 'lib', f)).isSymbolicLink()).map((f) => join(root, 'lib', f))];
  for (const elf of elfs) {
    const dyn = await runOk('readelf', ['-d', '-W', elf]);
    for (const [, soname] of dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
      if (have.has(soname!) || initramfs.has(soname!) || soname === 'ld-linux-x86-64.so.2') continue;
      missing.set(soname!, [...(missing.get(soname!) ?? []), basename(elf)]);
    }
  }
  if (missing.size > 0) {
    const list = [...missing].map(([so, by]) => `${so} (needed by ${by.join(', ')})`).join('; ');
    throw new Sub0Error('invalid-input', `the hypervisor partition lacks ${list}: pin the Debian package that has each in bootimage/inputs.json ("hypervisor")`);
  }
}

async function makeDisk(image: string, esp: string, espMiB: number, sys: string, epoch: number): Promise<void> {
  const sysMiB = Math.ceil(statSync(sys).size / MiB);
  const totalMiB = 1 + espMiB + sysMiB + STATE_MIB + 1;
  zeroFile(image, totalMiB * MiB);
  const sectors = (mib: number) => (mib * MiB) / 512;
  const at = (mib: number) => 2048 + sectors(mib);
  const script = [
    'label: gpt',
    `label-id: ${DISK_GUID}`,
    'unit: sectors',
    'first-lba: 2048',
    `start=2048, size=${sectors(espMiB)}, type=${ESP_TYPE}, uuid=${ESP_GUID}, name="sub0-esp"`,
    `start=${at(espMiB)}, size=${sectors(sysMiB)}, type=${LINUX_TYPE}, uuid=${SYS_GUID}, name="sub0-sys", attrs="GUID:60"`,
    `start=${at(espMiB + sysMiB)}, size=${sectors(STATE_MIB)}, type=${LINUX_TYPE}, uuid=${STATE_GUID}, name="sub0-state"`,
    '',
  ].join('\n');
  await runOk('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', image], script);
  // The state partition: an ext4 with a journal (a stick loses power without warning), made
  // here with fixed ids and time so that it is part of the reproducible image.
  const state = `${esp}.state`;
  zeroFile(state, STATE_MIB * MiB);
  await runOk('env', [`E2FSPROGS_FAKE_TIME=${epoch}`, 'mke2fs', '-q', '-t', 'ext4', '-L', 'sub0-state', '-U', STATE_FS_UUID, '-E', `hash_seed=${STATE_FS_HASH_SEED},lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0`, state]);
  const out = openSync(image, 'r+');
  try {
    const data = readFileSync(esp);
    writeSync(out, data, 0, data.length, MiB);
    const sq = readFileSync(sys);
    writeSync(out, sq, 0, sq.length, (1 + espMiB) * MiB);
    const st = readFileSync(state);
    writeSync(out, st, 0, st.length, (1 + espMiB + sysMiB) * MiB);
  } finally {
    closeSync(out);
  }
  rmSync(state, { force: true });
}

export const IMAGE_FILES = { image: 'usb.img', sums: 'SHA256SUMS' } as const;
