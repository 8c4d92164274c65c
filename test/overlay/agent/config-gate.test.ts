/**
 * What the agent accepts: signed by a trusted controller, for this node, never older than what it
 * applied; and what it keeps across a restart.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { compile } from '../../../fabric/compile.js';
import type { NodeConfig } from '../../../fabric/node-config.js';
import { generateSigningKey, signConfig } from '../../../fabric/signing.js';
import { Sub0Error } from '../../../fabric/errors.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { ACCEPTED_FILE, ConfigGate, TRUST_FILE } from '../../../overlay/agent/config-gate.js';
import { SignedFileSource } from '../../../overlay/agent/config-source.js';
import { labSnapshot } from '../../helpers/fabric-fixtures.js';

const controller = generateSigningKey();
const second = generateSigningKey();
const stranger = generateSigningKey();
const hex = (k: { publicKey: Uint8Array }) => bytesToHex(k.publicKey);
/** The lab network at block n, its DVCI authorizing `controllers` (default: `controller`). */
const at = (n: number, node = 'n1', controllers = [hex(controller)]): NodeConfig =>
  compile(
    labSnapshot((raw) => {
      raw.block = { number: n, hash: `0x${n.toString(16).padStart(64, '0')}` };
      (raw.dvcis as { controllers?: string[] }[])[0]!.controllers = controllers;
    }),
  ).configs.get(node)!;
const dir = mkdtempSync(join(tmpdir(), 'sub0-gate-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const gate = (node?: string) => {
  const d = join(dir, String(seq++));
  return { gate: new ConfigGate(d, [controller.publicKey], node), dir: d };
};

t.test('a signed config is accepted and kept on disk; the same one again is a duplicate', async (t) => {
  const { gate: g, dir: d } = gate('n1');
  mkdirSync(d, { recursive: true });
  const wire = signConfig(at(42), controller);
  t.equal(g.offer(wire, 'test').kind, 'accepted');
  t.ok(readFileSync(join(d, ACCEPTED_FILE)).equals(wire), 'the bytes as verified');
  t.equal(g.offer(wire, 'test').kind, 'duplicate');
});

t.test('refusals name the reason, and change nothing', async (t) => {
  const { gate: g, dir: d } = gate('n1');
  mkdirSync(d, { recursive: true });
  g.offer(signConfig(at(42), controller), 'test');
  t.throws(() => g.offer(signConfig({ ...at(41), acl: [] }, controller), 'cfg.json'), { code: 'stale-revision', message: /cfg.json: revision #41 is older than #42/ }, 'an older config of other content');
  t.throws(() => g.offer(signConfig(at(50), stranger), 'cfg.json'), { code: 'bad-signature', message: /untrusted key/ });
  t.throws(() => g.offer('{"v":1', 'cfg.json'), { code: 'invalid-input', message: /not a signed node config/ });
  t.throws(() => g.offer(signConfig(at(50, 'n2'), controller), 'cfg.json'), { code: 'invalid-input', message: /for node "n2", this agent runs node "n1"/ });
  const signed = Buffer.from(signConfig(at(50), controller)).toString('utf8');
  const tampered = signed.replace('"mode":"active', '"mode":"quarantined');
  t.not(tampered, signed, 'the tampered message differs');
  t.throws(() => g.offer(tampered, 'cfg.json'), { code: 'bad-signature' });
  const other = { ...at(42), peers: [] };
  t.throws(() => g.offer(signConfig(other, controller), 'cfg.json'), { code: 'stale-revision', message: /different config for revision #42/ });
  t.equal(g.accepted?.config.revision.number, 42, 'still the config accepted first');
});

t.test('a restarted agent re-applies the kept config and still refuses older ones', async (t) => {
  const { gate: g, dir: d } = gate();
  mkdirSync(d, { recursive: true });
  g.offer(signConfig(at(45), controller), 'test');
  const again = new ConfigGate(d, [controller.publicKey], undefined);
  t.equal(again.loadPersisted()?.config.revision.number, 45);
  t.throws(() => again.offer(signConfig({ ...at(44), acl: [] }, controller), 'x'), { code: 'stale-revision' });
  t.throws(() => again.offer(signConfig(at(46, 'n2'), controller), 'x'), { message: /this agent runs node "n1"/ }, 'the node is pinned by the kept config');
  const untrusting = new ConfigGate(d, [stranger.publicKey], undefined);
  t.throws(() => untrusting.loadPersisted(), { code: 'bad-signature' }, 'a kept config is verified again');
});

t.test('a signed config with an address the kernel would refuse is refused at the gate; the previous state stays', async (t) => {
  const { gate: g, dir: d } = gate('n1');
  mkdirSync(d, { recursive: true });
  g.offer(signConfig(at(42), controller), 'test');
  const c = at(43);
  const bad = { ...c, peers: c.peers.map((p, i) => (i === 0 ? { ...p, allowedIps: [...p.allowedIps, '999.1.1.1/32'] } : p)) };
  t.throws(() => g.offer(signConfig(bad, controller), 'cfg'), { code: 'invalid-input', message: /valid address[\s\S]*at peers\[0\]\.allowedIps\[\d+\]/ });
  t.equal(g.accepted?.config.revision.number, 42, 'the config accepted before stays');
});

t.test('the trusted keys follow the set the chain authorizes, as configs name it', async (t) => {
  const { gate: g, dir: d } = gate('n1');
  mkdirSync(d, { recursive: true });
  const both = [hex(controller), hex(second)].sort();
  t.throws(() => g.offer(signConfig(at(40, 'n1', both), second), 'x'), { code: 'bad-signature', message: /untrusted key/ }, 'before any config names it, only the installed key is trusted');
  t.equal(g.offer(signConfig(at(40, 'n1', both), controller), 'x').kind, 'accepted');
  t.same(g.trustedKeys, both, 'the set named by the accepted config');
  t.equal(g.offer(signConfig(at(41, 'n1', both), second), 'x').kind, 'accepted', 'the second authorized controller is trusted now');
  t.equal(g.offer(signConfig(at(41, 'n1', both), controller), 'x').kind, 'duplicate', 'the same config from the other controller is a duplicate');
  t.equal(g.offer(signConfig(at(39, 'n1', both), controller), 'x').kind, 'duplicate', 'an older copy of the same content is a duplicate, not a refusal');
  t.throws(() => g.offer(signConfig(at(42, 'n1', [hex(second)]), controller), 'x'), { code: 'bad-signature', message: /does not authorize for DVCI "lyon"/ }, 'a trusted key signing a config whose set excludes it');
  t.equal(g.offer(signConfig(at(43, 'n1', [hex(second)]), second), 'x').kind, 'accepted', 'the chain drops the first controller');
  t.same(g.trustedKeys, [hex(second)]);
  t.throws(() => g.offer(signConfig(at(44, 'n1', both), controller), 'x'), { code: 'bad-signature', message: /untrusted key/ }, 'the dropped controller is refused, whatever set it claims');
  t.same(JSON.parse(readFileSync(join(d, TRUST_FILE), 'utf8')).keys, [hex(second)], 'the learned set is kept on disk');
  const restarted = new ConfigGate(d, [controller.publicKey], undefined);
  t.equal(restarted.loadPersisted()?.config.revision.number, 43, 'a restart verifies the kept config with the learned set, not the installed keys');
  t.same(restarted.trustedKeys, [hex(second)]);
});

t.test('the file source reports a file it cannot read, once, and when it reads again', async (t) => {
  const path = join(dir, 'unreadable.signed');
  mkdirSync(path); // a directory where the file should be: readFile fails with EISDIR (root reads through chmod 000)
  const problems: unknown[] = [];
  const got: string[] = [];
  const src = new SignedFileSource(path, 30);
  t.teardown(() => src.stop());
  await src.start((w) => got.push(new TextDecoder().decode(w)), (p) => problems.push(p));
  const end = Date.now() + 2000;
  while (Date.now() < end && problems.length < 1) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 150)); // a few more polls: still one report
  t.match(problems, [{ source: path, code: 'EISDIR', message: /cannot read the config file/ }], 'reported once, with its code and path');
  rmSync(path, { recursive: true });
  writeFileSync(path, 'fixed');
  const end2 = Date.now() + 2000;
  while (Date.now() < end2 && got.length < 1) await new Promise((r) => setTimeout(r, 10));
  t.same(got, ['fixed'], 'delivered once readable');
  t.equal(problems.length, 2, 'and the problem is cleared');
  t.equal(problems[1], undefined);
});

t.test('the file source delivers the current file, then each new content once', async (t) => {
  const path = join(dir, 'watched.json');
  writeFileSync(path, 'one');
  const got: string[] = [];
  const src = new SignedFileSource(path, 50);
  await src.start((w) => got.push(new TextDecoder().decode(w)));
  writeFileSync(`${path}.tmp`, 'two');
  renameSync(`${path}.tmp`, path);
  const end = Date.now() + 2000;
  while (got.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  writeFileSync(path, 'two'); // same bytes: not delivered again
  await new Promise((r) => setTimeout(r, 120));
  writeFileSync(path, 'six'); // rewritten in place, same size: the mtime tells
  const end2 = Date.now() + 2000;
  while (got.length < 3 && Date.now() < end2) await new Promise((r) => setTimeout(r, 10));
  await src.stop();
  t.same(got, ['one', 'two', 'six']);
});

t.test('a config the data plane cannot hold as a whole is refused at the gate; the accepted one stays', async (t) => {
  const d = mkdtempSync(join(dir, 'fit-'));
  const { fitAcl } = await import('../../../fabric/acl-capacity.js');
  const gate = new ConfigGate(d, [controller.publicKey], 'n1', undefined, (c) => {
    if (fitAcl(c.acl).dropped.length > 0) throw new Sub0Error('invalid-input', 'the ACL does not fit the eBPF maps');
  });
  t.equal(gate.offer(signConfig(at(42), controller), 'x').kind, 'accepted');
  // One slot to 65,536 others: 65,537 addresses, over the identity map's 65,536 entries.
  const hosts = Array.from({ length: 65_536 }, (_, i) => `100.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`);
  const huge: NodeConfig = { ...at(43), acl: [{ rule: 'big', src: ['100.96.0.1/32'], dst: hosts, proto: 'tcp', ports: [80, 80] }] };
  t.throws(() => gate.offer(signConfig(huge, controller), 'x'), { code: 'invalid-input', message: /does not fit the eBPF maps/ }, '65,537 addresses: refused');
  t.equal(gate.accepted?.config.revision.number, 42, 'the config accepted before is still the one');
});
