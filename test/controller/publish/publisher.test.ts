import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { compile } from '../../../fabric/compile.js';
import { isSub0Error } from '../../../fabric/errors.js';
import { verifyConfig } from '../../../fabric/signing.js';
import { DirectorySink } from '../../../controller/publish/directory-sink.js';
import { Publisher } from '../../../controller/publish/publisher.js';
import { loadOrCreateSigningKey } from '../../../overlay/signing-key-file.js';
import { labSnapshot } from '../../helpers/fabric-fixtures.js';

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'sub0-publish-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('publishes each node once, then only what changed, and withdraws nodes that left', async (t) => {
  const dir = tempDir(t);
  const { key, created } = loadOrCreateSigningKey(join(dir, 'key'));
  t.ok(created);
  const sink = new DirectorySink(join(dir, 'configs'));
  const pub = new Publisher(sink, key);

  const first = await pub.publish(compile(labSnapshot()));
  t.same([...first.published].sort(), ['n1', 'n2', 'n3']);
  const n3 = verifyConfig(readFileSync(sink.path('n3')), [key.publicKey]).config;
  t.equal(n3.node, 'n3');

  // A new block that changes nothing: nothing is written, even though the revision moved.
  const same = await pub.publish(compile(labSnapshot((raw) => (raw.block.number = 43))));
  t.same(same, { published: [], unchanged: 3, withdrawn: [], notAuthorized: [] });

  // Revoking rpc-to-db changes n2 and n3 only; retiring n1 withdraws its config.
  const next = await pub.publish(
    compile(
      labSnapshot((raw) => {
        raw.block.number = 44;
        raw.rules.splice(1, 1);
        raw.nodes[0].state = 'retired';
      }),
    ),
  );
  t.same([...next.published].sort(), ['n2', 'n3']);
  t.same(next.withdrawn, ['n1']);
  t.same(readdirSync(join(dir, 'configs')).sort(), ['n2.signed', 'n3.signed'], 'no temp files left');
  t.equal(verifyConfig(readFileSync(sink.path('n3')), [key.publicKey]).config.revision.number, 44);
});

t.test('a restarted controller publishes only what differs from what is already there', async (t) => {
  const dir = tempDir(t);
  const { key } = loadOrCreateSigningKey(join(dir, 'key'));
  const sink = new DirectorySink(join(dir, 'configs'));
  await new Publisher(sink, key).publish(compile(labSnapshot()));
  writeFileSync(sink.path('stale'), 'garbage'); // left by something else: withdrawn
  const again = await new Publisher(sink, key).publish(compile(labSnapshot((raw) => (raw.block.number = 50))));
  t.same(again, { published: [], unchanged: 3, withdrawn: ['stale'], notAuthorized: [] });
});

t.test('a DVCI whose controller keys on chain leave this one out gets nothing from it, withdrawn or published', async (t) => {
  const dir = tempDir(t);
  const { key } = loadOrCreateSigningKey(join(dir, 'key'));
  const sink = new DirectorySink(join(dir, 'configs'));
  const pub = new Publisher(sink, key);
  await pub.publish(compile(labSnapshot()));
  const before = readFileSync(sink.path('n1'));
  const others = compile(labSnapshot((raw) => ((raw.dvcis as { controllers?: string[] }[])[0]!.controllers = ['ab'.repeat(32)])));
  const r = await pub.publish(others);
  t.same(r, { published: [], unchanged: 0, withdrawn: [], notAuthorized: ['lyon'] }, 'nothing written, nothing withdrawn');
  t.ok(readFileSync(sink.path('n1')).equals(before), 'the config already there stays');
  const mine = compile(labSnapshot((raw) => ((raw.dvcis as { controllers?: string[] }[])[0]!.controllers = ['ab'.repeat(32), Buffer.from(key.publicKey).toString('hex')].sort())));
  const r2 = await pub.publish(mine);
  t.same([...r2.published].sort(), ['n1', 'n2', 'n3'], 'named again: published (the set changed the content)');
  t.same(verifyConfig(readFileSync(sink.path('n1')), [key.publicKey]).config.controllers.length, 2);
});

t.test('the signing key file: reused, 0600, refused when others can read it', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'sub', 'controller.key');
  const a = loadOrCreateSigningKey(path);
  t.equal(statSync(path).mode & 0o777, 0o600);
  const b = loadOrCreateSigningKey(path);
  t.equal(b.created, false);
  t.same(b.key.publicKey, a.key.publicKey, 'same key on the next start');
  chmodSync(path, 0o644);
  t.throws(() => loadOrCreateSigningKey(path), /readable by others/);
  chmodSync(path, 0o600);
  writeFileSync(path, 'nope');
  let err: unknown;
  try {
    loadOrCreateSigningKey(path);
  } catch (e) {
    err = e;
  }
  t.ok(isSub0Error(err, 'invalid-input'));
});
