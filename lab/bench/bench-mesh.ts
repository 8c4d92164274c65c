/**
 * Benchmarks on a 2-node lab mesh with real agents: n1 hosts slots a0..a99, n2 hosts b0..b99, and
 * one rule lets every a reach every b on tcp/5201: 10,000 ACL entries on each node (each IPv4 +
 * IPv6: 20,000 tuples).
 *  - throughput: iperf3 over the plain veth underlay, over WireGuard (slot to slot, the ACL
 *    filter detached), and over WireGuard with the ACL filter attached, interleaved round by round
 *    (wireguard-go is CPU-bound here; single runs vary by 5-10%), medians of per-round ratios.
 *  - enforcement: from writing a config that adds a rule to the first packet that rule lets
 *    through, end to end (file watch, signature check, reconcile on both nodes, one round trip).
 */
import { createInterface } from 'node:readline';
import { aclTupleCount } from '../../fabric/dataplane-state.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { Lab } from '../lab.js';
import { LabMesh, type MeshSpec, type RuleSpec } from '../lab-mesh.js';
import { median } from './median.js';

export interface ThroughputSample {
  readonly vethBps: number;
  readonly wgBps: number;
  readonly aclBps: number;
}

export interface MeshBenchResult {
  /** (src slot, dst slot, port range) allowances per node; each is a kernel tuple per address family. */
  readonly aclEntries: number;
  readonly kernelTuples: number;
  readonly samples: readonly ThroughputSample[];
  readonly median: ThroughputSample;
  /** Median of per-round ratios. */
  readonly wgOverVeth: number;
  readonly aclOverWg: number;
  /** Config written -> first packet through, ms, one per trial, with the 10,000 entries loaded. */
  readonly enforceMs: readonly number[];
  readonly enforceMedianMs: number;
  /** The same with a typical config (one rule, a few entries). */
  readonly enforceSmallMs: readonly number[];
  readonly enforceSmallMedianMs: number;
}

const TC_PRIORITY = 1; // overlay/acl/tc-attach.ts
const TC_HANDLE = '0x5b0';

/**
 * Replies to every datagram on each port given, from `addr`: bound to the slot address, so the
 * reply leaves with it as source (a wildcard socket would answer from the node address, which no
 * flow of the ACL matches).
 */
const UDP_ECHO = `
const dgram = require('dgram');
const [addr, ...ports] = process.argv.slice(1);
for (const p of ports) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(+p, addr);
}
setTimeout(() => console.log('listening'), 50);`;

/** Sends a datagram every ms from src to dst:port; prints the epoch ms of the first reply. */
const UDP_PROBE = `
const [src, dst, port] = process.argv.slice(1);
const s = require('dgram').createSocket('udp4');
s.bind(0, src, () => {
  console.log('ready');
  const t = setInterval(() => s.send('p', +port, dst), 1);
  s.on('message', () => { console.log('first ' + (performance.timeOrigin + performance.now())); clearInterval(t); process.exit(0); });
  setTimeout(() => { console.log('timeout'); process.exit(1); }, 10000);
});`;

export async function benchMesh(opts: { rounds?: number; seconds?: number; trials?: number; slotsPerSide?: number; log?: (s: string) => void } = {}): Promise<MeshBenchResult> {
  const rounds = opts.rounds ?? 5;
  const seconds = opts.seconds ?? 3;
  const trials = opts.trials ?? 9;
  const per = opts.slotsPerSide ?? 100;
  const log = opts.log ?? (() => undefined);
  const lab = Lab.create({ nodes: ['n1', 'n2'], tag: 'bench' });
  const exit = () => lab.destroy();
  process.once('exit', exit);
  try {
    const mesh = new LabMesh(lab);
    const slots = [
      ...Array.from({ length: per }, (_, i) => ({ id: `a${i}`, node: 'n1', groups: ['a'] })),
      ...Array.from({ length: per }, (_, i) => ({ id: `b${i}`, node: 'n2', groups: ['b'] })),
    ];
    /** A typical node: one rule. The bench's own: every a to every b (per x per entries). */
    const small: RuleSpec[] = [{ id: 'iperf', from: 'slot:a0', to: 'slot:b0', proto: 'tcp', ports: ['5201'] }];
    const big: RuleSpec[] = [{ id: 'a-to-b', from: 'group:a', to: 'group:b', proto: 'tcp', ports: ['5201'] }];
    let block = 100;
    let rules = small;
    const spec = (extra?: RuleSpec[]): MeshSpec => ({ block: ++block, slots, rules: extra ?? rules });
    const converge = async (s: MeshSpec) => {
      const c = mesh.publish(s);
      await mesh.waitAll(c, 60_000);
      return c;
    };
    const first = mesh.publish(spec());
    for (const n of lab.nodes) mesh.startAgent(n.id, { resyncMs: 0 });
    await mesh.waitAll(first, 120_000);
    const addr = (c: ReadonlyMap<string, NodeConfig>, id: string) => {
      for (const x of c.values()) for (const s of x.slots) if (s.id === id) return s.ipv4.split('/')[0]!;
      throw new Error(id);
    };
    const a0 = addr(first, 'a0');
    const b0 = addr(first, 'b0');

    /** Each trial adds a rule for a fresh UDP port a0 -> b0 and times its first packet. */
    const enforcement = async (rules: RuleSpec[], ports: number[]): Promise<number[]> => {
      const echo = lab.spawn('n2', process.execPath, ['-e', UDP_ECHO, b0, ...ports.map(String)], { stdio: ['ignore', 'pipe', 'ignore'] });
      await lineOf(echo.stdout!, (l) => l === 'listening');
      const samples: number[] = [];
      for (const port of ports) {
        const probe = lab.spawn('n1', process.execPath, ['-e', UDP_PROBE, a0, b0, String(port)], { stdio: ['ignore', 'pipe', 'ignore'] });
        const lines = createInterface({ input: probe.stdout! });
        const firstReply = new Promise<string>((res) => lines.on('line', (l) => l !== 'ready' && res(l)));
        await new Promise<void>((res) => lines.on('line', (l) => l === 'ready' && res()));
        await new Promise((r) => setTimeout(r, 100));
        const early = await Promise.race([firstReply, new Promise<undefined>((r) => setTimeout(r, 0))]);
        if (early !== undefined) throw new Error(`port ${port} answered before its rule existed: the ACL is not enforcing`);
        const prepared = mesh.prepare(spec([...rules, { id: `probe-${port}`, from: 'slot:a0', to: 'slot:b0', proto: 'udp', ports: [String(port)] }]));
        const t0 = performance.timeOrigin + performance.now();
        mesh.write(prepared);
        const line = await firstReply;
        if (!line.startsWith('first ')) throw new Error(`probe on ${port}: ${line}`);
        samples.push(Number(line.slice(6)) - t0);
        await mesh.waitAll(prepared.configs, 60_000);
        log(`enforcement, ${rules === small ? 'small config' : `${per * per} entries`}: ${samples.at(-1)!.toFixed(1)} ms`);
      }
      echo.kill();
      return samples;
    };

    const enforceSmallMs = await enforcement(small, ports(7001, trials));
    rules = big;
    const loaded = await converge(spec());
    const cfg = loaded.get('n1')!;
    const kernelTuples = mesh.status('n1')?.lastResult?.reached.acl ?? 0;
    const aclEntries = aclTupleCount(cfg.acl) / 2;
    log(`loaded: ${aclEntries} ACL entries per node (${cfg.acl.length} in the config), ${kernelTuples} tuples`);

    const server = lab.spawn('n2', 'iperf3', ['-s'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const iperf = async (src: string, dst: string): Promise<number> => {
      const out = lab.exec('n1', 'iperf3', ['-c', dst, '-B', src, '-t', String(seconds), '-J']);
      return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
    };
    const hooked = () => lab.nodes.every((n) => ['ingress', 'egress'].every((d) => lab.exec(n.id, 'tc', ['filter', 'show', 'dev', n.ifname, d]).includes('acl_')));
    const detach = () => {
      for (const n of lab.nodes) for (const d of ['ingress', 'egress']) lab.exec(n.id, 'tc', ['filter', 'del', 'dev', n.ifname, d, 'pref', String(TC_PRIORITY), 'handle', TC_HANDLE, 'bpf']);
      if (hooked()) throw new Error('the ACL filter is still attached');
    };
    // Re-attached by the agents themselves: every reconcile pass makes sure the hook is there.
    const attach = async () => {
      await converge(spec());
      if (!hooked()) throw new Error('the agents did not re-attach the ACL filter');
    };

    await iperf(a0, b0); // warm-up (handshake, flow state, caches)
    const samples: ThroughputSample[] = [];
    for (let i = 0; i < rounds; i++) {
      const r: Partial<Record<keyof ThroughputSample, number>> = {};
      // Alternate the order so that drift hits every case alike.
      const order: (keyof ThroughputSample)[] = i % 2 ? ['aclBps', 'wgBps', 'vethBps'] : ['vethBps', 'wgBps', 'aclBps'];
      for (const k of order) {
        if (k === 'aclBps') await attach();
        else if (k === 'wgBps' && hooked()) detach();
        r[k] = k === 'vethBps' ? await iperf(lab.node('n1').underlay, lab.node('n2').underlay) : await iperf(a0, b0);
      }
      samples.push(r as ThroughputSample);
      log(`round ${i + 1}: veth ${(r.vethBps! / 1e9).toFixed(2)}  wg ${(r.wgBps! / 1e9).toFixed(2)}  wg+acl ${(r.aclBps! / 1e9).toFixed(2)} Gbit/s`);
    }
    server.kill();
    if (!hooked()) await attach();
    const enforceMs = await enforcement(big, ports(7101, trials));

    const med = (k: keyof ThroughputSample) => median(samples.map((s) => s[k]));
    return {
      aclEntries,
      kernelTuples,
      samples,
      median: { vethBps: med('vethBps'), wgBps: med('wgBps'), aclBps: med('aclBps') },
      wgOverVeth: median(samples.map((s) => s.wgBps / s.vethBps)),
      aclOverWg: median(samples.map((s) => s.aclBps / s.wgBps)),
      enforceMs,
      enforceMedianMs: median(enforceMs),
      enforceSmallMs,
      enforceSmallMedianMs: median(enforceSmallMs),
    };
  } finally {
    process.off('exit', exit);
    lab.destroy();
  }
}

function ports(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

function lineOf(stream: NodeJS.ReadableStream, pred: (l: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: stream });
    rl.on('line', (l) => {
      if (pred(l)) {
        rl.close();
        resolve(l);
      }
    });
  });
}
