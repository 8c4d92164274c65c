import t from 'tap';
import { NodeConfig } from '../../fabric/node-config.js';
import { runCli } from '../helpers/run-cli.js';

t.test('sub0 compile --json prints every node config with its hash, and no issues', async (t) => {
  const r = runCli(['compile', '--snapshot', 'fabric/examples/lab.json', '--json']);
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.same(out.issues, []);
  t.same(out.configs.map((c: { config: { node: string } }) => c.config.node), ['n1', 'n2', 'n3']);
  for (const c of out.configs) {
    t.ok(NodeConfig.safeParse(c.config).success, `${c.config.node} matches the wire schema`);
    t.match(c.hash, /^[0-9a-f]{64}$/);
  }
});

t.test('sub0 compile --node prints one node, for people', async (t) => {
  const r = runCli(['compile', '--snapshot', 'fabric/examples/lab.json', '--node', 'n3']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^node n3 \(active, dvci lyon\) at block #42/);
  t.notMatch(r.stdout, /node n1/);
  t.match(r.stdout, /allow .* tcp +5432-5432 +\(rpc-to-db\)/);
  t.match(r.stdout, /no issues/);
});

t.test('a snapshot with mistakes: issues named by path and entry, the rest compiled, exit 3', async (t) => {
  const r = runCli(['compile', '--snapshot', 'fabric/examples/broken.json', '--json']);
  t.equal(r.code, 3, 'policy-check exit code');
  const out = JSON.parse(r.stdout);
  const seen = out.issues.map((i: { code: string; path: string; entryId: string }) => `${i.code} ${i.path} ${i.entryId}`).sort();
  t.same(seen, [
    'bad-key nodes[2].wgPublicKey n3',
    'impossible-resources slots[3] big-1',
    'overlapping-ports rules[3].ports[1] overlap',
    'unknown-node slots[2].node db-1',
  ]);
  t.same(out.configs.map((c: { config: { node: string } }) => c.config.node), ['n1', 'n2'], 'the good nodes still get configs');
});

t.test('bad invocations fail with one clear line', async (t) => {
  const missing = runCli(['compile', '--snapshot', 'no/such/file.json']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^sub0: not-found: no\/such\/file\.json: cannot read/m);
  const notJson = runCli(['compile', '--snapshot', 'package-lock.json', '--node', 'x']);
  t.equal(notJson.code, 2);
  t.match(notJson.stderr, /sub0: invalid-input: package-lock\.json: .*network/s);
  const unknownNode = runCli(['compile', '--snapshot', 'fabric/examples/lab.json', '--node', 'n9']);
  t.equal(unknownNode.code, 1);
  t.match(unknownNode.stderr, /node "n9" gets no config/);
  const help = runCli(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /compile/);
});
