// bench:control (lab/bench/bench-control.ts): the control plane at 1,000 simulated agents, on the
// embedded aedes broker and on Mosquitto, in one run; then controller failover under traffic
// (lab/bench/bench-failover.ts; BENCH_FAILOVER=0 skips it). Prints tables, then one JSON line per figure.
import { pino } from 'pino';
import { benchControl, summarize, type ControlBenchResult } from '../lab/bench/bench-control.js';
import { benchFailover, type FailoverBenchResult } from '../lab/bench/bench-failover.js';
import { median } from '../lab/bench/median.js';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
// Logs go to stderr: stdout is the table and the JSON lines other tools read.
const log = pino({ level: process.env.SUB0_BENCH_LOG ?? 'error' }, pino.destination(2));
const say = (line: string) => process.stderr.write(`  ${line}\n`);

const results: ControlBenchResult[] = [];
// BENCH_BROKERS picks the brokers (aedes,mosquitto by default; empty: none, the failover alone).
for (const broker of (process.env.BENCH_BROKERS?.split(',').filter(Boolean) ?? ['aedes', 'mosquitto']) as ('aedes' | 'mosquitto')[]) {
  process.stderr.write(`${broker}:\n`);
  results.push(await benchControl({ broker, nodes: NODES, trials: TRIALS, log, say }));
}
let failover: FailoverBenchResult | undefined;
if (process.env.BENCH_FAILOVER !== '0') {
  process.stderr.write('controller failover:\n');
  failover = await benchFailover({ log, say });
}

const f0 = (x: number) => Math.round(x).toLocaleString('en-US');
const table = (rows: string[][]) => {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  for (const x of rows) console.log(x.map((c, i) => c.padEnd(w[i]!)).join('  '));
  console.log('');
};
const rows: string[][] = [['broker', 'case', 'agents acked', 'finality -> last ack (ms)', 'target', 'controller: read / compile / publish (ms)', 'block time (ms)']];
const silentRows: string[][] = [['broker', 'case', 'peers', 'beyond the grace (ms)', 'due -> submitted / -> final / -> last peer ack (ms)', 'ratio to block time', 'target']];
const lines: object[] = [];
for (const r of results) {
  for (const [name, trials, target] of [[`one acl change, ${NODES} agents`, r.one, 500], [`full republish, ${NODES} agents`, r.full, 3000]] as const) {
    const s = summarize(trials);
    rows.push([r.broker, name, f0(s.affected), `${f0(s.ms)} (${trials.map((t) => f0(t.ms)).join(' ')})`, `< ${f0(target)}: ${s.ms < target ? 'met' : 'NOT met'}`, `${f0(s.read)} / ${f0(s.compile)} / ${f0(s.publish)} (total ${f0(s.controller)})`, f0(s.blockMs)]);
    lines.push({ bench: 'control', case: name, broker: r.broker, metric: 'ms', value: Math.round(s.ms), agents: s.affected, controllerMs: Math.round(s.controller), baseline: 'block time', baselineMs: Math.round(s.blockMs), ratio: Number((s.ms / s.blockMs).toFixed(3)), target });
  }
  rows.push([r.broker, `first publish to ${NODES} agents`, f0(NODES), f0(r.initialMs), '', '', '']);
  // The baseline: the quarantines' own blocks (their transaction submitted -> final).
  const blockMs = median(r.silent.map((t) => t.blockMs));
  const ms = median(r.silent.map((t) => t.ms));
  const ratio = ms / blockMs;
  silentRows.push([
    r.broker,
    `silent node dropped by peers (grace ${f0(r.policy.graceMs)} ms)`,
    f0(median(r.silent.map((t) => t.peers))),
    `${f0(ms)} (${r.silent.map((t) => f0(t.ms)).join(' ')})`,
    `${f0(median(r.silent.map((t) => t.toSubmit)))} / ${f0(blockMs)} / ${f0(median(r.silent.map((t) => t.toAck)))}`,
    ratio.toFixed(2),
    `<= 2 blocks: ${ratio <= 2 ? 'met' : 'NOT met'}`,
  ]);
  lines.push({ bench: 'control', case: 'silent node dropped by peers', broker: r.broker, metric: 'ms', value: Math.round(ms), agents: r.nodes, graceMs: r.policy.graceMs, baseline: 'block time', baselineMs: Math.round(blockMs), ratio: Number(ratio.toFixed(3)), target: '2 blocks' });
}
if (results.length) {
  table(rows);
  table(silentRows);
}
if (failover) {
  table([
    ['case', 'packets lost', 'sent (every ms)', 'flow duration (ms)', 'target'],
    ['controller failover (each controller and its broker killed in turn)', String(failover.lost), `${failover.sent} (${failover.everyMs})`, f0(failover.ms), `0: ${failover.lost === 0 ? 'met' : 'NOT met'}`],
  ]);
  lines.push({ bench: 'control', case: 'controller failover', metric: 'packets lost', value: failover.lost, sent: failover.sent, target: 0 });
}
for (const l of lines) console.log(JSON.stringify(l));
process.exit(0);
