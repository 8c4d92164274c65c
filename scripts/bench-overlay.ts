// `npm run bench:overlay`: the node agent's data plane, measured on this machine with real
// packets between lab namespaces (overlay/lab/bench-mesh.ts, overlay/lab/bench-apply.ts).
// Prints a table, then one JSON line per figure.
// Options: --rounds N (iperf3 rounds, default 5) --seconds S (per iperf3 run, default 3)
//          --trials N (enforcement trials, default 9)
import { benchApply } from '../lab/bench/bench-apply.js';
import { benchMesh } from '../lab/bench/bench-mesh.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const say = (s: string) => process.stderr.write(`${s}\n`);

say('overlay bench: 2-node lab, 10,000 ACL entries per node; interleaved iperf3 rounds...');
const mesh = await benchMesh({ rounds: arg('rounds', 5), seconds: arg('seconds', 3), trials: arg('trials', 9), log: say });
say('apply bench: one pass to 1,000 peers + 10,000 ACL entries...');
const apply = await benchApply();

const gbps = (bps: number) => (bps / 1e9).toFixed(2);
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r1 = (x: number) => Math.round(x * 10) / 10;
const rows: string[][] = [
  ['case', 'value', 'detail'],
  ['iperf3 plain veth (Gbit/s, median)', gbps(mesh.median.vethBps), mesh.samples.map((s) => gbps(s.vethBps)).join(' ')],
  ['iperf3 WireGuard overlay (Gbit/s)', gbps(mesh.median.wgBps), mesh.samples.map((s) => gbps(s.wgBps)).join(' ')],
  [`iperf3 overlay + eBPF ACL, ${mesh.aclEntries} entries`, gbps(mesh.median.aclBps), mesh.samples.map((s) => gbps(s.aclBps)).join(' ')],
  ['wireguard / veth (median of rounds)', mesh.wgOverVeth.toFixed(3), 'wireguard-go, CPU-bound on 2 cores'],
  ['overlay+ACL / overlay (median of rounds)', mesh.aclOverWg.toFixed(3), `target >= 0.95; ${mesh.kernelTuples} tuples (IPv4 + IPv6)`],
  [`apply 1,000 peers + ${apply.aclEntries} entries (ms)`, apply.totalMs.toFixed(0), `target < 1000; ${apply.peers} peers, ${apply.routes} routes, ${apply.kernelTuples} tuples`],
  ['  of which, in the drivers (ms)', '', Object.entries(apply.phasesMs).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')],
  ['  baseline: wg setconf, same peers (ms)', apply.wgSetconfMs.toFixed(0), 'wireguard-tools loading the peers alone'],
  [`rule change to enforcement, ${mesh.aclEntries} entries loaded (ms, median)`, mesh.enforceMedianMs.toFixed(1), `target < 50; config written -> first packet; ${mesh.enforceMs.map((x) => x.toFixed(0)).join(' ')}`],
  ['  the same with a small config (one rule) (ms)', mesh.enforceSmallMedianMs.toFixed(1), mesh.enforceSmallMs.map((x) => x.toFixed(0)).join(' ')],
];
const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => (i === 2 ? c : c.padEnd(w[i]!))).join('  '));
console.log('');

const lines = [
  { bench: 'overlay', case: 'wireguard vs veth', metric: 'throughput-ratio', value: r3(mesh.wgOverVeth), baseline: 'veth' },
  { bench: 'overlay', case: `acl ${mesh.aclEntries} entries`, metric: 'throughput-ratio', value: r3(mesh.aclOverWg), baseline: 'wireguard' },
  { bench: 'overlay', case: `apply 1000 peers + ${apply.aclEntries} entries`, metric: 'ms', value: r1(apply.totalMs), baseline: 'wg setconf', ratio: r3(apply.totalMs / apply.wgSetconfMs) },
  // THE figure: measured with the 10,000 entries loaded on both nodes.
  { bench: 'overlay', case: 'rule change to enforcement', metric: 'ms', value: r1(mesh.enforceMedianMs), baseline: 'small config', ratio: r3(mesh.enforceMedianMs / mesh.enforceSmallMedianMs), aclEntries: mesh.aclEntries },
  { bench: 'overlay', case: 'rule change to enforcement, small config', metric: 'ms', value: r1(mesh.enforceSmallMedianMs) },
];
for (const l of lines) console.log(JSON.stringify(l));
