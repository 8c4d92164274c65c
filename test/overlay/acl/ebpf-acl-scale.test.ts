// A rule from a group of 10,000 slots to a group of 10 in the real kernel, through the eBPF driver:
// the maps hold addresses plus one policy entry (read with bpftool, not the driver's reader), the
// rule lets exactly its port through, and revoking it for one slot cuts that slot's open flow.
// And an agent upgraded from the pair layout: its rules move to the identity maps, open flows stay.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import t from 'tap';
import { aclKey, type AclTuple } from '../../../fabric/dataplane-state.js';
import type { AclDriver, AclOp } from '../../../overlay/drivers.js';
import { run } from '../../../overlay/acl/exec.js';
import { groupTuples } from '../../../lab/bench/bench-acl.js';
import { LabAgent } from '../../../lab/acl/lab-agent.js';
import { createLab, LAB_GUARDED, type Lab } from '../../../lab/acl/netns-lab.js';

const pinRoot = `/run/sub0-test-${process.pid}/bpf`;
let lab: Lab;
let a: LabAgent;
let b: LabAgent;
let drv: AclDriver;

t.before(async () => {
  lab = await createLab(`as${process.pid % 100000}`, 16);
  a = LabAgent.spawn(lab.a.ns);
  b = LabAgent.spawn(lab.b.ns);
  await b.listen(9944);
  await b.listen(9945);
});
t.teardown(async () => {
  await drv?.destroy().catch(() => {});
  await a?.close();
  await b?.close();
  await lab?.destroy();
  await run('umount', [pinRoot]);
  rmSync(dirname(pinRoot), { recursive: true, force: true });
});

/** The pin of a map of A's interface. */
function pin(map: string): string {
  const [net] = readdirSync(pinRoot).filter((d) => d.startsWith('net-'));
  return `${pinRoot}/${net}/${lab.a.ifname}/${map}`;
}

/** Entries of a pinned map, counted by bpftool. */
async function entries(map: string): Promise<number> {
  const r = await run('bpftool', ['-j', 'map', 'dump', 'pinned', pin(map)]);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

const ops = (op: AclOp['op'], ts: readonly AclTuple[]): AclOp[] => ts.map((e) => ({ op, key: aclKey(e), entry: e }));

t.test('10,000 x 10 pairs: 10,010 identities, one policy entry, enforced', async (t) => {
  drv = await a.driver({ prefer: 'ebpf', pinDir: pinRoot });
  await drv.attach(lab.a.ifname, LAB_GUARDED);
  const tuples = groupTuples(10_000, 10, lab.a.v4, lab.b.v4, 9944);
  t.equal(tuples.length, 100_000);
  t.notOk(await a.connect(lab.b.v4, 9944, 300), 'nothing allowed yet');
  await drv.apply(ops('acl-add', tuples));
  t.equal(await entries('acl_ident'), 10_010, 'acl_ident: one entry per address');
  t.equal(await entries('acl_policy'), 1, 'acl_policy: one entry for the rule');
  t.ok(await a.connect(lab.b.v4, 9944), 'a slot of the 10,000 reaches one of the 10 on the rule\'s port');
  t.notOk(await a.connect(lab.b.v4, 9945, 300), 'and not on another port');
  t.equal((await drv.observe({ fresh: true })).size, 100_000, 'a fresh observe reads the 100,000 tuples back from the two maps');

  const conn = await a.open(lab.b.v4, 9944);
  t.ok(conn !== null && (await a.echo(conn)), 'an open flow');
  const mine = tuples.filter((x) => x.src === `${lab.a.v4}/32`);
  await drv.apply(ops('acl-remove', mine));
  t.notOk(await a.echo(conn!, 300), 'the slot leaves the group: its open flow is cut');
  t.notOk(await a.connect(lab.b.v4, 9944, 300), 'and it connects no more');
  t.equal(await entries('acl_ident'), 10_009, 'its identity entry is gone');
  t.equal(await entries('acl_policy'), 1, 'the other 9,999 still share one policy entry');
  await drv.destroy();
});

t.test('an agent upgraded from the pair layout keeps open flows and moves its rules to the identity maps', async (t) => {
  const x: AclTuple = { src: `${lab.a.v4}/32`, dst: `${lab.b.v4}/32`, proto: 'tcp', ports: [9944, 9944] };
  const old = await a.driver({ prefer: 'ebpf', pinDir: pinRoot, layout: 'pairs' });
  await old.attach(lab.a.ifname, LAB_GUARDED);
  await old.apply(ops('acl-add', [x]));
  t.equal(await entries('acl_rules'), 1, 'the earlier agent keeps its rule in acl_rules');
  const conn = await a.open(lab.b.v4, 9944);
  t.ok(conn !== null && (await a.echo(conn)), 'a flow opened under the earlier agent');

  drv = await a.driver({ prefer: 'ebpf', pinDir: pinRoot }); // the upgraded agent starts
  await drv.attach(lab.a.ifname, LAB_GUARDED);
  t.notOk(existsSync(pin('acl_rules')), 'acl_rules is unpinned');
  t.same([...(await drv.observe()).keys()], [], 'the identity maps start empty');
  t.ok(await a.echo(conn!), 'the open flow still passes (acl_flows kept)');
  t.notOk(await a.connect(lab.b.v4, 9944, 300), 'a new connection waits for the first pass');
  await drv.apply(ops('acl-add', [x]));
  t.ok(await a.connect(lab.b.v4, 9944), 'after it, new connections pass');
  t.same([await entries('acl_ident'), await entries('acl_policy')], [2, 1]);
});
