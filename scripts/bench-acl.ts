// Prints the ACL benchmark figures (lab/bench/bench-acl.ts): a table, then one JSON line each.
// Cases, in one run: `entries` random tuples in both map layouts (pairs: the earlier design), and
// one rule from a group of 10,000 slots to a group of 10, by identity (by pairs it does not fit),
// and the same rule in the nftables fallback (load and apply to enforcement only).
// Usage: node --import tsx scripts/bench-acl.ts [--runs N] [--seconds S] [--trials N] [--entries N] [--sources N] [--destinations N]
import {
  aclFigures, benchAclThroughput, benchRuleToEnforcement, caseName, type BenchFigure, type EnforceResult, type RuleCase, type ThroughputResult,
} from '../lab/bench/bench-acl.js';
import { ACL_POLICY_ENTRIES } from '../fabric/acl-capacity.js';
import type { AclLayout } from '../overlay/acl/rule-maps.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const runs = arg('runs', 5);
const seconds = arg('seconds', 3);
const trials = arg('trials', 9);
const random: RuleCase = { kind: 'random', entries: arg('entries', 10_000) };
const groups: RuleCase = { kind: 'groups', sources: arg('sources', 10_000), destinations: arg('destinations', 10) };

const results: [ThroughputResult, EnforceResult][] = [];
for (const [rules, layout] of [[random, 'pairs'], [random, 'identity'], [groups, 'identity']] as [RuleCase, AclLayout][]) {
  console.error(`bench:acl: ${caseName(rules)}, ${layout}…`);
  const tp = await benchAclThroughput({ rules, layout, runs, seconds });
  const en = await benchRuleToEnforcement({ rules, layout, trials });
  results.push([tp, en]);
}
console.error(`bench:acl: ${caseName(groups)}, nftables…`);
const nft = await benchRuleToEnforcement({ rules: groups, layout: 'nftables', trials });
const [pairs, , scale] = results.map(([tp]) => tp) as [ThroughputResult, ThroughputResult, ThroughputResult];
const scaleEnforce = results[2]![1];

const pad = (s: string, n: number) => s.padEnd(n);
const sum = (r: Readonly<Record<string, number>>) => Object.values(r).reduce((x, y) => x + y, 0);
console.log(`${pad('case', 34)}${pad('layout', 10)}${pad('tuples', 9)}${pad('kernel entries', 30)}${pad('load ms', 9)}${pad('enforce ms', 12)}${pad('ns/pkt flow', 13)}${pad('ns/pkt denied', 15)}throughput ratio`);
for (const [tp, en] of results) {
  const entries = `${sum(tp.kernelEntries)} (${Object.entries(tp.kernelEntries).map(([m, n]) => `${m} ${n}`).join(', ')})`;
  console.log(`${pad(caseName(tp.rules), 34)}${pad(tp.layout, 10)}${pad(String(tp.tuples), 9)}${pad(entries, 30)}${pad(tp.loadMs.toFixed(0), 9)}${pad(en.medianMs.toFixed(2), 12)}${pad(String(tp.perPacketNs.flow), 13)}${pad(String(tp.perPacketNs.denied), 15)}${tp.ratio.toFixed(3)}`);
}
console.log(`${pad(caseName(groups), 34)}${pad('pairs', 10)}${pad(String(scale.tuples), 9)}does not fit: ${scale.tuples} entries needed, the map holds ${ACL_POLICY_ENTRIES}`);
console.log(`${pad(caseName(groups), 34)}${pad('nftables', 10)}${pad(String(scale.tuples), 9)}${pad('(set elements)', 30)}${pad(nft.loadMs.toFixed(0), 9)}${nft.medianMs.toFixed(2)}`);

// Targets of the scale case.
const addresses = groups.kind === 'groups' ? groups.sources + groups.destinations : 0;
const rulePorts = 1; // one rule, one port range
const entriesRatio = sum(scale.kernelEntries) / (addresses + rulePorts);
const flowRatio = scale.perPacketNs.flow / pairs.perPacketNs.flow;
const deniedRatio = scale.perPacketNs.denied / pairs.perPacketNs.denied;
console.log('');
console.log(`${caseName(groups)}, by identity:`);
console.log(`  kernel entries / (addresses + rule-port entries)  ${entriesRatio.toFixed(3)} (target <= 2)`);
console.log(`  rule change to enforcement (ms)                   ${scaleEnforce.samplesMs.map((x) => x.toFixed(1)).join(' ')}  median ${scaleEnforce.medianMs.toFixed(2)} (target < 50)`);
console.log(`  per packet vs pairs at ${caseName(random)}           flow hit ${flowRatio.toFixed(2)}, rule lookup (denied) ${deniedRatio.toFixed(2)} (target <= 1.20)`);
console.log(`  throughput ratio                                  ${scale.ratio.toFixed(3)} (target >= 0.95)`);

const figures: BenchFigure[] = results.flatMap(([tp, en]) => aclFigures(tp, en));
const scaleName = `acl ${caseName(groups)}`;
const round = (x: number) => Math.round(x * 1000) / 1000;
figures.push(
  { bench: 'acl', case: `acl apply to enforcement, ${caseName(groups)}, nftables`, metric: 'ms', value: Math.round(nft.medianMs * 100) / 100 },
  { bench: 'acl', case: `acl load ${caseName(groups)}, nftables`, metric: 'ms', value: Math.round(nft.loadMs * 10) / 10 },
  { bench: 'acl', case: `${scaleName}, pairs`, metric: 'kernel-entries-needed', value: scale.tuples, baseline: `map-size-${ACL_POLICY_ENTRIES}` },
  { bench: 'acl', case: scaleName, metric: 'kernel-entries-ratio', value: round(entriesRatio), baseline: 'addresses+rule-ports' },
  { bench: 'acl', case: scaleName, metric: 'ns-per-packet-ratio', value: round(flowRatio), baseline: `acl ${caseName(random)}, pairs` },
  { bench: 'acl', case: scaleName, metric: 'ns-per-packet-denied-ratio', value: round(deniedRatio), baseline: `acl ${caseName(random)}, pairs` },
);
for (const f of figures) console.log(JSON.stringify(f));
