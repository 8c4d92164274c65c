// Prints the ACL benchmark figures (overlay/lab/acl/bench-acl.ts): a table, then one JSON line each.
// Usage: node --import tsx scripts/bench-acl.ts [--runs N] [--seconds S] [--entries N]
import { aclFigures, benchAclThroughput, benchRuleToEnforcement } from '../lab/bench/bench-acl.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const entries = arg('entries', 10_000);
const tp = await benchAclThroughput({ entries, runs: arg('runs', 5), seconds: arg('seconds', 3) });
const en = await benchRuleToEnforcement({ entries, trials: arg('trials', 9) });
const gbps = (xs: readonly number[]) => xs.map((x) => (x / 1e9).toFixed(2)).join(' ');
console.log('case                                  value');
console.log(`iperf3 no ACL (Gbit/s, runs)          ${gbps(tp.baselineBps)}  median ${(tp.baselineMedian / 1e9).toFixed(2)}`);
console.log(`iperf3 eBPF ACL ${entries} (Gbit/s)     ${gbps(tp.aclBps)}  median ${(tp.aclMedian / 1e9).toFixed(2)}`);
console.log(`throughput ratio, median of pairs     ${tp.ratio.toFixed(3)} (target >= 0.95)`);
console.log(`program cost per packet (ns)          flow hit ${tp.perPacketNs.flow}, denied ${tp.perPacketNs.denied}, unguarded ${tp.perPacketNs.unguarded}`);
console.log(`rule change to enforcement (ms)       ${en.samplesMs.map((x) => x.toFixed(1)).join(' ')}  median ${en.medianMs.toFixed(2)} (target < 50)`);
console.log(`apply ${entries} tuples (ms)            ${en.loadMs.toFixed(1)}`);
for (const f of aclFigures(tp, en)) console.log(JSON.stringify(f));
