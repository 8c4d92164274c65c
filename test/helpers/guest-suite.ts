/**
 * Runs one of the project's test files inside a QEMU guest booted from a built usb.img: the
 * image's own kernel (its modules: wireguard among them), its Node and native parts, with the
 * test bundled by esbuild and a test /init laid over the image's initramfs (a second cpio archive
 * appended to it: the kernel unpacks both, the later entries win). The guest has `wg` and `ip`
 * from this machine's Debian packages, for the suites that check from the outside.
 * Resolves with the test's TAP output and its exit code, read from the serial console.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { bootImage, type BootedImage } from '../../bootimage/boot/qemu-boot.js';
import { cpioChunks, type CpioEntry } from '../../bootimage/build/cpio.js';

export interface GuestRun {
  readonly exitCode: number;
  /** The test's output lines (its TAP stream). */
  readonly tap: readonly string[];
  readonly guest: BootedImage;
}

const ESP_OFFSET = 2048 * 512;
const DONE = /^sub0-guest: exit (\d+)$/;
const START = 'sub0-guest: running the test';

/** The guest's /init: the image's modules and Node, this test instead of the node program. */
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin:/usr/bin
mkdir -p /proc /sys /dev /run /tmp /var
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
ln -sfn /run /var/run
modprobe -q -a wireguard tun sch_ingress cls_bpf veth 2>/dev/null
ip link set lo up
echo "${START}"
# The same time budget as the project's tap runner (package.json): emulation is slow.
cd /opt/sub0 && TAP_TIMEOUT=600 node /opt/sub0/guest-test.mjs 2>&1
echo "sub0-guest: exit $?"
poweroff -f
`;

/** Shared libraries of `bin` (resolved here by ldd) that the image does not carry itself. */
function librariesOf(bin: string, have: ReadonlySet<string>): string[] {
  const out = execFileSync('ldd', [bin], { encoding: 'utf8' });
  return [...out.matchAll(/=> (\/\S+)/g)].map((m) => m[1]!).filter((l) => !have.has(basename(l)));
}

/**
 * tap's tcompare loads react-element-to-jsx-string through a createRequire of its own, which a
 * bundler cannot follow: the same module, as an import esbuild bundles.
 */
const bundleTcompareRequire: Plugin = {
  name: 'tcompare-require',
  setup(b) {
    b.onLoad({ filter: /tcompare[\\/]dist[\\/]esm[\\/]react-element-to-jsx-string\.js$/ }, () => ({
      contents: "import r from 'react-element-to-jsx-string'; export default r.default ?? r;",
      resolveDir: process.cwd(),
      loader: 'js',
    }));
  },
};

export async function runTestInGuest(o: { image: string; testFile: string; work: string; timeoutMs: number; onLine?: (l: string) => void }): Promise<GuestRun> {
  const uki = join(o.work, 'uki.efi');
  const mc = spawnSync('mcopy', ['-o', '-i', `${o.image}@@${ESP_OFFSET}`, '::/EFI/BOOT/BOOTX64.EFI', uki]);
  if (mc.status !== 0) throw new Error(`cannot read the unified kernel image from ${o.image}: ${mc.stderr}`);
  const kernel = join(o.work, 'linux');
  const base = join(o.work, 'initrd.zst');
  execFileSync('objcopy', ['-O', 'binary', '--only-section=.linux', uki, kernel]);
  execFileSync('objcopy', ['-O', 'binary', '--only-section=.initrd', uki, base]);
  const listing = execFileSync('sh', ['-c', `zstd -dc '${base}' | cpio -t --quiet`], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const imageLibs = new Set(listing.split('\n').filter((p) => p.startsWith('lib/x86_64-linux-gnu/')).map((p) => basename(p)));

  const bundle = await build({
    entryPoints: [o.testFile],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    write: false,
    // The image carries these beside its node program, in /opt/sub0/node_modules.
    external: ['koffi', 'netlink'],
    banner: { js: "import { createRequire as __sub0Require } from 'node:module'; const require = __sub0Require(import.meta.url);" },
    logLevel: 'error',
    plugins: [bundleTcompareRequire],
  });
  const file = (path: string, data: Uint8Array, mode = 0o755): CpioEntry => ({ path, type: 'file', mode, data });
  const tools = ['/usr/bin/wg', '/bin/ip'];
  const libs = [...new Set(tools.flatMap((t) => librariesOf(t, imageLibs)))];
  const entries: CpioEntry[] = [
    file('init', Buffer.from(INIT)),
    // The kernel's unpacker makes no parent directories: every new one is an entry.
    { path: 'usr/local', type: 'dir' },
    { path: 'usr/local/bin', type: 'dir' },
    file('opt/sub0/guest-test.mjs', bundle.outputFiles[0]!.contents, 0o644),
    ...tools.map((t) => file(`usr/local/bin/${basename(t)}`, readFileSync(t))),
    ...libs.map((l) => file(`lib/x86_64-linux-gnu/${basename(l)}`, readFileSync(l), 0o644)),
  ];
  // The appended archive starts on a 4-byte boundary (the kernel skips the zero padding).
  const first = readFileSync(base);
  const pad = Buffer.alloc((4 - (first.length % 4)) % 4);
  const initrd = join(o.work, 'initrd-guest');
  writeFileSync(initrd, Buffer.concat([first, pad, ...cpioChunks(entries, 0)]));

  const guest = bootImage({
    image: o.image,
    noNetwork: true,
    direct: { kernel, initrd, append: 'console=ttyS0,115200 loglevel=4 panic=-1' },
    onLine: o.onLine,
  });
  try {
    await guest.waitFor(new RegExp(`^${START}$`), o.timeoutMs);
    const done = await guest.waitFor(DONE, o.timeoutMs);
    const from = guest.lines.indexOf(START) + 1;
    const to = guest.lines.findIndex((l) => DONE.test(l));
    return { exitCode: Number(DONE.exec(done)![1]), tap: guest.lines.slice(from, to), guest };
  } finally {
    await guest.stop();
  }
}
