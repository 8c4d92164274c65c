/**
 * Slots as VMs, driven from the chain: a lab of two nodes whose agents run with --slots; the
 * lab's slots (web-1 on n1, rpc-1 on n2) are registered with the test slot image and booted by
 * their nodes. Traffic is made from inside the slots, typed on each guest's out-of-band console
 * (its second serial port), and it gets through exactly where the chain's rules allow: web-1 to
 * rpc-1 by ICMP and TCP 9944 across the WireGuard overlay; not TCP 8080 (no rule), not the other
 * way round, not the slot's own node. `sub0 slot status` on a node shows what its agent runs;
 * `sub0 slot image-add` takes an image by content and refuses a file that is not one.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildSlotImage } from '../../bootimage/build/slot-image.js';
import { compile } from '../../fabric/compile.js';
import { useControlLab } from '../helpers/control-lab.js';
import { OpsConsole } from '../../lab/ops-console.js';
import { runCli } from '../helpers/run-cli.js';

const work = mkdtempSync(join(tmpdir(), 'sub0-vmslots-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const image = await buildSlotImage({ out: work, cache: process.env.SUB0_IMAGE_CACHE ?? '/var/cache/sub0/image' });

t.test('VM slots reach each other over the overlay exactly as the chain\'s rules allow', async (t) => {
  const cl = await useControlLab(t, { nodes: 2, broker: 'embedded', vmSlots: image });
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

  const web1 = await OpsConsole.open(join(cl.node('n1').stateDir, 'slots/web-1/ops.sock'));
  const rpc1 = await OpsConsole.open(join(cl.node('n2').stateDir, 'slots/rpc-1/ops.sock'));
  t.teardown(() => {
    web1.close();
    rpc1.close();
  });
  // The guests boot after QEMU starts: their shells answer once up.
  await web1.ready(120_000);
  await rpc1.ready(120_000);
  t.equal((await web1.run('true')).code, 0, 'web-1\'s console answers');
  t.equal((await rpc1.run('true')).code, 0, 'rpc-1\'s console answers');

  // Across nodes, over WireGuard: the first packets may wait for the handshake.
  t.equal((await web1.run(`ping -c 3 -w 20 ${rpc}`, 60_000)).code, 0, 'web-1 pings rpc-1 (rule ping-rpc)');
  t.equal((await web1.run(`echo | nc -w 3 ${rpc} 9944`)).code, 0, 'web-1 reaches rpc-1 on TCP 9944 (rule web-to-rpc)');
  t.not((await web1.run(`echo | nc -w 3 ${rpc} 8080`)).code, 0, 'not on TCP 8080: no rule allows it');
  t.not((await rpc1.run(`ping -c 2 -W 2 ${web}`)).code, 0, 'rpc-1 cannot ping web-1: the rule goes one way');
  t.not((await web1.run(`ping -c 2 -W 2 ${n1}`)).code, 0, 'web-1 cannot reach its own node\'s overlay address');
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
