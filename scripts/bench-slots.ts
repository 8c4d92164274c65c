/**
 * bench:slots — what the control path adds to a slot VM's own boot, both measured in this run:
 *  - "vm boot, tcg" (the baseline): QEMU start to the guest's first answer to a ping sent every
 *    0.1 s over its tap, no control path: the test slot image, confined as the agent confines it,
 *    started directly in a namespace of the bench's own;
 *  - "control overhead": in a lab of two nodes running slots as VMs, the chain transaction that
 *    assigns a new slot to n2, to the slot answering on its overlay address: pinged every 0.1 s
 *    from web-1 (a VM on n1) across WireGuard, as the rule web -> rpc allows; minus the baseline.
 *    The path: the extrinsic finalized, the controller's compile and signed publish, the agent's
 *    check and apply (WireGuard, routes, ACL on both nodes), the slot's image check, tap, guard,
 *    ACL, cgroup, QEMU start, and the guest's boot.
 * Target: the control path adds under 1 s. Medians of BENCH_TRIALS (3). Prints a table, then one
 * JSON line per figure.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildSlotImage } from '../bootimage/build/slot-image.js';
import { defaultImageCache } from '../bootimage/paths.js';
import { formatIpv4, preferredAddress } from '../fabric/address.js';
import { ControlLab, LAB_NETWORK } from '../lab/control-lab.js';
import { createNetns, deleteNetns, enterNetns, netnsPids } from '../lab/netns.js';
import { ImageStore } from '../overlay/slots/image-store.js';
import { slotMac, slotTap } from '../overlay/slots/qemu-args.js';
import { detectCgroups, removeSlotCgroup, slotLimits } from '../overlay/slots/slot-cgroup.js';
import { prepareJail } from '../overlay/slots/slot-jail.js';
import { realKvm, unwireSlot, wireSlot } from '../overlay/slots/slot-net.js';
import { SlotVm, slotFiles } from '../overlay/slots/slot-vm.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const say = (s: string) => process.stderr.write(`${s}\n`);
const accel = realKvm() ? 'kvm' : 'tcg';

const dir = mkdtempSync(join(tmpdir(), 'sub0-bench-slots-'));
const cleanup: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
const cleanUp = async () => {
  for (const c of cleanup.splice(0).reverse()) await Promise.resolve().then(c).catch(() => undefined);
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanUp().finally(() => process.exit(130)));

/** Pings `addr` every 0.1 s (iputils, in this process's namespace) until the first reply. */
function firstReply(addr: string, timeoutS = 120): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('ping', ['-n', '-i', '0.1', '-w', String(timeoutS), addr], { stdio: ['ignore', 'pipe', 'ignore'] });
    let done = false;
    p.stdout.on('data', (d: Buffer) => {
      if (done || !/bytes from/.test(d.toString())) return;
      done = true;
      p.kill();
      resolve();
    });
    p.once('exit', () => done || reject(new Error(`${addr} never answered within ${timeoutS} s`)));
  });
}

try {
  say('building the test slot image (inputs cached)...');
  const image = await buildSlotImage({ out: join(dir, 'image'), cache: defaultImageCache() });

  // 1. The baseline: the VM alone.
  const boots: number[] = [];
  {
    const ns = `s0-bslot-${process.pid}`;
    createNetns(ns);
    const back = await enterNetns(ns);
    const leave = () => {
      back();
      for (const pid of netnsPids(ns)) if (pid !== process.pid) process.kill(pid, 'SIGKILL');
      deleteNetns(ns);
    };
    cleanup.push(leave);
    const store = new ImageStore(join(dir, 'store'));
    const { kernel, initrd } = await store.boot(await store.add(image.file));
    const slots = join(dir, 'slots');
    const cgroups = detectCgroups();
    for (let k = 0; k < TRIALS; k++) {
      const id = `bench-boot-${k}`;
      const ipv4 = `100.64.8.${10 + k}/32`;
      const ipv6 = `fd00:8::${10 + k}/128`;
      const tap = slotTap(id);
      await wireSlot(tap, slotMac(id), ipv4, ipv6);
      const jail = prepareJail(slots, id, cgroups, slotLimits(1, 128, accel));
      const t0 = performance.now();
      const vm = await SlotVm.start({ id, vcpus: 1, memoryMiB: 128, kernel, initrd, tap, ipv4, ipv6, accel }, slotFiles(slots, id), 1, undefined, jail);
      await firstReply(ipv4.split('/')[0]!);
      boots.push((performance.now() - t0) / 1000);
      await vm.stop();
      await unwireSlot(tap);
      await removeSlotCgroup(cgroups, id);
      say(`vm boot ${k + 1}: ${boots.at(-1)!.toFixed(2)} s`);
    }
    cleanup.pop();
    leave();
  }

  // 2. Through the chain: a lab of two nodes with slot VMs (web-1 on n1, rpc-1 on n2).
  const home = mkdtempSync(join(tmpdir(), 'sub0-bench-slots-lab-'));
  say('starting a lab of two nodes with slot VMs...');
  const cl = await ControlLab.start({ home, log: pino({ level: 'error' }, pino.destination(2)), tag: 'bs', nodes: 2, broker: 'embedded', vmSlots: image });
  cleanup.push(async () => {
    await cl.destroy();
    rmSync(home, { recursive: true, force: true });
  });
  const web1 = await cl.slotConsole('web-1');
  cleanup.push(() => web1.close());
  const totals: number[] = [];
  const applied: number[] = [];
  for (let k = 0; k < TRIALS; k++) {
    const id = `rpc-bench-${k}`;
    const addr = formatIpv4(preferredAddress(LAB_NETWORK, 'slot', { id }));
    // The observer starts first: from inside web-1, a ping every 0.1 s until the first reply.
    const answered = web1.run(`ping -i 0.1 -w 120 ${addr} | grep -m 1 -q 'bytes from'`, 150_000);
    const t0 = performance.now();
    const tx = await cl.submit([{ op: 'create', kind: 'slot', fields: { id, node: 'n2', state: 'assigned', vcpus: 1, memoryMiB: 128, diskGiB: 1, image: image.ref, groups: ['rpc'] } }]);
    const final = performance.now();
    await cl.waitApplied('n2', tx.block, 60_000);
    applied.push((performance.now() - t0) / 1000);
    const r = await answered;
    if (r.code !== 0) throw new Error(`${id} (${addr}) never answered web-1`);
    totals.push((performance.now() - t0) / 1000);
    if (cl.slotAddress(id).v4 !== addr) throw new Error(`${id} got ${cl.slotAddress(id).v4}, not its preferred ${addr}: the figure is not of this slot`);
    say(`through the chain ${k + 1}: finalized ${((final - t0) / 1000).toFixed(2)} s, applied on n2 ${applied.at(-1)!.toFixed(2)} s, answering ${totals.at(-1)!.toFixed(2)} s`);
    await cl.submit([{ op: 'retire', kind: 'slot', id }]);
  }

  const boot = median(boots);
  const total = median(totals);
  const overhead = total - boot;
  const rows = [
    ['case', 'value', 'baseline', 'ratio', 'target'],
    [`vm boot, ${accel} (median of ${TRIALS})`, `${boot.toFixed(2)} s`, '', '', ''],
    [`chain tx to answering (median of ${TRIALS})`, `${total.toFixed(2)} s (config applied ${median(applied).toFixed(2)} s)`, `vm boot ${boot.toFixed(2)} s`, (total / boot).toFixed(2), ''],
    ['control overhead', `${overhead.toFixed(2)} s`, '', '', `< 1 s: ${overhead < 1 ? 'met' : 'NOT met'}`],
  ];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
  console.log(JSON.stringify({ bench: 'slots', case: `vm boot, ${accel}`, metric: 's', value: Number(boot.toFixed(2)), trials: TRIALS }));
  console.log(JSON.stringify({ bench: 'slots', case: 'control overhead', metric: 's', value: Number(overhead.toFixed(2)), totalS: Number(total.toFixed(2)), appliedS: Number(median(applied).toFixed(2)), baseline: `vm boot, ${accel}`, baselineS: Number(boot.toFixed(2)), ratio: Number((total / boot).toFixed(2)), trials: TRIALS, target: 1 }));
} finally {
  await cleanUp();
}
