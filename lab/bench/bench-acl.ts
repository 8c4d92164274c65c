/**
 * ACL benchmarks for `npm run bench:acl` (scripts/bench-acl.ts): the driver alone, real kernel, two lab
 * namespaces joined by a veth pair, the eBPF driver attached to A's end, in either map layout
 * (identities, what nodes run, or address pairs, the earlier design) and with either rule set
 * (`entries` random tuples, or one rule from a group of 10,000 slots to a group of 10).
 *  - benchAclThroughput: iperf3 TCP throughput A -> B with no ACL and with the eBPF ACL holding
 *    the rules, in interleaved runs (the filter detached and re-attached between them, the maps
 *    kept), medians; the ratio is ACL / no ACL. Target: >= 0.95. Also the kernel entries the
 *    rules use (read with bpftool) and the program's own cost per packet.
 *  - benchRuleToEnforcement: ms from the start of an acl-add apply to the first UDP packet of a
 *    1 ms probe that the new tuple lets through (apply + one round trip). Target: < 50 ms.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { aclKey, type AclTuple } from '../../fabric/dataplane-state.js';
import type { AclDriver, AclOp } from '../../overlay/drivers.js';
import type { AclLayout } from '../../overlay/acl/rule-maps.js';
import { run } from '../../overlay/acl/exec.js';
import { LabAgent } from '../acl/lab-agent.js';
import { median } from './median.js';
import { createLab, inNs, LAB_GUARDED, type Lab } from '../acl/netns-lab.js';
import { TC_HANDLE, TC_PRIORITY } from '../../overlay/acl/tc-attach.js';

/** The eBPF driver in one of its layouts, or the nftables fallback. */
export type BenchLayout = AclLayout | 'nftables';

/** The rules a bench case loads: `entries` random tuples, or the group of 10,000 to a group of 10. */
export type RuleCase = { readonly kind: 'random'; readonly entries: number } | { readonly kind: 'groups'; readonly sources: number; readonly destinations: number };

export function caseName(c: RuleCase): string {
  return c.kind === 'random' ? `${c.entries} entries` : `group ${c.sources} to ${c.destinations}`;
}

export interface ThroughputResult {
  readonly layout: AclLayout;
  readonly rules: RuleCase;
  /** Tuples the rules expand to. */
  readonly tuples: number;
  /** Entries in each rule map, as bpftool reads them. */
  readonly kernelEntries: Readonly<Record<string, number>>;
  /** How long applying all the tuples took, ms. */
  readonly loadMs: number;
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
  readonly layout: BenchLayout;
  readonly rules: RuleCase;
  /** How long applying the rules took before the trials, ms. */
  readonly loadMs: number;
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
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

/**
 * One rule from `sources` slots (A's address and synthetic ones) to `destinations` (B's and
 * synthetic ones), TCP to `port`: every pair, as the agent expands a rule between two groups.
 */
export function groupTuples(sources: number, destinations: number, a: string, b: string, port: number): AclTuple[] {
  const host = (base: number, i: number) => `100.${base + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;
  const src = [`${a}/32`, ...Array.from({ length: sources - 1 }, (_, i) => host(100, i))];
  const dst = [`${b}/32`, ...Array.from({ length: destinations - 1 }, (_, i) => host(110, i))];
  return src.flatMap((s) => dst.map((d): AclTuple => ({ src: s, dst: d, proto: 'tcp', ports: [port, port] })));
}

function tuplesOf(c: RuleCase, lab: Lab, keep: AclTuple[]): AclTuple[] {
  if (c.kind === 'random') return syntheticTuples(c.entries, keep);
  return [...groupTuples(c.sources, c.destinations, lab.a.v4, lab.b.v4, 5201), ...keep];
}

const adds = (ts: readonly AclTuple[]): AclOp[] => ts.map((e) => ({ op: 'acl-add', key: aclKey(e), entry: e }));

interface Ctx {
  lab: Lab;
  a: LabAgent;
  b: LabAgent;
  drv: AclDriver;
  pinRoot: string;
}

async function withLab<T>(tag: string, n: number, layout: BenchLayout, fn: (c: Ctx) => Promise<T>): Promise<T> {
  const pinRoot = `/run/sub0-bench-${process.pid}/bpf`;
  const lab = await createLab(tag, n);
  const a = LabAgent.spawn(lab.a.ns);
  const b = LabAgent.spawn(lab.b.ns);
  try {
    const drv = layout === 'nftables' ? await a.driver({ prefer: 'nftables' }) : await a.driver({ prefer: 'ebpf', pinDir: pinRoot, layout });
    if (layout !== 'nftables' && drv.kind !== 'ebpf') throw new Error(`eBPF unavailable: ${drv.fallbackReason}`);
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

export async function benchAclThroughput(opts: { rules: RuleCase; layout: AclLayout; runs?: number; seconds?: number }): Promise<ThroughputResult> {
  const runs = opts.runs ?? 5;
  const seconds = opts.seconds ?? 3;
  return withLab(`bt${process.pid % 100000}`, 21, opts.layout, async ({ lab, drv, pinRoot }) => {
    const allow: AclTuple = { src: `${lab.a.v4}/32`, dst: `${lab.b.v4}/32`, proto: 'tcp', ports: [5201, 5201] };
    const tuples = tuplesOf(opts.rules, lab, opts.rules.kind === 'random' ? [allow] : []);
    const t0 = performance.now();
    await drv.apply(adds(tuples));
    const loadMs = performance.now() - t0;
    const kernelEntries = await mapEntries(pinRoot, opts.layout === 'pairs' ? ['acl_rules'] : ['acl_ident', 'acl_policy']);
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
      return { layout: opts.layout, rules: opts.rules, tuples: tuples.length, kernelEntries, loadMs, baselineBps, aclBps, baselineMedian, aclMedian, ratio, perPacketNs };
    } finally {
      server.kill();
    }
  });
}

export async function benchRuleToEnforcement(opts: { rules: RuleCase; layout: BenchLayout; trials?: number }): Promise<EnforceResult> {
  const trials = opts.trials ?? 9;
  return withLab(`be${process.pid % 100000}`, 22, opts.layout, async ({ lab, a, b, drv }) => {
    await b.listenUdp(5353);
    const probe: AclTuple = { src: `${lab.a.v4}/32`, dst: `${lab.b.v4}/32`, proto: 'udp', ports: [5353, 5353] };
    const rules = opts.rules.kind === 'random' ? { ...opts.rules, entries: opts.rules.entries - 1 } : opts.rules;
    const t0 = performance.now();
    await drv.apply(adds(tuplesOf(rules, lab, [])));
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
    return { layout: opts.layout, rules: opts.rules, loadMs, samplesMs, medianMs: median(samplesMs) };
  });
}

/** Entries in each pinned map, as bpftool lists them (from outside the driver). */
async function mapEntries(pinRoot: string, maps: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of maps) {
    const pin = (await run('find', [pinRoot, '-name', m])).stdout.trim().split('\n')[0]!;
    const r = await run('bpftool', ['-j', 'map', 'dump', 'pinned', pin]);
    out[m] = (JSON.parse(r.stdout) as unknown[]).length;
  }
  return out;
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

/**
 * ns per packet of the attached program with the live maps, via `bpftool prog run` (10^6 repeats),
 * the least of 7 such runs: the program's work is fixed, other load on the machine only adds to it
 * (medians of the same case moved by a third from one bench run to the next).
 */
async function programCost(pinRoot: string, lab: Lab): Promise<ThroughputResult['perPacketNs']> {
  const pin = (await run('find', [pinRoot, '-name', 'acl_eth_*'])).stdout.trim().split('\n')[0]!;
  const once = async (frame: Buffer) => {
    const file = join(tmpdir(), `sub0-acl-frame-${process.pid}`);
    writeFileSync(file, frame);
    try {
      const samples: number[] = [];
      for (let i = 0; i < 7; i++) {
        const r = await run('bpftool', ['prog', 'run', 'pinned', pin, 'data_in', file, 'repeat', '1000000']);
        const m = /duration \(average\): (\d+)ns/.exec(r.stdout + r.stderr);
        if (!m) throw new Error(`bpftool prog run: ${r.stderr.trim()}`);
        samples.push(Number(m[1]));
      }
      return Math.min(...samples);
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
 * alone on a plain veth, and must not be read as bench:overlay's figures of the same cases. The
 * identity layout's cases keep the names they had before the pair layout got a suffix of its own.
 */
export function aclFigures(tp: ThroughputResult, en: EnforceResult): BenchFigure[] {
  const name = `acl ${caseName(tp.rules)}${tp.layout === 'pairs' ? ', pairs' : ''}`;
  const entries = Object.values(tp.kernelEntries).reduce((x, y) => x + y, 0);
  return [
    { bench: 'acl', case: name, metric: 'throughput-ratio', value: round(tp.ratio, 3), baseline: 'no-acl' },
    { bench: 'acl', case: name, metric: 'gbps', value: round(tp.aclMedian / 1e9, 2), baseline: 'no-acl', ratio: round(tp.ratio, 3) },
    { bench: 'acl', case: name, metric: 'ns-per-packet', value: tp.perPacketNs.flow },
    { bench: 'acl', case: name, metric: 'ns-per-packet-denied', value: tp.perPacketNs.denied },
    { bench: 'acl', case: name, metric: 'kernel-entries', value: entries },
    // Driver apply -> first packet; the end-to-end 'rule change to enforcement' is bench-overlay's.
    { bench: 'acl', case: `acl apply to enforcement, ${caseName(en.rules)}${en.layout === 'pairs' ? ', pairs' : ''}`, metric: 'ms', value: round(en.medianMs, 2) },
    { bench: 'acl', case: `acl load ${caseName(tp.rules)}${tp.layout === 'pairs' ? ', pairs' : ''}`, metric: 'ms', value: round(tp.loadMs, 1) },
  ];
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

