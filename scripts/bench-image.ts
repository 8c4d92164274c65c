/**
 * bench:image — the boot image's three figures, each beside its baseline from the same run:
 *  - "clean build": `buildImage` into a fresh directory with an empty input cache (downloads
 *    included), target under 60 s on this 2-core machine;
 *  - "usb.img": the raw image's size and its zstd-compressed size, target under 100 MB raw;
 *  - "boot to joined, tcg": QEMU start to the node answering a lab node's ping over WireGuard,
 *    the image booted under OVMF as a USB stick on a lab's bridge, already registered on chain (a
 *    first, unmeasured boot makes its keys and is registered by its printed line); the baseline is QEMU start to the kernel's first console
 *    line in the same boot (firmware and kernel load), target joined within 20 s under TCG.
 * Prints a table, then one JSON line per figure.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildImage, writeSettings } from '../bootimage/build/build-image.js';
import { loadInputs } from '../bootimage/build/inputs.js';
import { bootImage, type BootedImage } from '../bootimage/boot/qemu-boot.js';
import { ControlLab } from '../lab/control-lab.js';
import { labImageSettings, labTap } from '../lab/image-lab.js';
import { ping } from '../lab/traffic.js';
import { compile } from '../fabric/compile.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 3);
async function until(f: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await f())) if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const say = (s: string) => process.stderr.write(`${s}\n`);

const dir = mkdtempSync(join(tmpdir(), 'sub0-bench-image-'));
const cleanup: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
const cleanUp = async () => {
  for (const c of cleanup.splice(0).reverse()) await Promise.resolve().then(c).catch(() => undefined);
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanUp().finally(() => process.exit(130)));
try {
  // 1. A clean build: nothing cached.
  // BENCH_IMAGE=usb.img skips the build (for the boot figure alone); the build figure is then absent.
  const given = process.env.BENCH_IMAGE;
  if (given) spawnSync('cp', [given, join(dir, 'usb.img')]);
  const build = given
    ? { image: join(dir, 'usb.img'), seconds: Number.NaN }
    : await buildImage({ out: join(dir, 'out'), cache: join(dir, 'cache'), progress: (l) => say(`  build ${l.trim()}`) });
  const image = build.image;
  const raw = statSync(image).size;
  const zst = join(dir, 'usb.img.zst');
  spawnSync('zstd', ['-q', '-19', '-T2', '-f', '-o', zst, image]);
  const compressed = statSync(zst).size;
  say(`clean build ${build.seconds.toFixed(1)} s; usb.img ${(raw / 1e6).toFixed(1)} MB, zstd -19 ${(compressed / 1e6).toFixed(1)} MB`);

  // 2. A lab, the image on its bridge, registered once its first boot printed its keys.
  const home = mkdtempSync(join(tmpdir(), 'sub0-bench-image-lab-'));
  // The gatekeeper would quarantine the node while it is powered off between boots: a long grace.
  const cl = await ControlLab.start({ home, log: pino({ level: 'error' }, pino.destination(2)), tag: 'bi', nodes: 2, broker: 'embedded', gatekeeper: { graceMs: 3_600_000 } });
  cleanup.push(async () => {
    await cl.destroy();
    rmSync(home, { recursive: true, force: true });
  });
  const tap = 's0bench0';
  cleanup.push(labTap(cl, tap));
  await writeSettings(image, `${JSON.stringify(labImageSettings(cl, 'img1', '10.77.0.201'))}\n`, loadInputs().sourceDateEpoch);
  const boot = () => bootImage({ image, tap: { ifname: tap, netns: cl.lab.bridgeNs } });
  let vm: BootedImage = boot();
  cleanup.push(() => vm.stop());
  const line = (await vm.waitFor(/^ {2}sub0 node register img1 /, 180_000)).trim();
  const reg = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, [join(import.meta.dirname, '../dist/sub0.js'), ...line.split(' ').slice(1), '--suri', '//Alice'], { stdio: 'ignore', env: { ...process.env, SUB0_HOME: cl.home } });
    p.on('close', resolve);
  });
  if (reg !== 0) throw new Error(`registering img1 failed (exit ${reg})`);
  await vm.waitFor(/config accepted/, 120_000);
  const head = await cl.client.finalizedHead();
  const configs = compile((await cl.registry.readSnapshot(head.hash)).snapshot).configs;
  const addr = (n: string) => configs.get(n)!.interface.addresses[0]!.split('/')[0]!;
  const [vmAddr, n1Addr] = [addr('img1'), addr('n1')];
  await until(() => ping(cl.lab, 'n1', n1Addr, vmAddr, 0.3), 120_000, 'img1 answering n1 over WireGuard after its registration');
  await vm.stop();
  say(`img1 registered (${vm.accel.toUpperCase()})`);

  // 3. Measured boots of the registered node.
  const trials: { kernel: number; ready: number; joined: number }[] = [];
  for (let k = 0; k < TRIALS; k++) {
    const t0 = performance.now();
    const at = new Map<string, number>();
    vm = bootImage({
      image,
      tap: { ifname: tap, netns: cl.lab.bridgeNs },
      onLine: (l) => {
        const now = performance.now() - t0;
        if (!at.has('kernel') && l.startsWith('EFI stub: ')) at.set('kernel', now); // the kernel's first words (its EFI stub; the console is quiet after)
        if (!at.has('ready') && l.startsWith('sub0: ready:')) at.set('ready', now);
        if (!at.has('running') && l.includes('agent running')) at.set('running', now);
      },
    });
    // Joined: a lab node's ping answered over WireGuard (the node re-applies its last accepted
    // config at boot and takes the broker's retained one: no new "config accepted" line).
    await until(() => ping(cl.lab, 'n1', n1Addr, vmAddr, 0.3), 180_000, `img1 answering n1 over WireGuard (boot ${k + 1})`).catch((e: Error) => {
      throw new Error(`${e.message}\nits console:\n${vm.lines.slice(-40).join('\n')}\nwg show on n1:\n${cl.lab.exec('n1', 'wg', ['show'])}`);
    });
    const joined = performance.now() - t0;
    await vm.stop();
    trials.push({ kernel: at.get('kernel')! / 1000, ready: at.get('ready')! / 1000, joined: joined / 1000 });
    say(`boot ${k + 1}: kernel's first line ${trials.at(-1)!.kernel.toFixed(1)} s, ready ${trials.at(-1)!.ready.toFixed(1)} s, agent running ${((at.get('running') ?? Number.NaN) / 1000).toFixed(1)} s, joined ${trials.at(-1)!.joined.toFixed(1)} s`);
  }
  const kernel = median(trials.map((x) => x.kernel));
  const joined = median(trials.map((x) => x.joined));
  const ready = median(trials.map((x) => x.ready));
  const accel = vm.accel;

  const rows = [
    ['case', 'value', 'baseline', 'ratio', 'target'],
    ['clean build (empty cache)', `${build.seconds.toFixed(1)} s`, '', '', `< 60 s: ${build.seconds < 60 ? 'met' : 'NOT met'}`],
    ['usb.img (raw / zstd -19)', `${(raw / 1e6).toFixed(1)} / ${(compressed / 1e6).toFixed(1)} MB`, '', '', `< 100 MB raw: ${raw < 100e6 ? 'met' : 'NOT met'}`],
    [`boot to joined, ${accel} (median of ${TRIALS})`, `${joined.toFixed(1)} s (ready ${ready.toFixed(1)} s)`, `kernel's first line ${kernel.toFixed(1)} s`, (joined / kernel).toFixed(2), `< 20 s: ${joined < 20 ? 'met' : 'NOT met'}`],
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
  if (!given) console.log(JSON.stringify({ bench: 'image', case: 'clean build', metric: 's', value: Number(build.seconds.toFixed(1)), cache: 'empty', target: 60 }));
  console.log(JSON.stringify({ bench: 'image', case: 'usb.img', metric: 'MB', value: Number((raw / 1e6).toFixed(1)), compressedMB: Number((compressed / 1e6).toFixed(1)), compression: 'zstd -19', target: 100 }));
  console.log(JSON.stringify({ bench: 'image', case: `boot to joined, ${accel}`, metric: 's', value: Number(joined.toFixed(1)), readyS: Number(ready.toFixed(1)), baseline: "kernel's first console line", baselineS: Number(kernel.toFixed(1)), ratio: Number((joined / kernel).toFixed(2)), trials: TRIALS, target: 20 }));
} finally {
  await cleanUp();
}
