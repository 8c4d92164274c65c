/**
 * The README's first command as a user runs it: `sub0 lab up` (detached), then what it prints to
 * try next, each as its own process: a ping that a rule allows, one no rule allows, the mesh
 * status, a rule submitted on chain and its effect, and `sub0 lab down` removing everything.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli } from '../controller/chain/cli-process.js';

const home = mkdtempSync(join(tmpdir(), 'sub0-labcli-'));
const env = { SUB0_HOME: home };
t.teardown(async () => {
  await runCli(['lab', 'down'], env);
  rmSync(home, { recursive: true, force: true });
});

t.test('lab up, the steps it suggests, lab down', async (t) => {
  const up = await runCli(['lab', 'up', '--detach', '--nodes', '3'], env);
  t.equal(up.code, 0, `lab up exits 0 once the lab runs${up.code ? `\n${up.stdout}\n${up.stderr}` : ''}`);
  t.match(up.stdout, /\[lab +[\d.]+s\] 1\. network namespaces/, 'it shows its steps');
  t.match(up.stdout, /The lab is up/);
  t.match(up.stdout, /sub0 lab ping web-1 rpc-1/, 'and what to try next');
  const shown = await runCli(['lab', 'show', '--json'], env);
  const lab = JSON.parse(shown.stdout) as { nodes: { netns: string }[]; pid: number };
  t.equal(lab.nodes.length, 3);

  const allowed = await runCli(['lab', 'ping', '-c', '1', 'web-1', 'rpc-1'], env);
  t.equal(allowed.code, 0, 'web-1 -> rpc-1 answers (rule ping-rpc)');
  const denied = await runCli(['lab', 'ping', '-c', '1', 'web-1', 'db-1'], env);
  t.not(denied.code, 0, 'web-1 -> db-1 gets no answer');
  t.match(denied.stdout, /no answer: the ACL drops what no rule allows/, 'and says why');

  const status = await runCli(['mesh', 'status', '--json'], env);
  t.equal(status.code, 0, `mesh status runs${status.code ? `: ${status.stderr}` : ''}`);
  const mesh = JSON.parse(status.stdout) as { nodes: { node: string; health: string; reason: string | null; status: { handshakes: unknown[]; counts: { aclEntries: number } } | null }[] };
  t.same(mesh.nodes.map((n) => [n.node, n.health]), [['n1', 'ok'], ['n2', 'ok'], ['n3', 'ok']], `every node runs its published config (${mesh.nodes.map((n) => `${n.node}: ${n.health}${n.reason ? ` ${n.reason}` : ''}`).join('; ')})`);
  t.ok(mesh.nodes.every((n) => n.status && n.status.handshakes.length === 2), 'each reports its two peers');
  const table = await runCli(['mesh', 'status'], env);
  t.match(table.stdout, /NODE\s+DVCI\s+HEALTH\s+APPLIED/, 'as a table for people');

  const allow = await runCli(['acl', 'allow', 'web-db', '--from', 'slot:web-1', '--to', 'slot:db-1', '--proto', 'icmp', '--suri', '//Alice'], env);
  t.equal(allow.code, 0, `the rule goes on chain${allow.code ? `: ${allow.stderr}` : ''}`);
  let passed = false;
  // The rule is final when the command returns; the nodes enforce it a moment later.
  for (let i = 0; i < 10 && !passed; i++) passed = (await runCli(['lab', 'ping', '-c', '1', 'web-1', 'db-1'], env)).code === 0;
  t.ok(passed, 'web-1 -> db-1 answers once the rule is on chain');

  const down = await runCli(['lab', 'down'], env);
  t.equal(down.code, 0);
  t.match(down.stdout, /lab stopped/);
  t.ok(lab.nodes.every((n) => !existsSync(`/run/netns/${n.netns}`)), 'its namespaces are gone');
  const after = await runCli(['lab', 'ping', 'web-1', 'rpc-1'], env);
  t.match(after.stderr, /no lab is running/, 'and the lab commands say so');
});
