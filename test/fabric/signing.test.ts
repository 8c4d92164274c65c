import t from 'tap';
import { compile } from '../../fabric/compile.js';
import { configHash, contentHash } from '../../fabric/encoding.js';
import { isSub0Error } from '../../fabric/errors.js';
import { generateSigningKey, signConfig, signingKeyFromSecret, verifyConfig } from '../../fabric/signing.js';
import { labSnapshot } from '../helpers/fabric-fixtures.js';

const key = signingKeyFromSecret('11'.repeat(32));
const config = compile(labSnapshot()).configs.get('n3')!;
const text = (wire: Uint8Array) => Buffer.from(wire).toString('utf8');

t.test('a signed config verifies and round-trips exactly', async (t) => {
  const wire = signConfig(config, key);
  const { config: back, key: signer } = verifyConfig(wire, [key.publicKey]);
  t.same(back, config);
  t.equal(configHash(back), configHash(config));
  t.same(signConfig(config, key), wire, 'signing is deterministic');
  t.ok(verifyConfig(text(wire), [generateSigningKey().publicKey, key.publicKey]), 'text in, any trusted key');
  t.match(signer, /^[0-9a-f]{64}$/);
});

t.test('changing any single byte of the signed message makes it fail', async (t) => {
  const wire = signConfig(config, key);
  let rejected = 0;
  const accepted: number[] = [];
  for (let i = 0; i < wire.length; i++) {
    const bad = wire.slice();
    bad[i] = bad[i]! ^ 0x01;
    try {
      verifyConfig(bad, [key.publicKey]);
      accepted.push(i);
    } catch (e) {
      if (isSub0Error(e, 'bad-signature') || isSub0Error(e, 'invalid-input')) rejected++;
      else throw e;
    }
  }
  t.same(accepted, [], 'no altered message is accepted');
  t.equal(rejected, wire.length, `all ${wire.length} single-byte changes rejected`);
});

t.test('untrusted keys, re-signed payloads and other spellings of the header are refused', async (t) => {
  const wire = text(signConfig(config, key));
  const other = generateSigningKey();
  const code = (fn: () => unknown) => {
    try {
      fn();
      return 'accepted';
    } catch (e) {
      return isSub0Error(e) ? e.code : 'other';
    }
  };
  const nl = wire.indexOf('\n');
  const header = wire.slice(0, nl);
  const payload = wire.slice(nl + 1);
  t.match(header, /^sub0\/node-config\/v1 [0-9a-f]{64} [0-9a-f]{128}$/, 'one header line');
  t.same(JSON.parse(payload), JSON.parse(JSON.stringify(config)), 'then the config as plain JSON');
  t.equal(code(() => verifyConfig(wire, [other.publicKey])), 'bad-signature', 'signed by a key we do not trust');
  t.equal(code(() => verifyConfig(signConfig(config, other), [key.publicKey])), 'bad-signature', 'valid signature, wrong signer');
  t.equal(code(() => verifyConfig(`${header}\n${payload.replace('"tcp"', '"any"')}`, [key.publicKey])), 'bad-signature', 'payload changed after signing');
  t.equal(code(() => verifyConfig(`${header}\n${JSON.stringify(JSON.parse(payload), null, 1)}`, [key.publicKey])), 'bad-signature', 'same content, other spelling');
  t.equal(code(() => verifyConfig(`${header}\n${payload}\n`, [key.publicKey])), 'bad-signature', 'a trailing newline');
  t.equal(code(() => verifyConfig(`${header}\r\n${payload}`, [key.publicKey])), 'invalid-input', 'a CRLF header');
  t.equal(code(() => verifyConfig(`${header.toUpperCase().replace('SUB0/NODE-CONFIG/V1', 'sub0/node-config/v1')}\n${payload}`, [key.publicKey])), 'invalid-input', 'upper-case hex');
  t.equal(code(() => verifyConfig(`${header.replace(' ', '  ')}\n${payload}`, [key.publicKey])), 'invalid-input', 'two spaces');
  t.equal(code(() => verifyConfig(payload, [key.publicKey])), 'invalid-input', 'no header');
  t.equal(code(() => verifyConfig('{"v":1}', [key.publicKey])), 'invalid-input');
  t.equal(code(() => verifyConfig('\xff', [key.publicKey])), 'invalid-input');
  t.equal(code(() => verifyConfig('', [key.publicKey])), 'invalid-input', 'empty');
});

t.test('interoperable ed25519; a signed payload that is not a valid NodeConfig is refused, naming what is wrong', async (t) => {
  const { ed25519 } = await import('@noble/curves/ed25519.js');
  const { bytesToHex, utf8ToBytes } = await import('@noble/hashes/utils.js');
  const { createHash } = await import('node:crypto');
  // Signed correctly by the trusted key, so that only the content can be at fault.
  const signRaw = (payload: string | Uint8Array) => {
    const digest = createHash('sha256').update(payload).digest();
    const sig = ed25519.sign(new Uint8Array([...utf8ToBytes('sub0/node-config/v1\n'), ...digest]), key.secretKey);
    const header = utf8ToBytes(`sub0/node-config/v1 ${bytesToHex(key.publicKey)} ${bytesToHex(sig)}\n`);
    return Buffer.concat([header, typeof payload === 'string' ? utf8ToBytes(payload) : payload]);
  };
  t.ok(verifyConfig(signRaw(JSON.stringify(config)), [key.publicKey]), 'a signature by another ed25519 implementation verifies');
  t.same(ed25519.getPublicKey(key.secretKey), key.publicKey, 'and derives the same public key');
  const wire = text(signConfig(config, key));
  const [, , sigHex] = wire.slice(0, wire.indexOf('\n')).split(' ');
  const digest = createHash('sha256').update(wire.slice(wire.indexOf('\n') + 1)).digest();
  t.ok(ed25519.verify(Buffer.from(sigHex!, 'hex'), new Uint8Array([...utf8ToBytes('sub0/node-config/v1\n'), ...digest]), key.publicKey), 'which verifies our signatures too');
  t.throws(() => verifyConfig(signRaw('{"acl":'), [key.publicKey]), { code: 'invalid-input', message: /not JSON/ });
  const latin1 = Buffer.from(JSON.stringify({ ...config, slots: [{ ...config.slots[0]!, image: 'débian' }] }), 'latin1');
  t.throws(() => verifyConfig(signRaw(latin1), [key.publicKey]), { code: 'invalid-input', message: /not UTF-8/ }, 'a signed payload in another encoding');
  const bad = { ...config, acl: [{ ...config.acl[0]!, ports: [80, 70000] }] };
  t.throws(() => verifyConfig(signRaw(JSON.stringify(bad)), [key.publicKey]), { code: 'invalid-input', message: /node config:[\s\S]*acl\[0\]\.ports\[1\]/ });
});

t.test('hashes are canonical; the content hash ignores only the revision', async (t) => {
  const shuffled = Object.fromEntries(Object.entries(config).reverse()) as typeof config;
  t.equal(configHash(shuffled), configHash(config), 'canonical: key order does not matter');
  t.not(configHash({ ...config, acl: config.acl.slice(1) }), configHash(config), 'content change changes the hash');
  const later = { ...config, revision: { number: 43, hash: `0x${'00'.repeat(32)}` } };
  t.not(configHash(later), configHash(config), 'the full hash covers the revision');
  t.equal(contentHash(later), contentHash(config), 'the content hash does not');
  t.not(contentHash({ ...config, acl: [] }), contentHash(config));
});

t.test('a payload beyond ASCII round-trips as UTF-8', async (t) => {
  const image = 'débian-12 ✓ 日本';
  const wide = { ...config, slots: config.slots.map((s) => ({ ...s, image })) };
  const { config: back, hash } = verifyConfig(signConfig(wide, key), [key.publicKey]);
  t.equal(back.slots[0]!.image, image);
  t.equal(hash, configHash(wide));
});

t.test('verifyConfig returns the config hash it computed while verifying', async (t) => {
  const { hash } = verifyConfig(signConfig(config, key), [key.publicKey]);
  t.equal(hash, configHash(config));
});

t.test('the content hash from the encoding equals contentHash(), whatever the config holds', async (t) => {
  const { contentHashOfEncoded, encodeConfig } = await import('../../fabric/encoding.js');
  for (const c of compile(labSnapshot()).configs.values()) t.equal(contentHashOfEncoded(encodeConfig(c)), contentHash(c), `${c.node}`);
  const tricky = { ...config, slots: config.slots.map((s) => ({ ...s, image: 'x,"revision":{"hash":"0x1"}' })) };
  t.equal(contentHashOfEncoded(encodeConfig(tricky)), contentHash(tricky), 'a slot image that spells the revision key');
  t.not(contentHashOfEncoded(encodeConfig({ ...config, revision: { number: 9, hash: `0x${'9'.repeat(64)}` } })), contentHash({ ...config, mode: 'quarantined' }), 'content still counts');
  t.equal(contentHashOfEncoded(encodeConfig({ ...config, revision: { number: 9, hash: `0x${'9'.repeat(64)}` } })), contentHash(config), 'the revision does not');
});

t.test('the NodeConfig encoder writes exactly RFC 8785 canonical JSON', async (t) => {
  const { canonicalConfigJson, canonicalJson } = await import('../../fabric/encoding.js');
  const { syntheticSnapshot } = await import('../../fabric/examples/synthetic.js');
  const { parseSnapshot } = await import('../../fabric/parse-snapshot.js');
  const configs = [...compile(labSnapshot()).configs.values(), ...compile(parseSnapshot(syntheticSnapshot({ nodes: 30, nodesPerDvci: 10 })).snapshot).configs.values()];
  let same = 0;
  for (const c of configs) if (canonicalConfigJson(c) === canonicalJson(c)) same++;
  t.equal(same, configs.length, `all ${configs.length} compiled configs encode identically`);
  const odd = { ...config, slots: config.slots.map((s, i) => ({ ...s, image: ['é/ü "quoted" \\ back', 'tab\tnew\nline \u0001', '😀 emoji', ''][i % 4]! })), mode: 'quarantined' as const };
  t.equal(canonicalConfigJson(odd), canonicalJson(odd), 'free text with escapes, non-ASCII and astral characters');
  t.throws(() => canonicalConfigJson({ ...config, slots: [{ ...config.slots[0]!, image: 'a\ud800b' }] }), /lone surrogate/, 'a lone surrogate is refused, as canonicalize refuses it');
});
