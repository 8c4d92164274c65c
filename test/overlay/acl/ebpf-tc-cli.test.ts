// The eBPF driver attached through iproute2's tc (the fallback where libbpf lacks bpf_tc_*), and
// createAclDriver's choice: eBPF here, nftables when asked or when eBPF cannot load, with the reason.
import { dirname } from 'node:path';
import { rmSync } from 'node:fs';
import t from 'tap';
import { aclKey, type AclTuple } from '../../../fabric/dataplane-state.js';
import { run } from '../../../overlay/acl/exec.js';
import { LabAgent } from '../../../lab/acl/lab-agent.js';
import { createLab, inNs, LAB_GUARDED, type Lab } from '../../../lab/acl/netns-lab.js';

const pinRoot = `/run/sub0-test-${process.pid}/bpf`;
let lab: Lab | undefined;
let a: LabAgent | undefined;
let b: LabAgent | undefined;

t.teardown(async () => {
  await a?.close();
  await b?.close();
  await lab?.destroy();
  await run('umount', [pinRoot]);
  rmSync(dirname(pinRoot), { recursive: true, force: true }); // the per-run directory holding the mount
});

const filters = async (l: Lab) => {
  let out = '';
  for (const dir of ['ingress', 'egress']) out += await inNs(l.a.ns, 'tc', ['filter', 'show', 'dev', l.a.ifname, dir]);
  return out;
};

t.test('attach through `tc filter replace ... bpf da`', async (t) => {
  lab = await createLab(`at${process.pid % 100000}`, 13);
  a = LabAgent.spawn(lab.a.ns);
  b = LabAgent.spawn(lab.b.ns);
  await b.listen(8080);
  await b.listen(8082);
  const drv = await a.driver({ prefer: 'ebpf', pinDir: pinRoot, attachVia: 'tc' });
  t.equal(drv.kind, 'ebpf');
  t.equal(drv.fallbackReason, undefined, 'no fallback reason when eBPF is in force');
  await drv.attach(lab.a.ifname, LAB_GUARDED);
  const f = await filters(lab);
  t.match(f, /acl_eth.*direct-action/, 'filter in place, direct-action');
  t.equal(f.match(/direct-action/g)?.length, 2, 'on ingress and egress');
  const allow: AclTuple = { src: `${lab.a.v4}/32`, dst: `${lab.b.v4}/32`, proto: 'tcp', ports: [8080, 8080] };
  await drv.apply([{ op: 'acl-add', key: aclKey(allow), entry: allow }]);
  t.ok(await a.connect(lab.b.v4, 8080), 'allowed passes');
  t.notOk(await a.connect(lab.b.v4, 8082, 400), 'the rest drops');
  await lab.recreateLink();
  t.equal((await filters(lab)).match(/acl_eth/g), null, 'a re-created interface has no filter');
  await drv.attach(lab.a.ifname, LAB_GUARDED);
  t.ok(await a.connect(lab.b.v4, 8080), 're-attached: allowed passes');
  t.notOk(await a.connect(lab.b.v4, 8082, 400), 're-attached: the rest drops');
  await drv.destroy();
  t.equal((await filters(lab)).match(/acl_eth/g), null, 'destroy detaches');
  t.ok(await a.connect(lab.b.v4, 8082), 'and traffic flows unfiltered');
});

t.test('createAclDriver: nftables when preferred, with the reason', async (t) => {
  const drv = await a!.driver({ prefer: 'nftables', pinDir: pinRoot });
  t.equal(drv.kind, 'nftables');
  t.match(drv.fallbackReason, /preferred/);
});

t.test('createAclDriver falls back to nftables when the eBPF object cannot load, and says why', async (t) => {
  const drv = await a!.driver({ pinDir: pinRoot, objectPath: '/nonexistent/acl.bpf.o' });
  t.equal(drv.kind, 'nftables');
  t.match(drv.fallbackReason, /cannot open \/nonexistent\/acl.bpf.o/);
});
