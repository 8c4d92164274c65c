/**
 * The slot lifecycle, level-based, with real VMs (the test slot image, q35 under TCG) in a
 * namespace of the test's own: assigned -> started; resources changed -> restarted with the new
 * ones (QEMU's command line, read from /proc); killed -> restarted with backoff; an image whose
 * bytes are not its name -> refused with a clear status and never started; an ACL that cannot be
 * attached -> not started (fail closed); retired -> stopped, tap and disk removed after the grace.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { buildSlotImage } from '../../../bootimage/build/slot-image.js';
import type { HostedSlot } from '../../../fabric/node-config.js';
import { ImageStore } from '../../../overlay/slots/image-store.js';
import { slotTap } from '../../../overlay/slots/qemu-args.js';
import { linkExists } from '../../../overlay/slots/slot-net.js';
import { detectCgroups, limitFiles, slotLimits } from '../../../overlay/slots/slot-cgroup.js';
import { SlotManager, type SlotStatus } from '../../../overlay/slots/slot-manager.js';
import { useOwnNetns } from '../../helpers/netns-lab.js';
import { until } from '../../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'sub0-slotmgr-test-'));
await useOwnNetns(t, 'slotm');
const image = await buildSlotImage({ out: join(dir, 'image'), cache: process.env.SUB0_IMAGE_CACHE ?? '/var/cache/sub0/image' });
const store = new ImageStore(join(dir, 'store'));
await store.add(image.file);
// A second image: the same bytes under another file, then changed, so that its name lies.
writeFileSync(join(dir, 'other.tar'), Buffer.concat([readFileSync(image.file), Buffer.from('x')]));
const lying = await store.add(join(dir, 'other.tar'));
writeFileSync(join(store.dir, Buffer.from(lying.slice(7), 'base64url').toString('hex')), 'tampered');

let aclRefuses = false;
const attached: string[] = [];
/** The node's agent's slot manager (a new one stands for the agent started again). */
const newManager = () =>
  new SlotManager({
    slotsDir: join(dir, 'slots'),
    store,
    accel: 'tcg',
    log: pino({ level: 'silent' }),
    retireGraceMs: 0,
    attachAcl: async (tap) => {
      if (aclRefuses) throw new Error('no eBPF program for this tap');
      attached.push(tap);
    },
  });
let mgr = newManager();
await mgr.start();
t.teardown(async () => {
  mgr.setDesired([]);
  await mgr.settled();
  await mgr.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the status once `ok` holds for it (checked at every change the manager reports). */
function statusUntil(ok: (s: SlotStatus[]) => boolean, what: string, timeoutMs = 120_000): Promise<SlotStatus[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(mgr.status())}`)), timeoutMs);
    const check = () => {
      const s = mgr.status();
      if (!ok(s)) return;
      clearTimeout(timer);
      mgr.onChange = () => undefined;
      resolve(s);
    };
    mgr.onChange = check;
    check();
  });
}
const slot = (over: Partial<HostedSlot> = {}): HostedSlot => ({ id: 'slot-m', ipv4: '100.64.9.10/32', ipv6: 'fd00:9::10/128', vcpus: 1, memoryMiB: 128, diskGiB: 1, image: image.ref, ...over });
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
const one = (s: SlotStatus[]) => s.find((x) => x.id === 'slot-m');

t.test('assigned: started, with the ACL attached to its tap first', async (t) => {
  mgr.setDesired([slot()]);
  const [s] = await statusUntil((s) => one(s)?.phase === 'running', 'slot-m running');
  t.ok(s!.pid, 'a QEMU process');
  t.same(attached, [slotTap('slot-m')], 'the ACL was attached to its tap');
  const args = cmdline(s!.pid!);
  t.equal(args[args.indexOf('-m') + 1], '128');
  const uid = Number(readFileSync(`/proc/${s!.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1]);
  t.ok(uid >= 640_000, `confined: QEMU runs as the slot's own user (${uid}; slot-vm.test.ts checks each layer)`);
  // The guest boots after QEMU starts: one ping a second until the first reply, 60 s at most.
  await until('slot-m answering ping', () => spawnSync('ping', ['-c', '1', '-W', '1', '100.64.9.10']).status === 0, 60_000);
  t.pass('it answers on its address');
});

t.test('its resources changed: restarted with the new ones', async (t) => {
  const before = one(mgr.status())!.pid;
  mgr.setDesired([slot({ memoryMiB: 160, vcpus: 2 })]);
  const [s] = await statusUntil((s) => one(s)?.phase === 'running' && one(s)?.pid !== before, 'slot-m restarted');
  const args = cmdline(s!.pid!);
  t.equal(args[args.indexOf('-m') + 1], '160', 'memory from the chain');
  t.equal(args[args.indexOf('-smp') + 1], '2', 'vCPUs from the chain');
  t.equal(s!.restarts, 0, 'a change is not a crash');
});

t.test('killed: restarted with backoff, counted, its last error kept', async (t) => {
  const before = one(mgr.status())!.pid!;
  process.kill(before, 'SIGKILL');
  const [s] = await statusUntil((s) => one(s)?.phase === 'running' && one(s)?.pid !== before, 'slot-m back');
  t.equal(s!.restarts, 1);
  t.match(s!.lastError, { code: 'driver', message: /QEMU/ });
});

t.test('the node restarts (agent and VM gone at once, a power cut): the new agent boots the slot again on the same disk', async (t) => {
  const pid = one(mgr.status())!.pid!;
  const log = join(dir, 'slots/slot-m/console.log');
  const boots = (text: string) => [...text.matchAll(/^sub0-slot: boot (\d+)/gm)].map((m) => Number(m[1]));
  const before = (await until('slot-m\'s boot line', () => boots(readFileSync(log, 'utf8')).at(-1)))!;
  await mgr.close();
  process.kill(pid, 'SIGKILL');
  await until('its QEMU gone', () => !existsSync(`/proc/${pid}`), 10_000);
  mgr = newManager();
  await mgr.start();
  mgr.setDesired([slot({ memoryMiB: 160, vcpus: 2 })]);
  const [s] = await statusUntil((s) => one(s)?.phase === 'running', 'slot-m started by the new agent');
  t.not(s!.pid, pid, 'a new QEMU');
  t.equal(await until('the next boot line', () => boots(readFileSync(log, 'utf8')).find((n) => n > before), 120_000), before + 1, 'its disk counted one more boot: kept across the node\'s restart');
});

t.test('an image whose bytes are not its name: refused, with a clear status, never started', async (t) => {
  mgr.setDesired([slot(), slot({ id: 'slot-bad', ipv4: '100.64.9.11/32', ipv6: 'fd00:9::11/128', image: lying })]);
  const s = await statusUntil((s) => s.find((x) => x.id === 'slot-bad')?.phase === 'failed', 'slot-bad failed');
  const bad = s.find((x) => x.id === 'slot-bad')!;
  t.equal(bad.lastError?.code, 'invalid-input');
  t.match(bad.lastError?.message, /hashes to sha256 [0-9a-f]{64}, not the [0-9a-f]{64} the chain names/);
  t.equal(bad.pid, undefined);
  t.equal(one(s)?.phase, 'running', 'the other slot is untouched');
});

t.test('no ACL on its tap: not started (fail closed)', async (t) => {
  aclRefuses = true;
  mgr.setDesired([slot(), slot({ id: 'slot-noacl', ipv4: '100.64.9.12/32', ipv6: 'fd00:9::12/128' })]);
  const s = await statusUntil((s) => s.find((x) => x.id === 'slot-noacl')?.lastError !== undefined, 'slot-noacl refused');
  const x = s.find((x) => x.id === 'slot-noacl')!;
  t.not(x.phase, 'running');
  t.match(x.lastError?.message, /no eBPF program/);
  t.notOk(existsSync(join(dir, 'slots/slot-noacl/qemu.pid')), 'no QEMU was started');
  aclRefuses = false;
});

t.test('retired: stopped, its tap removed, its disk removed after the grace period', async (t) => {
  const pid = one(mgr.status())!.pid!;
  mgr.setDesired([]);
  await mgr.settled();
  t.throws(() => process.kill(pid, 0), 'its QEMU is gone');
  t.notOk(linkExists(slotTap('slot-m')), 'its tap is gone');
  t.notOk(linkExists(slotTap('slot-noacl')), 'and the tap of the slot refused for want of an ACL (never running) too');
  t.notOk(existsSync(join(dir, 'slots/slot-m')), 'its directory (disk) is gone (grace 0 here)');
  const cgroups = detectCgroups();
  if (cgroups) t.same(limitFiles(cgroups, 'slot-m', slotLimits(1, 128, 'tcg')).dirs.filter((d) => existsSync(d)), [], 'its cgroup is gone');
});
