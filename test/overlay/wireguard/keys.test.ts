import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { PRIVATE_KEY_FILE, base64ToHex, generatePrivateKey, hexToBase64, keyToBase64, loadOrCreateNodeKey, publicKeyOf } from '../../../overlay/wireguard/keys.js';

const dir = mkdtempSync(join(tmpdir(), 'sub0-keys-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('the public key is what `wg pubkey` derives', async (t) => {
  const priv = keyToBase64(generatePrivateKey());
  const wg = execFileSync('wg', ['pubkey'], { input: `${priv}\n`, encoding: 'utf8' }).trim();
  t.equal(keyToBase64(publicKeyOf(Buffer.from(priv, 'base64'))), wg);
  const genkey = execFileSync('wg', ['genkey'], { encoding: 'utf8' }).trim();
  const wgPub = execFileSync('wg', ['pubkey'], { input: `${genkey}\n`, encoding: 'utf8' }).trim();
  t.equal(keyToBase64(publicKeyOf(Buffer.from(genkey, 'base64'))), wgPub, 'also for a key made by wg genkey');
});

t.test('generated keys are clamped as wg genkey clamps them', async (t) => {
  const k = generatePrivateKey();
  t.equal(k[0]! & 7, 0);
  t.equal(k[31]! & 0xc0, 0x40);
});

t.test('the node key is created once, 0600, and read back the same', async (t) => {
  const state = join(dir, 'a');
  const first = loadOrCreateNodeKey(state);
  t.ok(first.created);
  t.equal(statSync(first.path).mode & 0o777, 0o600);
  t.equal(statSync(state).mode & 0o777, 0o700);
  const again = loadOrCreateNodeKey(state);
  t.notOk(again.created);
  t.equal(again.publicKey, first.publicKey);
});

t.test('a loose key file is tightened; a malformed one is refused, not replaced', async (t) => {
  const state = join(dir, 'b');
  loadOrCreateNodeKey(state);
  const path = join(state, PRIVATE_KEY_FILE);
  execFileSync('chmod', ['644', path]);
  loadOrCreateNodeKey(state);
  t.equal(statSync(path).mode & 0o777, 0o600);
  writeFileSync(path, 'not a key\n');
  t.throws(() => loadOrCreateNodeKey(state), /not base64 of 32 bytes/);
});

t.test('hex on the UAPI wire, base64 elsewhere', async (t) => {
  const b64 = keyToBase64(generatePrivateKey());
  t.equal(hexToBase64(base64ToHex(b64)), b64);
  t.throws(() => hexToBase64('zz'), /hex key/);
});
