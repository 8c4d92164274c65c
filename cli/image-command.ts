/**
 * `sub0 image build|configure|boot`: the boot stick that turns a machine into a sub0 node
 * (bootimage/).
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildImage, writeSettings } from '../bootimage/build/build-image.js';
import { loadInputs } from '../bootimage/build/inputs.js';
import { bootImage } from '../bootimage/boot/qemu-boot.js';
import { parseSettings } from '../bootimage/settings.js';
import { action, printJson } from './output.js';

const defaultCache = () => process.env.SUB0_IMAGE_CACHE ?? (process.getuid?.() === 0 ? '/var/cache/sub0/image' : join(homedir(), '.cache/sub0/image'));

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
          cache: o.cache ?? defaultCache(),
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
