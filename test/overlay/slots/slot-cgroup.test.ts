/**
 * Where a slot's limits go: the cgroup layout read from mountinfo (v2 when its cpu and memory
 * controllers are there, v1 otherwise), and the files and values for each. This machine has only
 * the v1 controllers (slot-vm.test.ts checks those on a live VM); the v2 layout is checked here
 * on a directory tree shaped like one.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { detectCgroups, ensureSlotCgroup, slotLimits } from '../../../overlay/slots/slot-cgroup.js';

const dir = mkdtempSync(join(tmpdir(), 'sub0-cgroup-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const line = (id: number, mount: string, fstype: string, opts: string) => `${id} 1 0:${id} / ${mount} rw,relatime shared:${id} - ${fstype} ${fstype} ${opts}`;

t.test('the limits follow the chain\'s resources', async (t) => {
  const kvm = slotLimits(2, 1024, 'kvm');
  t.same(kvm, { cpuQuotaUs: 200_000, cpuPeriodUs: 100_000, memoryBytes: (1024 + 128) * 2 ** 20, pidsMax: 256 }, 'vCPUs as CPU time per period, memory plus QEMU\'s own');
  t.equal(slotLimits(2, 1024, 'tcg').memoryBytes - kvm.memoryBytes, 64 * 2 ** 20, 'TCG adds its translation cache');
});

t.test('v1 controllers: found by their mount options', async (t) => {
  const info = [line(30, '/sys/fs/cgroup/cpu', 'cgroup', 'rw,cpu'), line(31, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'), line(32, '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'), line(33, join(dir, 'empty-v2'), 'cgroup2', 'rw')].join('\n');
  t.same(detectCgroups(info), { version: 1, cpu: '/sys/fs/cgroup/cpu', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' }, 'a cgroup2 mount without controllers does not count');
  t.equal(detectCgroups(line(30, '/sys/fs/cgroup/cpu', 'cgroup', 'rw,cpu')), undefined, 'no memory controller: none');
});

t.test('v2: preferred when it has the controllers; they are handed down, then the limits written', async (t) => {
  const root = join(dir, 'v2');
  mkdirSync(root);
  writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  writeFileSync(join(root, 'cgroup.subtree_control'), '');
  const layout = detectCgroups([line(30, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'), line(31, '/sys/fs/cgroup/cpu', 'cgroup', 'rw,cpu'), line(40, root, 'cgroup2', 'rw,nsdelegate')].join('\n'));
  t.same(layout, { version: 2, root });
  // A real cgroupfs makes these files itself; this tree stands in for it.
  mkdirSync(join(root, 'sub0-slots'));
  writeFileSync(join(root, 'sub0-slots/cgroup.controllers'), 'cpu memory pids\n');
  const procs = ensureSlotCgroup(layout, 'web-1', slotLimits(1, 128, 'kvm'));
  t.same(procs, [join(root, 'sub0-slots/web-1/cgroup.procs')]);
  t.equal(readFileSync(join(root, 'cgroup.subtree_control'), 'utf8'), '+cpu +memory +pids', 'the root hands its controllers down');
  t.equal(readFileSync(join(root, 'sub0-slots/cgroup.subtree_control'), 'utf8'), '+cpu +memory +pids', 'and sub0-slots to each slot');
  const read = (f: string) => readFileSync(join(root, 'sub0-slots/web-1', f), 'utf8');
  t.equal(read('cpu.max'), '100000 100000');
  t.equal(read('memory.max'), String(256 * 2 ** 20));
  t.equal(read('memory.swap.max'), '0', 'no swap: the memory limit is the limit');
  t.equal(read('pids.max'), '256');
  t.throws(() => ensureSlotCgroup(undefined, 'web-1', slotLimits(1, 128, 'kvm')), { code: 'unsupported', message: /does not start without its limits/ });
});
