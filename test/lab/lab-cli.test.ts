/**
 * The README's first command as a user runs it: `sub0 lab up` (detached), then what it prints to
 * try next, each as its own process: a ping that a rule allows, one no rule allows, the mesh
 * status, a rule submitted on chain and its effect, and `sub0 lab down` removing everything.
 * Then `sub0 lab up --vm-slots`: the slots as VMs, pinged from inside one.
 */
import { spawnSync } from 'node:child_process';
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

t.test('lab up --vm-slots: the slots are VMs, and lab ping pings from inside one over the overlay', async (t) => {
  const up = await runCli(['lab', 'up', '--detach', '--nodes', '2', '--vm-slots'], env);
  t.equal(up.code, 0, `lab up --vm-slots exits 0 once the lab runs${up.code ? `\n${up.stdout}\n${up.stderr}` : ''}`);
  t.match(up.stdout, /\d+\. the test slot image/, 'it builds the slot image first');
  t.match(up.stdout, /\d+\. waiting for the slot VMs to boot/, 'and waits for the VMs');
  const lab = JSON.parse((await runCli(['lab', 'show', '--json'], env)).stdout) as { vmSlots?: boolean; nodes: { id: string; stateDir: string }[] };
  t.equal(lab.vmSlots, true);
  // No rule allows this direction (the two guests boot alike, so their pings may carry the same
  // ICMP identifier: a request still never rides a flow the other end opened).
  const back = await runCli(['lab', 'ping', '-c', '1', 'rpc-1', 'web-1'], env);
  t.not(back.code, 0, 'rpc-1 -> web-1: no rule, no answer');
  t.match(back.stdout, /no answer: the ACL drops what no rule allows/);
  const ping = await runCli(['lab', 'ping', '-c', '2', 'web-1', 'rpc-1'], env);
  t.equal(ping.code, 0, `web-1 pings rpc-1${ping.code ? `: ${ping.stdout}${ping.stderr}` : ''}`);
  t.match(ping.stdout, /^web-1 \([\d.]+, a VM on n1\) -> rpc-1 \([\d.]+ on n2\)$/m, 'from inside the web-1 VM');
  t.match(ping.stdout, /2 packets transmitted, 2 packets received/, 'the guest\'s own ping output');
  const slots = await runCli(['slot', 'status', '--state-dir', lab.nodes[0]!.stateDir], env);
  t.match(slots.stdout, /^web-1 +running /m, 'sub0 slot status on n1: web-1 running');
  const down = await runCli(['lab', 'down'], env);
  t.equal(down.code, 0);
  t.equal(spawnSync('pgrep', ['-f', 'sub0-slot-']).status, 1, 'no QEMU is left');
});
