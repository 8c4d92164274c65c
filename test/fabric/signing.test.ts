import t from 'tap';
import { compile } from '../../fabric/compile.js';
import { configHash, contentHash } from '../../fabric/encoding.js';
import { isSub0Error } from '../../fabric/errors.js';
import { generateSigningKey, signConfig, signingKeyFromSecret, verifyConfig } from '../../fabric/signing.js';
import { labSnapshot } from '../helpers/fabric-fixtures.js';

const key = signingKeyFromSecret('11'.repeat(32));
const config = compile(labSnapshot()).configs.get('n3')!;

t.test('a signed config verifies and round-trips exactly', async (t) => {
  const wire = signConfig(config, key);
  const { config: back, key: signer } = verifyConfig(wire, [key.publicKey]);
  t.same(back, config);
  t.equal(configHash(back), configHash(config));
  t.equal(signConfig(config, key), wire, 'signing is deterministic');
  t.ok(verifyConfig(new TextEncoder().encode(wire), [generateSigningKey().publicKey, key.publicKey]), 'bytes in, any trusted key');
  t.match(signer, /^[0-9a-f]{64}$/);
});

t.test('changing any single byte of the signed message makes it fail', async (t) => {
  const wire = new TextEncoder().encode(signConfig(config, key));
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

t.test('untrusted keys, re-signed payloads and non-canonical envelopes are refused', async (t) => {
  const wire = signConfig(config, key);
  const other = generateSigningKey();
  const code = (fn: () => unknown) => {
    try {
      fn();
      return 'accepted';
    } catch (e) {
      return isSub0Error(e) ? e.code : 'other';
    }
  };
  t.equal(code(() => verifyConfig(wire, [other.publicKey])), 'bad-signature', 'signed by a key we do not trust');
  t.equal(code(() => verifyConfig(signConfig(config, other), [key.publicKey])), 'bad-signature', 'valid signature, wrong signer');
  const env = JSON.parse(wire);
  const tampered = { ...env, payload: env.payload.replace('"tcp"', '"any"') };
  t.equal(code(() => verifyConfig(JSON.stringify(tampered), [key.publicKey])), 'bad-signature', 'payload changed after signing');
  t.equal(code(() => verifyConfig(JSON.stringify(env, null, 1), [key.publicKey])), 'invalid-input', 'same content, other spelling');
  t.equal(code(() => verifyConfig('{"v":1}', [key.publicKey])), 'invalid-input');
  t.equal(code(() => verifyConfig('\xff', [key.publicKey])), 'invalid-input');
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

t.test('verifyConfig returns the config hash it computed while verifying', async (t) => {
  const { hash } = verifyConfig(signConfig(config, key), [key.publicKey]);
  t.equal(hash, configHash(config));
});
