/**
 * A slot's VM, for real: the test slot image (bootimage/build/slot-image.ts: Debian's kernel and a
 * busybox initramfs) taken by the node's image store by its content, booted by QEMU (q35, TCG
 * here) on a tap the agent made, in a namespace of the test's own. From outside: ping and TCP to
 * the slot's address over its tap; a VM killed is seen ending, and its disk keeps what the guest
 * wrote (its boot counter) into the next boot; an agent restarted finds the VM again.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildSlotImage } from '../../../bootimage/build/slot-image.js';
import { imageRef } from '../../../fabric/slot-image-ref.js';
import { ImageStore } from '../../../overlay/slots/image-store.js';
import { slotMac, slotTap } from '../../../overlay/slots/qemu-args.js';
import { SlotVm, slotFiles } from '../../../overlay/slots/slot-vm.js';
import { unwireSlot, wireSlot } from '../../../overlay/slots/slot-net.js';
import { detectCgroups, ensureSlotCgroup, limitFiles, removeSlotCgroup, slotLimits } from '../../../overlay/slots/slot-cgroup.js';
import { ensureJailRoot, slotUid } from '../../../overlay/slots/slot-jail.js';
import { useOwnNetns } from '../../helpers/netns-lab.js';

const dir = mkdtempSync(join(tmpdir(), 'sub0-slot-test-'));
const vms = new Set<SlotVm>();
t.teardown(async () => {
  for (const vm of vms) await vm.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});
await useOwnNetns(t, 'slot');

const image = await buildSlotImage({ out: join(dir, 'image'), cache: process.env.SUB0_IMAGE_CACHE ?? '/var/cache/sub0/image' });
const store = new ImageStore(join(dir, 'store'));

/** The node's ICMP echo requests received (its namespace's /proc/net/snmp, read from outside the slot). */
function inEchos(): number {
  const lines = readFileSync('/proc/thread-self/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Icmp:'));
  const [names, values] = lines.map((l) => l.split(/\s+/).slice(1));
  return Number(values![names!.indexOf('InEchos')]);
}

/** The same for ICMPv6 (/proc/net/snmp6). */
function inEchos6(): number {
  const line = readFileSync('/proc/thread-self/net/snmp6', 'utf8').split('\n').find((l) => l.startsWith('Icmp6InEchos '));
  return Number(line!.split(/\s+/)[1]);
}

/** Packets the slot guard dropped on `tap`, from nftables' own counters. */
function guardDrops(tap: string): number {
  const out = execFileSync('nft', ['list', 'chain', 'inet', 'sub0_slots', `g_${tap}`], { encoding: 'utf8' });
  return [...out.matchAll(/counter packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
}

function httpGet(host: string, port: number, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, timeout: 10_000 }, () => s.end(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
    let body = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (body += d));
    s.on('end', () => resolve(body));
    s.on('timeout', () => s.destroy(new Error('timeout')));
    s.on('error', reject);
  });
}

t.test('the image store takes an image by its content and refuses anything else', async (t) => {
  const ref = await store.add(image.file);
  t.equal(ref, image.ref, 'the ref is the sha256 of the file');
  t.match(ref, /^sha256-[A-Za-z0-9_-]{43}$/);
  const files = await store.boot(ref);
  t.match(files.kernel, /vmlinuz$/);
  await t.rejects(store.boot('debian-12'), { code: 'invalid-input', message: /not a content reference/ });
  await t.rejects(store.boot(imageRef('00'.repeat(32))), { code: 'not-found' });
  // Bytes that do not hash to the name: refused, whatever the file is called.
  const bogus = join(dir, 'bogus.tar');
  writeFileSync(bogus, 'not the image');
  const other = await store.add(bogus);
  const hex = Buffer.from(other.slice(7), 'base64url').toString('hex');
  writeFileSync(join(store.dir, hex), 'changed after it was added');
  await t.rejects(store.boot(other), { code: 'invalid-input', message: /hashes to sha256 [0-9a-f]{64}, not the [0-9a-f]{64} the chain names; refused/ });
});

t.test('a slot VM boots on its tap, answers on its address, keeps its disk across a crash, and is found again after an agent restart', async (t) => {
  const id = 'slot-a';
  const ipv4 = '100.64.7.10/32';
  const ipv6 = 'fd00:7::10/128';
  const tap = slotTap(id);
  t.teardown(() => unwireSlot(tap));
  await wireSlot(tap, slotMac(id), ipv4, ipv6);
  const { kernel, initrd } = await store.boot(image.ref);
  const files = slotFiles(join(dir, 'slots'), id);
  const spec = { id, vcpus: 1, memoryMiB: 128, kernel, initrd, tap, ipv4, ipv6, accel: 'tcg' as const };

  let vm = await SlotVm.start(spec, files, 1);
  vms.add(vm);
  t.match(await vm.waitConsole(/^sub0-slot: boot \d+/, 120_000), /boot 1$/, 'first boot on a fresh disk');
  await vm.waitConsole(/^sub0-slot: up /, 60_000);
  t.equal(await vm.state(), 'running', 'QMP: running');
  execFileSync('ping', ['-c', '1', '-W', '5', '100.64.7.10']);
  t.pass('ping over the tap, to the slot\'s IPv4');
  execFileSync('ping', ['-6', '-c', '1', '-W', '5', 'fd00:7::10']);
  t.pass('and to its IPv6');
  t.match(await httpGet('100.64.7.10', 8080), /slot slot-a/, 'TCP to its port 8080');
  // From inside the slot (its probe page): its gateway answers. The same ping from another
  // slot's address (routed elsewhere on this node) never reaches the node's ICMP layer: the
  // strict reverse-path filter on the tap drops it (the node's own counter, read from outside).
  const spoofed = '100.64.7.99';
  execFileSync('ip', ['link', 'add', 's0vother', 'type', 'veth', 'peer', 'name', 's0vother2']);
  execFileSync('ip', ['link', 'set', 's0vother', 'up']);
  execFileSync('ip', ['route', 'add', `${spoofed}/32`, 'dev', 's0vother']);
  t.teardown(() => void spawnSync('ip', ['link', 'del', 's0vother']));
  const echos0 = inEchos();
  t.match(await httpGet('100.64.7.10', 8080, '/cgi-bin/probe?proto=icmp&dst=169.254.0.1'), /\nok\n?$/, 'the slot reaches its gateway');
  t.equal(inEchos(), echos0 + 1, 'the node counted that echo request');
  await httpGet('100.64.7.10', 8080, `/cgi-bin/probe?proto=icmp&dst=169.254.0.1&src=${spoofed}`);
  t.equal(inEchos(), echos0 + 1, 'a request from a spoofed source (another slot\'s address) is dropped before it');
  // IPv6 has no reverse-path filter: the slot guard (nftables) pins the source.
  const spoofed6 = 'fd00:7::99';
  execFileSync('ip', ['-6', 'route', 'add', `${spoofed6}/128`, 'dev', 's0vother']);
  execFileSync('ip', ['-6', 'addr', 'add', 'fd00:7::1/128', 'dev', 'lo']);
  const probe6 = (extra: string) => httpGet('100.64.7.10', 8080, `/cgi-bin/probe?proto=icmp&dst=fd00%3A7%3A%3A1${extra}`);
  const e6 = inEchos6();
  t.match(await probe6(''), /\nok\n?$/, 'the slot reaches the node over IPv6 from its own address');
  t.equal(inEchos6(), e6 + 1, 'the node counted that ICMPv6 echo request');
  const drops0 = guardDrops(tap);
  t.match(await probe6(`&src=${spoofed6.replace(/:/g, '%3A')}`), /\nfail\n?$/, 'from a spoofed IPv6 source: no answer');
  t.equal(inEchos6(), e6 + 1, 'the spoofed ICMPv6 request never reached the node');
  t.ok(guardDrops(tap) > drops0, 'the slot guard counted the drop');
  // A MAC other than the slot's own: dropped too, whatever its addresses.
  t.match(await httpGet('100.64.7.10', 8080, '/cgi-bin/probe?proto=icmp&dst=169.254.0.1&mac=02%3A00%3A00%3A00%3A00%3A01'), /\nfail\n?$/, 'a frame from another MAC: no answer');
  t.equal(inEchos(), echos0 + 1, 'it never reached the node');
  t.match(await httpGet('100.64.7.10', 8080, '/cgi-bin/probe?proto=icmp&dst=169.254.0.1'), /\nok\n?$/, 'back on its own MAC, the slot reaches its gateway again');

  const ended = new Promise<string>((resolve) => (vm.onExit = resolve));
  process.kill(vm.pid, 'SIGKILL');
  t.match(await ended, /QEMU ended/, 'a killed VM is seen ending (its QMP socket closes)');
  vms.delete(vm);

  vm = await SlotVm.start(spec, files, 1);
  vms.add(vm);
  t.match(await vm.waitConsole(/^sub0-slot: boot \d+/, 120_000), /boot 2$/, 'the disk kept what the guest wrote');
  await vm.waitConsole(/^sub0-slot: up /, 60_000);

  // The agent goes away, the VM stays; a new agent finds it by its pid file and QMP socket.
  vm.detach();
  vms.delete(vm);
  const again = await SlotVm.adopt(files);
  t.ok(again, 'adopted');
  vms.add(again!);
  t.equal(again!.pid, vm.pid, 'the same QEMU');
  t.equal(await again!.state(), 'running');
  await again!.stop();
  vms.delete(again!);
  t.equal(await SlotVm.adopt(files), undefined, 'stopped: nothing to adopt');
});

t.test('a confined slot VM: its own user, an empty root, namespaces and cgroup limits of its own; escapes through QEMU fail', async (t) => {
  const id = 'slot-j';
  const ipv4 = '100.64.7.20/32';
  const tap = slotTap(id);
  t.teardown(() => unwireSlot(tap));
  await wireSlot(tap, slotMac(id), ipv4, 'fd00:7::20/128');
  const { kernel, initrd } = await store.boot(image.ref);
  const slots = join(dir, 'slots');
  const files = slotFiles(slots, id);
  const layout = detectCgroups();
  t.ok(layout, `cgroup controllers found (${layout ? `v${layout.version}` : 'none'})`);
  const limits = slotLimits(1, 128, 'tcg');
  const jail = { uid: slotUid(slots, id), root: ensureJailRoot(files.dir), procs: ensureSlotCgroup(layout, id, limits) };
  t.teardown(() => removeSlotCgroup(layout, id));
  t.ok(jail.uid >= 640_000, 'a uid of its own');
  t.equal(slotUid(slots, id), jail.uid, 'kept for the slot');
  t.not(slotUid(slots, 'slot-k'), jail.uid, 'another slot gets another');

  const vm = await SlotVm.start({ id, vcpus: 1, memoryMiB: 128, kernel, initrd, tap, ipv4, ipv6: 'fd00:7::20/128', accel: 'tcg' }, files, 1, undefined, jail);
  vms.add(vm);
  await vm.waitConsole(/^sub0-slot: up /, 120_000);
  execFileSync('ping', ['-c', '1', '-W', '5', '100.64.7.20']);
  t.pass('it runs and answers on its address');

  // Each layer, read from outside: the kernel's view of the process.
  const status = readFileSync(`/proc/${vm.pid}/status`, 'utf8');
  const field = (k: string) => status.match(new RegExp(`^${k}:\\s*(.*)$`, 'm'))?.[1]?.trim();
  t.equal(field('Uid'), Array(4).fill(jail.uid).join('\t'), 'every uid of QEMU is the slot\'s (real, effective, saved, fs)');
  t.equal(field('Gid'), Array(4).fill(jail.uid).join('\t'), 'every gid too');
  t.equal(field('CapEff'), '0000000000000000', 'no effective capability');
  t.equal(field('CapPrm'), '0000000000000000', 'none it could take back');
  t.equal(field('Seccomp'), '2', 'a seccomp filter');
  t.equal(readlinkSync(`/proc/${vm.pid}/root`), jail.root, 'its root is the empty jail directory');
  t.same(readdirSync(jail.root), [], 'which holds nothing');
  t.not(readlinkSync(`/proc/${vm.pid}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'), 'a mount namespace of its own');
  t.not(readlinkSync(`/proc/${vm.pid}/ns/pid`), readlinkSync('/proc/self/ns/pid'), 'a pid namespace of its own');
  t.equal(field('NSpid'), `${vm.pid}\t1`, 'where it is the first process');
  const cg = readFileSync(`/proc/${vm.pid}/cgroup`, 'utf8');
  t.match(cg, new RegExp(`sub0-slots/${id}$`, 'm'), 'in the slot\'s cgroup');
  for (const [file, value] of limitFiles(layout!, id, limits).files) t.equal(readFileSync(file, 'utf8').trim(), value, `${file.split('/').slice(-3).join('/')} = ${value}`);

  // A compromised QEMU, played through QMP (its commands run in QEMU's process): it cannot open
  // host files, not even the slot's own disk by its path, and cannot start a program.
  await t.rejects(vm.execute('blockdev-add', { driver: 'file', filename: '/etc/passwd', 'node-name': 'steal', 'read-only': true }), /No such file|Could not open/, 'a host file: not there');
  await t.rejects(vm.execute('blockdev-add', { driver: 'file', filename: files.disk, 'node-name': 'own', 'read-only': true }), /No such file|Could not open/, 'its own disk by its path: not there either');
  const ended = new Promise<string>((resolve) => (vm.onExit = resolve));
  await vm.execute('human-monitor-command', { 'command-line': 'migrate "exec:touch /tmp/sub0-escaped"' }).catch(() => undefined);
  t.match(await ended, /QEMU ended/, 'starting a program kills QEMU (seccomp: spawn=deny)');
  vms.delete(vm);
  t.notOk(existsSync('/tmp/sub0-escaped'), 'and nothing ran');
});
