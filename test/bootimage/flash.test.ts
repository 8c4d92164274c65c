/**
 * `sub0 image flash`: the refusals decided on lsblk's view (no real disk at risk), then the CLI
 * against loop devices: refused when not removable or mounted, refused without a confirmation,
 * and with --force --yes written, synced and read back (compared by cmp, from outside).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { disksOf, targetProblems } from '../../bootimage/flash/flash.js';

const SUB0 = new URL('../../dist/sub0.js', import.meta.url).pathname;
const MiB = 2 ** 20;

const lsblk = JSON.stringify({
  blockdevices: [
    { path: '/dev/vda', rm: false, size: 274877906944, model: null, serial: null, tran: null, type: 'disk', 'maj:min': '254:0', mountpoints: [null], children: [{ path: '/dev/vda1', rm: false, size: 1, type: 'part', 'maj:min': '254:1', mountpoints: ['/'] }] },
    { path: '/dev/sdb', rm: true, size: 32017047552, model: 'Ultra Fit ', serial: '4C530001', tran: 'usb', type: 'disk', 'maj:min': '8:16', mountpoints: [null] },
    { path: '/dev/sdc', rm: '1', size: 64 * MiB, model: 'Tiny', serial: 'T1', tran: 'usb', type: 'disk', 'maj:min': '8:32', mountpoints: [null] },
    { path: '/dev/sdd', rm: true, size: 8e9, model: 'Busy', serial: 'B1', tran: 'usb', type: 'disk', 'maj:min': '8:48', mountpoints: [null], children: [{ path: '/dev/sdd1', rm: true, size: 1, type: 'part', 'maj:min': '8:49', mountpoints: ['/media/photos'] }] },
    { path: '/dev/sdd1', rm: true, size: 1, type: 'part', 'maj:min': '8:49', mountpoints: ['/media/photos'] },
  ],
});

t.test('what may be written, decided on lsblk\'s view', async (t) => {
  const disks = disksOf(lsblk);
  t.same(disks.map((d) => d.path), ['/dev/vda', '/dev/sdb', '/dev/sdc', '/dev/sdd'], 'whole disks only');
  const by = (p: string) => disks.find((d) => d.path === p)!;
  t.same(by('/dev/sdb').model, 'Ultra Fit', 'the model, trimmed');
  t.same(targetProblems(by('/dev/sdb'), 70 * MiB, '/dev/vda', false), [], 'a removable, unmounted stick that is large enough');
  t.match(targetProblems(by('/dev/vda'), 70 * MiB, '/dev/vda', false).join('\n'), /not a removable device[\s\S]*mounted at \/[\s\S]*the disk this system runs from/, 'the system disk: three reasons');
  t.match(targetProblems(by('/dev/sdd'), 70 * MiB, '/dev/vda', false), [/mounted at \/media\/photos: unmount it first/], 'a partition mounted: refused');
  t.match(targetProblems(by('/dev/sdc'), 70 * MiB, '/dev/vda', true), [/holds 67108864 bytes, the image needs 73400320/], 'too small even with --force');
  t.same(targetProblems(by('/dev/vda'), 70 * MiB, '/dev/vda', true), [], '--force lifts the rest');
});

t.test('the CLI against loop devices', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sub0-flash-'));
  const loops: string[] = [];
  const mnt = join(dir, 'mnt');
  t.teardown(() => {
    spawnSync('umount', [mnt]);
    for (const l of loops) spawnSync('losetup', ['-d', l]);
    rmSync(dir, { recursive: true, force: true });
  });
  const image = join(dir, 'usb.img');
  writeFileSync(image, Buffer.from(Array.from({ length: 3 * MiB + 1234 }, (_, i) => (i * 7919) % 251)));
  const loop = (name: string, mib: number) => {
    const f = join(dir, name);
    writeFileSync(f, Buffer.alloc(mib * MiB));
    const l = spawnSync('losetup', ['-f', '--show', f], { encoding: 'utf8' }).stdout.trim();
    if (!l.startsWith('/dev/loop')) throw new Error(`losetup gave ${l}`);
    loops.push(l);
    return { file: f, dev: l };
  };
  const sub0 = (args: string[]) => spawnSync(process.execPath, [SUB0, 'image', 'flash', '--image', image, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const untouched = (f: string) => readFileSync(f).every((b) => b === 0);

  const none = sub0([]);
  t.equal(none.status, 2, 'no device: nothing is chosen for the user');
  t.match(none.stderr, /choose the device to erase with --device; removable devices now:/);

  const a = loop('a.bin', 8);
  const refused = sub0(['--device', a.dev, '--yes']);
  t.equal(refused.status, 2);
  t.match(refused.stderr, /is not a removable device \(--force to write it anyway\)/);
  const unconfirmed = sub0(['--device', a.dev, '--force']);
  t.equal(unconfirmed.status, 2, 'no terminal to ask on and no --yes: refused');
  t.match(unconfirmed.stderr, /confirm with --yes/);
  t.ok(untouched(a.file), 'nothing was written by the refusals');

  const ok = sub0(['--device', a.dev, '--force', '--yes']);
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stderr, /writing 100% /, 'progress');
  t.match(ok.stdout, /written, synced, read back: sha256 [0-9a-f]{64}/);
  const cmp = spawnSync('cmp', ['-n', String(3 * MiB + 1234), image, a.dev]);
  t.equal(cmp.status, 0, 'cmp: the device holds the image');

  const b = loop('b.bin', 16);
  t.equal(spawnSync('mkfs.ext4', ['-q', b.dev]).status, 0);
  mkdirSync(mnt);
  t.equal(spawnSync('mount', [b.dev, mnt]).status, 0, 'a mounted filesystem on the second loop device');
  const mounted = sub0(['--device', b.dev, '--yes']);
  t.equal(mounted.status, 2);
  t.match(mounted.stderr, new RegExp(`is mounted at ${mnt}: unmount it first`));
});
