/**
 * The chain commands as a user runs them: `sub0 chain up` in the background, writes that print
 * their block and extrinsic, refusals from the runtime, a snapshot that `sub0 compile` accepts,
 * `--endpoint` without the local record, and the state after a restart.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { chainUp, runCli, type ChainProcess } from './cli-process.js';

const home = mkdtempSync(join(tmpdir(), 'sub0-cli-'));
const elsewhere = mkdtempSync(join(tmpdir(), 'sub0-cli-empty-'));
const env = { SUB0_HOME: home };
let chain: ChainProcess | undefined;
t.teardown(async () => {
  await chain?.stop();
  rmSync(home, { recursive: true, force: true });
  rmSync(elsewhere, { recursive: true, force: true });
});

const HASH = /0x[0-9a-f]{64}/;
const KEY = Buffer.alloc(32, 5).toString('base64');

t.test('without a chain, commands say how to get one', async (t) => {
  const r = await runCli(['chain', 'status'], { SUB0_HOME: elsewhere });
  t.equal(r.code, 1);
  t.match(r.stderr, /run `sub0 lab up` or `sub0 chain up` first, or pass --endpoint/);
});

t.test('chain up seeds the lab; its snapshot compiles like the file', async (t) => {
  chain = await chainUp(['--seed', 'fabric/examples/lab.json'], env);
  t.match(chain.log(), /registry seeded/);
  const snap = await runCli(['chain', 'snapshot', '--json'], env);
  t.equal(snap.code, 0, snap.stderr);
  const file = join(home, 'snapshot.json');
  writeFileSync(file, snap.stdout);
  const parsed = JSON.parse(snap.stdout);
  t.same(parsed.issues, []);
  t.same(parsed.rules.map((r: { from: string; ports: string[] }) => [r.from.slice(0, 6), r.ports]), [
    ['group:', ['9944', '30333-30334']],
    ['slot:r', ['5432']],
    ['owner:', []],
  ]);
  const compiled = await runCli(['compile', '--snapshot', file, '--json'], env);
  t.equal(compiled.code, 0, compiled.stderr);
  const out = JSON.parse(compiled.stdout);
  t.same(out.issues, []);
  t.same(out.configs.map((c: { config: { node: string } }) => c.config.node), ['n1', 'n2', 'n3']);
  t.equal(out.block.number, parsed.block.number);
});

t.test('writes print their block and extrinsic; the follower reports them', async (t) => {
  t.equal((await runCli(['chain', 'follow', '--once', '--json'], env)).code, 0, 'first run stores a cursor at the head');
  const reg = await runCli(['node', 'register', 'n9', '--dvci', 'lyon', '--key', KEY, '--addr', '192.0.2.19:51820', '--capacity', '4/8192/100', '--suri', '//Alice'], env);
  t.equal(reg.code, 0, reg.stderr);
  t.match(reg.stdout, /node n9 registered: node n9 \(item 3\)/);
  t.match(reg.stdout, new RegExp(`block #\\d+ ${HASH.source}\\n  extrinsic ${HASH.source}`));
  const def = await runCli(['slot', 'define', 'app-1', '--vcpus', '2', '--memory', '2048', '--disk', '20', '--image', 'debian-12', '--group', 'app', '--suri', '//Alice', '--json'], env);
  t.equal(def.code, 0, def.stderr);
  t.same(JSON.parse(def.stdout).entries, [{ kind: 'slot', id: 'app-1', item: 3 }]);
  const assign = await runCli(['slot', 'assign', 'app-1', '--node', 'n9', '--suri', '//Alice', '--json'], env);
  t.equal(assign.code, 0, assign.stderr);
  const allow = await runCli(['acl', 'allow', 'app-in', '--from', 'group:web', '--to', 'slot:app-1', '--proto', 'tcp', '--ports', '80,8000-8100', '--suri', '//Alice', '--json'], env);
  t.equal(allow.code, 0, allow.stderr);
  const allowed = JSON.parse(allow.stdout);
  t.match(allowed, { status: 'applied', extrinsic: HASH, block: { hash: HASH } });

  const follow = await runCli(['chain', 'follow', '--once', '--json'], env);
  t.equal(follow.code, 0, follow.stderr);
  const blocks = follow.stdout.trim().split('\n').map((l) => JSON.parse(l) as { block: { number: number }; touches: { kind: string; item?: number }[] });
  t.equal(blocks.length, 4, 'one line per changing block');
  t.equal(blocks.at(-1)!.block.number, allowed.block.number);
  t.same(blocks.map((b) => b.touches.filter((x) => x.item !== undefined).map((x) => `${x.kind} ${x.item}`)), [['node 3'], ['slot 3'], ['slot 3'], ['rule 3']]);
  t.equal((await runCli(['chain', 'follow', '--once', '--json'], env)).stdout, '', 'nothing is reported twice');

  const revoke = await runCli(['acl', 'revoke', 'app-in', '--suri', '//Alice'], env);
  t.equal(revoke.code, 0, revoke.stderr);
  t.match(revoke.stdout, /rule app-in revoked/);
});

t.test('the runtime refuses a stranger, and the CLI says so', async (t) => {
  const r = await runCli(['node', 'update', 'n1', '--key', KEY, '--suri', '//Charlie'], env);
  t.equal(r.code, 1);
  t.match(r.stderr, /^sub0: permission: the runtime refused the call signed by 5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y: uniques\.NoPermission/);
  const none = await runCli(['node', 'retire', 'n1'], env);
  t.equal(none.code, 2);
  t.match(none.stderr, /no signing key: pass --suri/);
});

t.test('--endpoint reaches the chain without the local record; dev keys are for the lab only', async (t) => {
  const other = { SUB0_HOME: elsewhere };
  const status = await runCli(['chain', 'status', '--endpoint', chain!.endpoint, '--registry', '1000', '--json'], other);
  t.equal(status.code, 0, status.stderr);
  t.match(JSON.parse(status.stdout), { registry: '1000', network: { id: 'lab' }, entries: { nodes: 4, slots: 4, rules: 3 } });
  const dev = await runCli(['node', 'retire', 'n1', '--endpoint', chain!.endpoint, '--registry', '1000', '--suri', '//Bob'], other);
  t.equal(dev.code, 2);
  t.match(dev.stderr, /dev key "\/\/Bob" is only accepted on the local lab chain/);

  // A second registry on the same chain, created with `chain init` and read by its number.
  const init = await runCli(['chain', 'init', '--endpoint', chain!.endpoint, '--network', 'other', '--collections', '2000', '--suri', '//Dave', '--json'], env);
  t.equal(init.code, 0, init.stderr);
  t.match(JSON.parse(init.stdout), { registry: '2000', block: { hash: HASH } });
  const second = await runCli(['chain', 'snapshot', '--registry', '2000', '--json'], env);
  t.equal(second.code, 0, second.stderr);
  t.match(JSON.parse(second.stdout), { network: { id: 'other' }, dvcis: [], nodes: [], slots: [], rules: [], issues: [] });
  const taken = await runCli(['chain', 'init', '--network', 'again', '--collections', '2001', '--suri', '//Dave'], env);
  t.equal(taken.code, 2);
  t.match(taken.stderr, /collection 2001 already exists/);
});

t.test('chain up again resumes the stored chain', async (t) => {
  t.equal(await chain!.stop(), 0, 'Ctrl-C stops cleanly');
  chain = await chainUp([], env);
  t.match(chain.log(), /resuming the local chain/);
  const snap = await runCli(['chain', 'snapshot', '--json'], env);
  t.equal(snap.code, 0, snap.stderr);
  const s = JSON.parse(snap.stdout);
  t.same(s.nodes.map((n: { id: string }) => n.id), ['n1', 'n2', 'n3', 'n9']);
  t.same(s.slots.find((x: { id: string }) => x.id === 'app-1'), { id: 'app-1', owner: s.network.operator, node: 'n9', vcpus: 2, memoryMiB: 2048, diskGiB: 20, image: 'debian-12', state: 'assigned', groups: ['app'], seq: 3 });
  const retire = await runCli(['node', 'retire', 'n2', '--suri', '//Charlie'], env);
  t.equal(retire.code, 0, `its owner withdraws it after the restart: ${retire.stderr}`);
});
