/**
 * The boot image end to end, through the CLI users run (dist/sub0.js): two builds give the same
 * bytes; `image configure` rewrites the settings in place (read back with mtools, from outside)
 * and refuses bad ones; the raw image boots under OVMF as a USB stick (QEMU, TCG here); a stick
 * without settings says so on its console and keeps retrying; configured, the node makes its keys,
 * prints its registration line and runs the agent on the kernel's WireGuard (genetlink); powered
 * off without warning and booted again, it keeps its identity (the state partition's journal).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { bootImage, type BootedImage } from '../../bootimage/boot/qemu-boot.js';
import { compile } from '../../fabric/compile.js';
import { labImageSettings, labTap } from '../../lab/image-lab.js';
import { ping } from '../../lab/traffic.js';
import { useControlLab } from '../helpers/control-lab.js';
import { runTestInGuest } from '../helpers/guest-suite.js';
import { until } from '../helpers/until.js';

const SUB0 = new URL('../../dist/sub0.js', import.meta.url).pathname;
const KEY = 'ffe0d4294bd442407f0c2cdc3f8c9c3519b26cfea44b967422b46cca6171ab3c';
const dir = mkdtempSync(join(tmpdir(), 'sub0-image-test-'));
const booted = new Set<BootedImage>();
t.teardown(async () => {
  for (const b of booted) await b.stop();
  rmSync(dir, { recursive: true, force: true });
});

function sub0(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [SUB0, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const image = join(dir, 'a/usb.img');

t.test('two builds give the same image, with its checksum, its three partitions, under 100 MB', async (t) => {
  const a = await sub0(['image', 'build', '--out', join(dir, 'a'), '--json']);
  t.equal(a.code, 0, a.stderr);
  t.match(a.stderr, /\[1\/9\] inputs:.*\n[\s\S]*\[9\/9\] checksums/, 'the build shows its progress, step by step');
  const b = await sub0(['image', 'build', '--out', join(dir, 'b'), '--json']);
  t.equal(b.code, 0, b.stderr);
  const ra = JSON.parse(a.stdout) as { sha256: string; bytes: number };
  t.equal(sha(image), ra.sha256, 'the reported sha256 is the file\'s');
  t.equal(sha(join(dir, 'b/usb.img')), ra.sha256, 'bit-identical builds');
  t.equal(readFileSync(join(dir, 'a/SHA256SUMS'), 'utf8'), `${ra.sha256}  usb.img\n`);
  t.ok(statSync(image).size < 100 * 2 ** 20, `usb.img is ${(statSync(image).size / 2 ** 20).toFixed(0)} MiB`);
  const parts = JSON.parse(spawnSync('sfdisk', ['--json', image]).stdout.toString()).partitiontable;
  t.equal(parts.label, 'gpt');
  t.same(parts.partitions.map((p: { name: string }) => p.name), ['sub0-esp', 'sub0-sys', 'sub0-state']);
  // The hypervisor partition, read from outside: QEMU, the libraries it links, its firmware.
  const sys = parts.partitions[1] as { start: number; size: number };
  const sqfs = join(dir, 'sys.sqfs');
  spawnSync('dd', [`if=${image}`, `of=${sqfs}`, 'bs=512', `skip=${sys.start}`, `count=${sys.size}`, 'status=none']);
  const listing = spawnSync('unsquashfs', ['-l', sqfs]).stdout.toString();
  for (const f of ['bin/qemu-system-x86_64', 'lib/libglib-2.0.so.0', 'lib/libseccomp.so.2', 'share/qemu/bios-256k.bin', 'share/qemu/qboot.rom']) t.match(listing, new RegExp(`squashfs-root/${f.replace(/\./g, '\\.')}\n`), `sub0-sys holds ${f}`);
  rmSync(sqfs);
  rmSync(join(dir, 'b'), { recursive: true, force: true });
});

t.test('a stick without settings says so on its console and keeps retrying', async (t) => {
  const b = bootImage({ image });
  booted.add(b);
  await b.waitFor(/^sub0: booting sub0-image/, 120_000);
  t.pass(`booted under ${b.accel.toUpperCase()} from OVMF, as a USB stick`);
  t.match(await b.waitFor(/^sub0: .*cannot read the settings/, 60_000), /sub0 image configure/, 'the console says what to do');
  await b.waitFor(/^sub0: retrying in/, 30_000);
  await b.stop();
  booted.delete(b);
});

t.test('configure writes the settings in place and refuses bad ones', async (t) => {
  const before = sha(image);
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ network: 'lab', dvci: 'lyon', brokers: ['mqtt://10.0.2.2:1883'], controllers: [`${'00'.repeat(31)}01`] }));
  const bad = await sub0(['image', 'configure', image, '--network', join(dir, 'bad.json')]);
  t.equal(bad.code, 2, 'refused as invalid input');
  t.match(bad.stderr, /controllers\.0: is not an ed25519 public key/);
  t.equal(sha(image), before, 'the image is untouched');

  const settings = { network: 'lab', dvci: 'lyon', brokers: ['mqtt://10.0.2.2:1883'], controllers: [KEY] };
  writeFileSync(join(dir, 'net.json'), JSON.stringify(settings));
  const ok = await sub0(['image', 'configure', image, '--network', join(dir, 'net.json')]);
  t.equal(ok.code, 0, ok.stderr);
  const offset = 2048 * 512;
  const back = spawnSync('mcopy', ['-i', `${image}@@${offset}`, '::/sub0/network.json', '-']);
  t.equal(back.status, 0, String(back.stderr));
  t.same(JSON.parse(back.stdout.toString()), { ...settings, listenPort: 51820 }, 'mtools reads the settings back from the ESP');
});

t.test('configured, the node makes its keys, asks to be registered and runs the agent on kernel WireGuard; a reboot keeps its identity', async (t) => {
  const first = bootImage({ image });
  booted.add(first);
  const network = await first.waitFor(/^sub0: network: .* \(DHCP\)/, 180_000);
  t.match(network, /10\.0\.2\.15\/24 on eth0/, 'a DHCP lease on the virtio NIC, whose driver came from its modalias');
  t.match(await first.waitFor(/^sub0: (new keys|keys loaded)/, 60_000), /new keys made/);
  const identity = (await first.waitFor(/^sub0: identity key [0-9a-f]{64}$/, 10_000)).split(' ').at(-1)!;
  const line = await first.waitFor(/^ {2}sub0 node register /, 10_000);
  t.equal(line.trim().split(' --identity ')[1]?.split(' ')[0], identity, 'the registration line carries the identity key');
  t.match(line, new RegExp(`^ {2}sub0 node register node-${identity.slice(0, 8)} --dvci lyon --key [A-Za-z0-9+/]{43}= --identity ${identity} --addr 10\\.0\\.2\\.15:51820$`));
  t.ok(await first.waitFor(/^[█▀▄ ]{20,}$/, 10_000), 'and its QR code');
  await first.waitFor(/^sub0: ready: waiting to be admitted by mqtt:\/\/10\.0\.2\.2:1883/, 10_000);
  t.match(await first.waitFor(/WireGuard backend:/, 60_000), /kernel \(generic netlink\)/, 'the kernel WireGuard backend, live');
  t.match(await first.waitFor(/^sub0: hypervisor: /, 120_000), /QEMU emulator version 7\.2\.\d+ .*; (KVM available|no KVM on this machine: slots run emulated \(TCG\))$/, 'QEMU starts from the stick\'s hypervisor partition');
  await first.stop();
  booted.delete(first);

  const second = bootImage({ image });
  booted.add(second);
  t.match(await second.waitFor(/^sub0: (new keys|keys loaded)/, 180_000), /keys loaded/, 'the keys come back from the stick');
  t.equal((await second.waitFor(/^sub0: identity key /, 10_000)).split(' ').at(-1), identity, 'the same identity after a reboot');
  const trouble = /does not mount|no filesystem on the state partition|cannot make the state partition/;
  t.notOk([...first.lines, ...second.lines].some((l) => trouble.test(l)), 'the state partition (an ext4 with a journal, made at build) mounted each time, after a power cut too');
  await second.stop();
  booted.delete(second);
});

t.test('bridged into a lab by a tap: refused while not registered, then registered on chain, it joins and answers over WireGuard', async (t) => {
  const cl = await useControlLab(t, { nodes: 2, broker: 'embedded' });
  const tap = 's0img0';
  t.teardown(labTap(cl, tap));
  // The lab's underlay has no DHCP server: a static address from the settings.
  const settings = labImageSettings(cl, 'img1', '10.77.0.200');
  writeFileSync(join(dir, 'lab.json'), JSON.stringify(settings));
  const conf = await sub0(['image', 'configure', image, '--network', join(dir, 'lab.json')]);
  t.equal(conf.code, 0, conf.stderr);

  const vm = bootImage({ image, tap: { ifname: tap, netns: cl.lab.bridgeNs } });
  booted.add(vm);
  t.match(await vm.waitFor(/^sub0: network: /, 180_000), /10\.77\.0\.200\/24 on eth0 \(static\)/);
  const line = (await vm.waitFor(/^ {2}sub0 node register img1 /, 60_000)).trim();
  await vm.waitFor(/the broker refused the login/, 60_000);
  t.pass('the broker refuses the node while the chain does not know it');

  // The operator runs the printed line, with the address peers reach it at and a signer.
  const reg = await sub0([...line.split(' ').slice(1), '--suri', '//Alice'], { ...process.env, SUB0_HOME: cl.home });
  t.equal(reg.code, 0, `${reg.stdout}${reg.stderr}`);
  await vm.waitFor(/applied|reconciled|config accepted/i, 120_000);

  const head = await cl.client.finalizedHead();
  const configs = compile((await cl.registry.readSnapshot(head.hash)).snapshot).configs;
  const vmAddr = configs.get('img1')!.interface.addresses[0]!.split('/')[0]!;
  const n1Addr = configs.get('n1')!.interface.addresses[0]!.split('/')[0]!;
  t.ok(configs.get('n1')!.peers.some((p) => p.node === 'img1'), 'the lab nodes have it as a peer');
  try {
    await until(`n1 (${n1Addr}) reaches img1 (${vmAddr}) over WireGuard`, () => ping(cl.lab, 'n1', n1Addr, vmAddr), 90_000);
  } catch (e) {
    t.comment(`the booted node's console:\n${vm.lines.slice(-60).join('\n')}\n\nwg show on n1:\n${cl.lab.exec('n1', 'wg', ['show'])}`);
    throw e;
  }
  const wg = cl.lab.exec('n1', 'wg', ['show', cl.lab.node('n1').ifname, 'latest-handshakes']);
  const vmKey = line.split(' --key ')[1]!.split(' ')[0]!;
  t.match(wg, new RegExp(`${vmKey.replace(/[+/=]/g, (c) => `\\${c}`)}\\t[1-9]`), 'wg show on n1: a completed handshake with the booted node');
  await vm.stop();
  booted.delete(vm);
});

t.test('inside the image, the kernel WireGuard backend passes the shared backend suite (the one wireguard-go passes)', async (t) => {
  const work = mkdtempSync(join(dir, 'guest-'));
  const run = await runTestInGuest({ image, testFile: new URL('../overlay/wireguard/kernel-backend.test.ts', import.meta.url).pathname, work, timeoutMs: 300_000 });
  const tap = run.tap.join('\n');
  t.equal(run.exitCode, 0, 'the suite exits 0 in the guest');
  t.notMatch(tap, /^\s*not ok /m, 'no failure');
  t.notMatch(tap, /# SKIP/, 'nothing skipped: the guest kernel has the wireguard family');
  const summary = /^# \{ total: (\d+), pass: (\d+) \}$/m.exec(tap);
  t.ok(summary, 'the suite ran to its summary');
  t.equal(summary?.[2], summary?.[1], `every test passed (${summary?.[2]} of ${summary?.[1]})`);
  t.ok(Number(summary?.[1]) >= 5, 'the whole suite ran');
  t.comment(tap);
});
