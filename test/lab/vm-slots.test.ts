/**
 * Slots as VMs, driven from the chain: a lab of two nodes whose agents run with --slots; the
 * lab's slots (web-1 on n1, rpc-1 on n2) are registered with the test slot image and booted by
 * their nodes. Traffic is made from inside the slots, typed on each guest's out-of-band console
 * (its second serial port), and it gets through exactly where the chain's rules allow: web-1 to
 * rpc-1 by ICMP and TCP 9944 across the WireGuard overlay; not TCP 8080 (no rule), not the other
 * way round, not the slot's own node. Then, each by a transaction through the CLI: a second slot
 * on n1 (slot to slot on one node obeys the rules too), a resource change (restarted with it, disk
 * kept), a move to the other node, a retirement. `sub0 slot status` and `sub0 mesh status` show
 * what runs; `sub0 slot image-add` takes an image by content and refuses a file that is not one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildSlotImage } from '../../bootimage/build/slot-image.js';
import { compile } from '../../fabric/compile.js';
import { useControlLab } from '../helpers/control-lab.js';
import { runCli } from '../helpers/run-cli.js';
import { runCli as runCliAsync } from '../controller/chain/cli-process.js';

const work = mkdtempSync(join(tmpdir(), 'sub0-vmslots-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const image = await buildSlotImage({ out: work, cache: process.env.SUB0_IMAGE_CACHE ?? '/var/cache/sub0/image' });

t.test('VM slots reach each other over the overlay exactly as the chain\'s rules allow', async (t) => {
  const cl = await useControlLab(t, { nodes: 2, broker: 'embedded', vmSlots: image });
  // The CLI against this lab: its chain's record is in the lab's home (the local chain, dev keys).
  const chainCli = (args: string[]) => runCliAsync(args, { SUB0_HOME: cl.home });
  for (const [node, slot] of [['n1', 'web-1'], ['n2', 'rpc-1']] as const) {
    const s = await cl.waitStatus(node, (s) => s.slots?.some((x) => x.id === slot && x.phase === 'running') ?? false, `${slot} running on ${node}`, 180_000);
    t.ok(s.slots!.find((x) => x.id === slot)!.pid, `${node} runs ${slot} as a VM`);
  }
  // What an operator on n1 sees: `sub0 slot status` reads the agent's status.json.
  const st = runCli(['slot', 'status', '--state-dir', cl.node('n1').stateDir]);
  t.equal(st.code, 0, st.stderr);
  t.match(st.stdout, /^SLOT +PHASE +UP +RESTARTS +RESOURCES +IMAGE +LAST ERROR\nweb-1 +running +\d+ s +0 +1 vCPU, 128 MiB, 1 GiB +sha256-/m, 'sub0 slot status: web-1 running');
  const json = JSON.parse(runCli(['slot', 'status', '--state-dir', cl.node('n1').stateDir, '--json']).stdout) as { id: string; image: string }[];
  t.same(json.map((x) => [x.id, x.image]), [['web-1', image.ref]], 'its image by content, as on chain');

  const head = await cl.client.finalizedHead();
  const configs = compile((await cl.registry.readSnapshot(head.hash)).snapshot).configs;
  const rpc = cl.slotAddress('rpc-1').v4;
  const web = cl.slotAddress('web-1').v4;
  const n1 = configs.get('n1')!.interface.addresses[0]!.split('/')[0]!;

  const web1 = await cl.slotConsole('web-1');
  const rpc1 = await cl.slotConsole('rpc-1');
  t.teardown(() => {
    web1.close();
    rpc1.close();
  });
  t.equal((await web1.run('true')).code, 0, 'web-1\'s console answers');
  t.equal((await rpc1.run('true')).code, 0, 'rpc-1\'s console answers');

  // Across nodes, over WireGuard: the first packets may wait for the handshake.
  t.equal((await web1.run(`ping -c 3 -w 20 ${rpc}`, 60_000)).code, 0, 'web-1 pings rpc-1 (rule ping-rpc)');
  t.equal((await web1.run(`echo | nc -w 3 ${rpc} 9944`)).code, 0, 'web-1 reaches rpc-1 on TCP 9944 (rule web-to-rpc)');
  t.not((await web1.run(`echo | nc -w 3 ${rpc} 8080`)).code, 0, 'not on TCP 8080: no rule allows it');
  t.not((await rpc1.run(`ping -c 2 -W 2 ${web}`)).code, 0, 'rpc-1 cannot ping web-1: the rule goes one way');
  t.not((await web1.run(`ping -c 2 -W 2 ${n1}`)).code, 0, 'web-1 cannot reach its own node\'s overlay address');
  t.not((await web1.run(`ping -c 2 -W 2 ${cl.node('n1').underlay}`)).code, 0, 'nor its node\'s underlay address');
  t.not((await web1.run(`echo | nc -w 3 ${cl.node('n1').underlay} ${cl.node('n1').listenPort}`)).code, 0, 'nor a port on it');

  // What an operator of the network sees: every node's signed status, with its slots.
  const mesh = await chainCli(['mesh', 'status', '--json', '--broker', cl.brokerUrl, '--state-dir', cl.controllerDir]);
  t.equal(mesh.code, 0, mesh.stderr);
  const reported = (JSON.parse(mesh.stdout) as { nodes: { node: string; status: { slots?: { slot: string; phase: string }[] } | null }[] }).nodes.map((n) => [n.node, n.status?.slots?.map((x) => `${x.slot}:${x.phase}`)]);
  t.same(reported, [['n1', ['web-1:running']], ['n2', ['rpc-1:running']]], 'sub0 mesh status: each node\'s slots, from its signed status');

  // ---- A second slot on n1, defined on chain: slot to slot on one node obeys the same rules.
  const defined = await chainCli(['slot', 'define', 'db-1', '--vcpus', '1', '--memory', '128', '--disk', '1', '--image', image.ref, '--group', 'db', '--node', 'n1', '--suri', '//Alice']);
  t.equal(defined.code, 0, defined.stderr);
  const db1 = await cl.slotConsole('db-1', 180_000);
  t.teardown(() => db1.close());
  const db = cl.slotAddress('db-1').v4;
  t.equal(cl.slotAddress('db-1').node, 'n1', 'db-1 runs on n1, beside web-1');
  t.not((await web1.run(`ping -c 2 -W 2 ${db}`)).code, 0, 'web-1 cannot ping db-1 on the same node: no rule');
  t.not((await db1.run(`ping -c 2 -W 2 ${web}`)).code, 0, 'nor db-1 web-1');
  t.equal((await rpc1.run(`echo | nc -w 3 ${db} 5432`)).code, 0, 'rpc-1 reaches db-1 on TCP 5432 (rule rpc-to-db), across nodes');
  const allowed = await chainCli(['acl', 'allow', 'web-db', '--from', 'slot:web-1', '--to', 'slot:db-1', '--proto', 'icmp', '--suri', '//Alice']);
  t.equal(allowed.code, 0, allowed.stderr);
  await cl.waitApplied('n1', (await cl.client.finalizedHead()).number);
  t.equal((await web1.run(`ping -c 2 -W 2 ${db}`)).code, 0, 'with a rule on chain, web-1 pings db-1 tap to tap');
  t.not((await db1.run(`ping -c 2 -W 2 ${web}`)).code, 0, 'and still not the other way round');

  // ---- Its resources changed on chain: restarted with them, its disk kept.
  const before = cl.status('n1')!.slots!.find((x) => x.id === 'db-1')!;
  const resized = await chainCli(['slot', 'resize', 'db-1', '--memory', '160', '--suri', '//Alice']);
  t.equal(resized.code, 0, resized.stderr);
  const after = (await cl.waitStatus('n1', (s) => s.slots?.some((x) => x.id === 'db-1' && x.memoryMiB === 160 && x.phase === 'running' && x.pid !== before.pid) ?? false, 'db-1 restarted with 160 MiB', 120_000)).slots!.find((x) => x.id === 'db-1')!;
  t.match(readFileSync(`/proc/${after.pid}/cmdline`, 'utf8').split('\0').join(' '), / -m 160 /, 'its new QEMU has 160 MiB');
  db1.close();
  const db1b = await cl.slotConsole('db-1', 180_000);
  t.teardown(() => db1b.close());
  t.match((await db1b.run('dd if=/dev/vda bs=16 count=1 2>/dev/null')).output, /^0{15}2$/m, 'its disk counted the second boot: kept across the restart');

  // ---- Moved to n2: stopped on n1, started there.
  const taps = () => execFileSync('ip', ['-n', cl.node('n1').netns, '-o', 'link', 'show'], { encoding: 'utf8' }).match(/s0v[0-9a-f]{10}/g) ?? [];
  t.equal(taps().length, 2, 'n1 has two slot taps');
  web1.close();
  const moved = await chainCli(['slot', 'assign', 'web-1', '--node', 'n2', '--suri', '//Alice']);
  t.equal(moved.code, 0, moved.stderr);
  await cl.waitStatus('n1', (s) => !s.slots?.some((x) => x.id === 'web-1'), 'web-1 gone from n1', 60_000);
  const web1b = await cl.slotConsole('web-1', 180_000);
  t.teardown(() => web1b.close());
  t.equal(cl.slotAddress('web-1').node, 'n2', 'web-1 now runs on n2');
  t.equal((await web1b.run(`ping -c 3 -w 20 ${rpc}`, 60_000)).code, 0, 'and pings rpc-1, now beside it on n2 (rule ping-rpc)');
  t.equal((await web1b.run(`ping -c 3 -w 20 ${db}`, 60_000)).code, 0, 'and db-1 on n1, now across nodes (rule web-db)');

  // ---- Retired on chain: stopped, its tap removed, its disk kept for the grace period.
  const dbPid = cl.status('n1')!.slots!.find((x) => x.id === 'db-1')!.pid!;
  db1b.close();
  const retired = await chainCli(['slot', 'retire', 'db-1', '--suri', '//Alice']);
  t.equal(retired.code, 0, retired.stderr);
  await cl.waitStatus('n1', (s) => (s.slots ?? []).length === 0, 'n1 runs no slot', 60_000);
  t.notOk(existsSync(`/proc/${dbPid}`), 'db-1\'s QEMU is gone');
  t.same(taps(), [], 'n1 has no slot tap left');
  t.ok(existsSync(join(cl.node('n1').stateDir, 'slots/db-1/disk.raw')), 'its disk waits out the grace period');
});

t.test('sub0 slot image-add prints the ref an image is named by, and refuses a file that is no image', async (t) => {
  const dir = mkdtempSync(join(work, 'node-'));
  const ok = runCli(['slot', 'image-add', image.file, '--state-dir', dir]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout.trim(), image.ref);
  writeFileSync(join(dir, 'junk.tar'), 'not a tar');
  const bad = runCli(['slot', 'image-add', join(dir, 'junk.tar'), '--state-dir', dir]);
  t.equal(bad.code, 2, 'refused as invalid input');
  t.match(bad.stderr, /is not a tar holding vmlinuz and initrd\.img/);
});
