/**
 * `sub0 image build|configure|boot`: the boot stick that turns a machine into a sub0 node
 * (bootimage/).
 */
import type { Command } from 'commander';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildImage, writeSettings } from '../bootimage/build/build-image.js';
import { loadInputs } from '../bootimage/build/inputs.js';
import { buildSlotImage } from '../bootimage/build/slot-image.js';
import { defaultImageCache } from '../bootimage/paths.js';
import { bootImage } from '../bootimage/boot/qemu-boot.js';
import { parseSettings } from '../bootimage/settings.js';
import { describe, listDisks, systemDisk, targetProblems, writeImage } from '../bootimage/flash/flash.js';
import { Sub0Error } from '../fabric/errors.js';
import { createInterface } from 'node:readline/promises';
import { action, printJson } from './output.js';

export function registerImage(program: Command): void {
  const image = program.command('image').description('build, configure and try the boot stick that turns a machine into a sub0 node');

  image
    .command('build')
    .description('build usb.img (raw GPT/EFI, for dd or any flasher) and SHA256SUMS, reproducibly, from pinned inputs')
    .option('--out <dir>', 'output directory', 'image')
    .option('--cache <dir>', 'where downloaded inputs are kept between builds (env SUB0_IMAGE_CACHE)')
    .option('--firmware <dir>', 'extra firmware, a /lib/firmware-shaped tree (Debian\'s non-free firmware is not taken)')
    .option('--network <file>', 'network settings to put on the stick (else: `sub0 image configure` later)')
    .option('--json', 'machine-readable result')
    .action(
      action(async (o: { out: string; cache?: string; firmware?: string; network?: string; json?: boolean }) => {
        if (o.network) parseSettings(readFileSync(o.network, 'utf8'), o.network);
        const r = await buildImage({
          out: resolve(o.out),
          cache: o.cache ?? defaultImageCache(),
          ...(o.firmware ? { firmware: resolve(o.firmware) } : {}),
          ...(o.network ? { network: resolve(o.network) } : {}),
          progress: (line) => process.stderr.write(`${line}\n`),
        });
        if (o.json) return printJson(r);
        const missing = Object.entries(r.firmwareMissing);
        process.stdout.write(
          `${r.image}: ${(r.bytes / 2 ** 20).toFixed(0)} MiB, sha256 ${r.sha256} (built in ${r.seconds.toFixed(1)} s)\n` +
            (missing.length ? `drivers carried without the firmware they may load (give --firmware DIR): ${missing.map(([m]) => m).join(', ')}\n` : '') +
            `next: sub0 image configure ${o.out}/usb.img --network FILE, then sub0 image boot --image ${o.out}/usb.img, or write it to a stick\n`,
        );
      }),
    );

  image
    .command('slot')
    .description('build the small test slot image (Debian kernel, busybox, a web page and a shell) that `sub0 lab up --vm-slots` boots')
    .option('--out <dir>', 'output directory', 'image')
    .option('--cache <dir>', 'where downloaded inputs are kept between builds (env SUB0_IMAGE_CACHE)')
    .action(
      action(async (o: { out: string; cache?: string }) => {
        const r = await buildSlotImage({ out: resolve(o.out), cache: o.cache ?? defaultImageCache() });
        process.stdout.write(`${r.file}: ${(r.bytes / 2 ** 20).toFixed(1)} MiB, ref ${r.ref}\nnext: sub0 slot image-add ${r.file} on each node, then sub0 slot define ... --image ${r.ref}\n`);
      }),
    );

  image
    .command('configure')
    .description("write the network settings (DVCI, brokers, controller keys, optional static address) onto an image's ESP, without a rebuild")
    .argument('<image>', 'usb.img, or a stick holding one (/dev/sdX)')
    .requiredOption('--network <file>', 'the settings, JSON (see the README)')
    .action(
      action(async (img: string, o: { network: string }) => {
        const text = readFileSync(o.network, 'utf8');
        const s = parseSettings(text, o.network);
        await writeSettings(img, `${JSON.stringify(s, null, 2)}\n`, loadInputs().sourceDateEpoch);
        process.stdout.write(`${img}: settings written (network ${s.network}, DVCI ${s.dvci}, ${s.brokers.length} broker(s), ${s.controllers.length} controller key(s))\n`);
      }),
    );

  image
    .command('flash')
    .description('write the image to a removable device: lists the candidates, confirms, writes with progress, reads back and compares')
    .option('--device <dev>', 'the device to erase, e.g. /dev/sdb (never chosen for you)')
    .option('--image <file>', 'the image', 'image/usb.img')
    .option('--yes', 'do not ask for confirmation')
    .option('--force', 'also accept a non-removable, mounted or system disk')
    .action(
      action(async (o: { device?: string; image: string; yes?: boolean; force?: boolean }) => {
        const disks = await listDisks();
        const removable = disks.filter((d) => d.removable && d.bytes > 0);
        if (!o.device) {
          const list = removable.length ? removable.map((d) => `  ${describe(d)}`).join('\n') : '  (none: plug a USB stick in)';
          throw new Sub0Error('invalid-input', `choose the device to erase with --device; removable devices now:\n${list}`);
        }
        const imageBytes = statSync(o.image).size;
        const path = realpathSync(o.device);
        const pick = () => disks.find((d) => d.path === path);
        const d = pick();
        if (!d) throw new Sub0Error('invalid-input', `${o.device} is not a whole disk (lsblk lists: ${disks.map((x) => x.path).join(', ')})`);
        const problems = targetProblems(d, imageBytes, await systemDisk(), o.force === true);
        if (problems.length) throw new Sub0Error('invalid-input', `refusing to write ${d.path}:\n  ${problems.join('\n  ')}`);
        process.stderr.write(`about to erase ${describe(d)}\nwith ${o.image} (${(imageBytes / 2 ** 20).toFixed(0)} MiB)\n`);
        if (!o.yes) {
          if (!process.stdin.isTTY) throw new Sub0Error('invalid-input', 'not a terminal: confirm with --yes');
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          const answer = await rl.question(`type ${d.path} to erase it: `);
          rl.close();
          if (answer.trim() !== d.path) throw new Sub0Error('invalid-input', 'not confirmed: nothing was written');
        }
        const same = async () => {
          const now = (await listDisks()).find((x) => x.path === path);
          const changed = !now || now.majMin !== d.majMin || now.bytes !== d.bytes || now.serial !== d.serial || now.model !== d.model;
          if (changed) throw new Sub0Error('invalid-input', `${d.path} is not the device you confirmed any more (${now ? describe(now) : 'gone'}): nothing was written`);
          if (!o.force && now.mounts.length) throw new Sub0Error('invalid-input', `${d.path} was mounted meanwhile (${now.mounts.join(', ')}): nothing was written`);
        };
        let shown = -1;
        const t0 = performance.now();
        const sha = await writeImage(o.image, d.path, same, (done, total) => {
          const pct = Math.floor((100 * done) / total);
          if (pct === shown) return;
          shown = pct;
          const mbs = done / 2 ** 20 / Math.max(0.001, (performance.now() - t0) / 1000);
          process.stderr.write(`\rwriting ${pct}% (${(done / 2 ** 20).toFixed(0)} MiB, ${mbs.toFixed(1)} MiB/s)`);
        });
        process.stderr.write('\n');
        process.stdout.write(`${d.path}: written, synced, read back: sha256 ${sha}\n`);
      }),
    );

  image
    .command('boot')
    .description('boot an image in QEMU as a machine boots the stick (UEFI, USB); its serial console here. Ctrl-A X quits')
    .option('--image <file>', 'the image (its state partition keeps the node\'s keys between boots)', 'image/usb.img')
    .option('--tap <name>', 'a tap device for the node\'s network instead of QEMU\'s restricted user network')
    .option('--netns <name>', 'create the tap device in this network namespace')
    .option('--memory <MiB>', 'guest memory', '1024')
    .action(
      action(async (o: { image: string; tap?: string; netns?: string; memory: string }) => {
        const b = bootImage({ image: resolve(o.image), memoryMiB: Number(o.memory), interactive: true, ...(o.tap ? { tap: { ifname: o.tap, ...(o.netns ? { netns: o.netns } : {}) } } : {}) });
        process.stderr.write(`booting ${o.image} under ${b.accel.toUpperCase()}\n`);
        const code = await b.exited;
        process.exitCode = code ?? 1;
      }),
    );
}
