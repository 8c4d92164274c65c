/**
 * The initramfs writer, checked with GNU cpio (the reader, from outside): what it lists and
 * extracts is what was written, with modes, symlinks and device nodes; the same entries in another
 * order give the same bytes.
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { cpioChunks, type CpioEntry } from '../../bootimage/build/cpio.js';

const entries: CpioEntry[] = [
  { path: 'bin', type: 'dir' },
  { path: 'bin/busybox', type: 'file', mode: 0o755, data: Buffer.from('#!/bin/true\n') },
  { path: 'bin/sh', type: 'symlink', target: 'busybox' },
  { path: 'etc', type: 'dir', mode: 0o700 },
  { path: 'etc/odd', type: 'file', mode: 0o600, data: Buffer.from('x'.repeat(5)) },
  { path: 'etc/empty', type: 'file', mode: 0o644, data: new Uint8Array(0) },
  { path: 'dev', type: 'dir' },
  { path: 'dev/console', type: 'char', mode: 0o600, major: 5, minor: 1 },
];

t.test('GNU cpio reads back exactly what was written', async (t) => {
  const archive = Buffer.concat(cpioChunks(entries, 1_700_000_000));
  const list = spawnSync('cpio', ['-it', '--quiet'], { input: archive });
  t.equal(list.status, 0, String(list.stderr));
  t.same(String(list.stdout).trim().split('\n'), ['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'etc', 'etc/empty', 'etc/odd'], 'every entry, sorted');
  const dir = mkdtempSync(join(tmpdir(), 'sub0-cpio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const x = spawnSync('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], { input: archive, cwd: dir });
  t.equal(x.status, 0, String(x.stderr));
  t.equal(readFileSync(join(dir, 'bin/busybox'), 'utf8'), '#!/bin/true\n');
  t.equal(lstatSync(join(dir, 'bin/busybox')).mode & 0o777, 0o755);
  t.equal(readlinkSync(join(dir, 'bin/sh')), 'busybox');
  t.equal(lstatSync(join(dir, 'etc/odd')).mode & 0o777, 0o600);
  t.equal(readFileSync(join(dir, 'etc/odd'), 'utf8'), 'xxxxx', 'a size that is not a multiple of 4 is padded, not cut');
  t.equal(lstatSync(join(dir, 'etc/empty')).size, 0);
  const console = lstatSync(join(dir, 'dev/console'));
  t.ok(console.isCharacterDevice(), 'a device node, made without mknod on the build host');
  t.equal(console.rdev, (5 << 8) | 1);
  t.equal(Math.floor(lstatSync(join(dir, 'etc/odd')).mtimeMs / 1000), 1_700_000_000, 'the pinned mtime');
});

t.test('the same entries in any order give the same bytes; a path twice is refused', async (t) => {
  const a = Buffer.concat(cpioChunks(entries, 1));
  const b = Buffer.concat(cpioChunks([...entries].reverse(), 1));
  t.ok(a.equals(b));
  t.throws(() => cpioChunks([...entries, { path: 'bin', type: 'dir' }], 1), /bin is listed twice/);
  t.throws(() => cpioChunks([{ path: '../x', type: 'dir' }], 1), /bad path/);
});
