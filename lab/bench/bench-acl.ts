/**
 * ACL benchmarks for `npm run bench:acl` (scripts/bench-acl.ts): the driver alone, real kernel, two lab
 * namespaces joined by a veth pair, the eBPF driver attached to A's end.
 *  - benchAclThroughput: iperf3 TCP throughput A -> B with no ACL and with the eBPF ACL holding
 *    `entries` tuples, in interleaved runs (the filter detached and re-attached between them, the
 *    maps kept), medians; the ratio is ACL / no ACL. Target: >= 0.95.
 *  - benchRuleToEnforcement: ms from the start of an acl-add apply to the first UDP packet of a
 *    1 ms probe that the new tuple lets through (apply + one round trip). Target: < 50 ms.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { aclKey, type AclTuple } from '../../fabric/dataplane-state.js';
import type { AclDriver, AclOp } from '../../overlay/drivers.js';
import { run } from '../../overlay/acl/exec.js';
import { LabAgent } from '../acl/lab-agent.js';
import { median } from './median.js';
import { createLab, inNs, LAB_GUARDED, type Lab } from '../acl/netns-lab.js';
import { TC_HANDLE, TC_PRIORITY } from '../../overlay/acl/tc-attach.js';

export interface ThroughputResult {
  readonly entries: number;
  readonly baselineBps: readonly number[];
  readonly aclBps: readonly number[];
  readonly baselineMedian: number;
  readonly aclMedian: number;
  /** Median of the per-pair ratios (each ACL run over the baseline run next to it). */
  readonly ratio: number;
  /** The program's own cost per packet (BPF_PROG_TEST_RUN, 10^6 repeats), ns. */
  readonly perPacketNs: { readonly flow: number; readonly denied: number; readonly unguarded: number };
}

export interface EnforceResult {
  readonly entries: number;
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
  /** How long applying all `entries` tuples took, ms. */
  readonly loadMs: number;
}

export interface BenchFigure {
  readonly bench: 'acl';
  readonly case: string;
  readonly metric: string;
  readonly value: number;
  readonly baseline?: string;
  readonly ratio?: number;
}

/** `count` distinct tuples between slot addresses, with `keep` among them. Deterministic. */
export function syntheticTuples(count: number, keep: readonly AclTuple[]): AclTuple[] {
  const out = new Map(keep.map((t) => [aclKey(t), t]));
  let x = 0x5b0c0de;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const slot = () => {
    const v = (100 << 24) | (96 << 16) | (rnd() & 0x1fffff);
    return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/32`;
  };
  while (out.size < count) {
    const lo = rnd() % 60000;
    const t: AclTuple = { src: slot(), dst: slot(), proto: (['tcp', 'udp'] as const)[rnd() & 1]!, ports: [lo, lo + (rnd() % 100)] };
    out.set(aclKey(t), t);
  }
  return [...out.values()];
}

const adds = (ts: readonly AclTuple[]): AclOp[] => ts.map((e) => ({ op: 'acl-add', key: aclKey(e), entry: e }));

interface Ctx {
  lab: Lab;
  a: LabAgent;
  b: LabAgent;
  drv: AclDriver;
  pinRoot: string;
}

async function withLab<T>(tag: string, n: number, fn: (c: Ctx) => Promise<T>): Promise<T> {
  const pinRoot = `/run/sub0-bench-${process.pid}/bpf`;
  const lab = await createLab(tag, n);
  const a = LabAgent.spawn(lab.a.ns);
  const b = LabAgent.spawn(lab.b.ns);
  try {
    const drv = await a.driver({ prefer: 'ebpf', pinDir: pinRoot });
    if (drv.kind !== 'ebpf') throw new Error(`eBPF unavailable: ${drv.fallbackReason}`);
    await drv.attach(lab.a.ifname, LAB_GUARDED);
    try {
      return await fn({ lab, a, b, drv, pinRoot });
    } finally {
      await drv.destroy().catch(() => {});
    }
  } finally {
    await a.close();
    await b.close();
    await lab.destroy();
    await run('umount', [pinRoot]);
    rmSync(dirname(pinRoot), { recursive: true, force: true }); // the per-run directory holding the mount
  }
}

async function iperf(lab: Lab, seconds: number): Promise<number> {
  // -A 0,1: client on CPU 0, server on CPU 1, so the two do not fight over one core run to run.
  const out = await inNs(lab.a.ns, 'iperf3', ['-c', lab.b.v4, '-t', String(seconds), '-A', '0,1', '-J']);
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second;
}

export async function benchAclThroughput(opts: { entries?: number; runs?: number; seconds?: number } = {}): Promise<ThroughputResult> {
  const entries = opts.entries ?? 10_000;
  const runs = opts.runs ?? 5;
  const seconds = opts.seconds ?? 3;
  return withLab(`bt${process.pid % 100000}`, 21, async ({ lab, drv, pinRoot }) => {
    const allow: AclTuple = { src: `${lab.a.v4}/32`, dst: `${lab.b.v4}/32`, proto: 'tcp', ports: [5201, 5201] };
    await drv.apply(adds(syntheticTuples(entries, [allow])));
    const server = spawn('nsenter', [`--net=/run/netns/${lab.b.ns}`, 'iperf3', '-s', '-p', '5201'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const filtered = async () => {
        let out = '';
        for (const dir of ['ingress', 'egress']) out += await inNs(lab.a.ns, 'tc', ['filter', 'show', 'dev', lab.a.ifname, dir]);
        return out.includes('acl_');
      };
      const detach = async () => {
        for (const dir of ['ingress', 'egress']) {
          await inNs(lab.a.ns, 'tc', ['filter', 'del', 'dev', lab.a.ifname, dir, 'pref', String(TC_PRIORITY), 'handle', `0x${TC_HANDLE.toString(16)}`, 'bpf']);
        }
      };
      const baselineBps: number[] = [];
      const aclBps: number[] = [];
      await iperf(lab, 1); // warm-up
      for (let i = 0; i < runs; i++) {
        // Alternate which goes first so drift (thermal, other load) hits both alike.
        for (const withAcl of i % 2 ? [true, false] : [false, true]) {
          if (withAcl) await drv.attach(lab.a.ifname, LAB_GUARDED);
          else if (await filtered()) await detach();
          if ((await filtered()) !== withAcl) throw new Error(`the ACL filter is ${withAcl ? 'missing' : 'still there'}`);
          (withAcl ? aclBps : baselineBps).push(await iperf(lab, seconds));
        }
      }
      const baselineMedian = median(baselineBps);
      const aclMedian = median(aclBps);
      // Pairs taken next to each other in time share the machine's state: their ratio is steadier
      // than the ratio of medians when something else runs on the machine.
      const ratio = median(aclBps.map((x, i) => x / baselineBps[i]!));
      const perPacketNs = await programCost(pinRoot, lab);
      return { entries, baselineBps, aclBps, baselineMedian, aclMedian, ratio, perPacketNs };
    } finally {
      server.kill();
    }
  });
}

export async function benchRuleToEnforcement(opts: { entries?: number; trials?: number } = {}): Promise<EnforceResult> {
  const entries = opts.entries ?? 10_000;
  const trials = opts.trials ?? 9;
  return withLab(`be${process.pid % 100000}`, 22, async ({ lab, a, b, drv }) => {
    await b.listenUdp(5353);
    const probe: AclTuple = { src: `${lab.a.v4}/32`, dst: `${lab.b.v4}/32`, proto: 'udp', ports: [5353, 5353] };
    const t0 = performance.now();
    await drv.apply(adds(syntheticTuples(entries - 1, [])));
    const loadMs = performance.now() - t0;
    const samplesMs: number[] = [];
    const op = (o: 'acl-add' | 'acl-remove'): AclOp[] => [{ op: o, key: aclKey(probe), entry: probe }];
    for (let i = 0; i < trials; i++) {
      await drv.apply(op('acl-remove'));
      if (await a.udp(lab.b.v4, 5353, 200)) throw new Error('probe passed without its tuple: the ACL is not enforcing');
      const ms = await a.timeToEnforce(op('acl-add'), lab.b.v4, 5353);
      if (ms === null) throw new Error('the added tuple never let the probe through');
      samplesMs.push(ms);
    }
    return { entries, samplesMs, medianMs: median(samplesMs), loadMs };
  });
}

/** An Ethernet + IPv4 + TCP SYN-less segment from src:40000 to dst:dport; checksums left zero. */
function tcpFrame(src: string, dst: string, dport: number): Buffer {
  const f = Buffer.alloc(14 + 20 + 20 + 64);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(f.length - 14, 16);
  f[22] = 64;
  f[23] = 6;
  src.split('.').forEach((o, i) => (f[26 + i] = Number(o)));
  dst.split('.').forEach((o, i) => (f[30 + i] = Number(o)));
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(dport, 36);
  f[46] = 0x50;
  f[47] = 0x10; // ACK
  return f;
}

/** ns per packet of the attached program with the live maps, via `bpftool prog run` (10^6 repeats). */
async function programCost(pinRoot: string, lab: Lab): Promise<ThroughputResult['perPacketNs']> {
  const pin = (await run('find', [pinRoot, '-name', 'acl_eth_*'])).stdout.trim().split('\n')[0]!;
  const once = async (frame: Buffer) => {
    const file = join(tmpdir(), `sub0-acl-frame-${process.pid}`);
    writeFileSync(file, frame);
    try {
      const r = await run('bpftool', ['prog', 'run', 'pinned', pin, 'data_in', file, 'repeat', '1000000']);
      const m = /duration \(average\): (\d+)ns/.exec(r.stdout + r.stderr);
      if (!m) throw new Error(`bpftool prog run: ${r.stderr.trim()}`);
      return Number(m[1]);
    } finally {
      rmSync(file, { force: true });
    }
  };
  return {
    flow: await once(tcpFrame(lab.a.v4, lab.b.v4, 5201)), // allowed: the first run records the flow
    denied: await once(tcpFrame(lab.a.v4, lab.b.v4, 5202)),
    unguarded: await once(tcpFrame(lab.a.v4Unguarded, lab.b.v4Unguarded, 5202)),
  };
}

/**
 * The JSON lines of the benchmark convention. Named "acl", not "overlay": these are the driver
 * alone on a plain veth, and must not be read as bench:overlay's figures of the same cases.
 */
export function aclFigures(tp: ThroughputResult, en: EnforceResult): BenchFigure[] {
  return [
    { bench: 'acl', case: `acl ${tp.entries} entries`, metric: 'throughput-ratio', value: round(tp.ratio, 3), baseline: 'no-acl' },
    { bench: 'acl', case: `acl ${tp.entries} entries`, metric: 'gbps', value: round(tp.aclMedian / 1e9, 2), baseline: 'no-acl', ratio: round(tp.ratio, 3) },
    { bench: 'acl', case: `acl ${tp.entries} entries`, metric: 'ns-per-packet', value: tp.perPacketNs.flow },
    // Driver apply -> first packet; the end-to-end 'rule change to enforcement' is bench-overlay's.
    { bench: 'acl', case: `acl apply to enforcement, ${en.entries} entries`, metric: 'ms', value: round(en.medianMs, 2) },
    { bench: 'acl', case: `acl load ${en.entries} entries`, metric: 'ms', value: round(en.loadMs, 1) },
  ];
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

