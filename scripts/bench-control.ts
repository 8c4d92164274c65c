// bench:control (lab/bench/bench-control.ts): the control plane at 1,000 simulated agents, on the
// embedded aedes broker and on Mosquitto, in one run. Prints a table, then one JSON line per figure.
import { pino } from 'pino';
import { benchControl, summarize, type ControlBenchResult } from '../lab/bench/bench-control.js';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
// Logs go to stderr: stdout is the table and the JSON lines other tools read.
const log = pino({ level: process.env.SUB0_BENCH_LOG ?? 'error' }, pino.destination(2));
const say = (line: string) => process.stderr.write(`  ${line}\n`);

const results: ControlBenchResult[] = [];
for (const broker of (process.env.BENCH_BROKERS?.split(',') ?? ['aedes', 'mosquitto']) as ('aedes' | 'mosquitto')[]) {
  process.stderr.write(`${broker}:\n`);
  results.push(await benchControl({ broker, nodes: NODES, trials: TRIALS, log, say }));
}

const f0 = (x: number) => Math.round(x).toLocaleString('en-US');
const rows: string[][] = [['broker', 'case', 'agents acked', 'finality -> last ack (ms)', 'target', 'controller: read / compile / publish (ms)', 'block time (ms)']];
const lines: object[] = [];
for (const r of results) {
  for (const [name, trials, target] of [[`one acl change, ${NODES} agents`, r.one, 500], [`full republish, ${NODES} agents`, r.full, 3000]] as const) {
    const s = summarize(trials);
    rows.push([r.broker, name, f0(s.affected), `${f0(s.ms)} (${trials.map((t) => f0(t.ms)).join(' ')})`, `< ${f0(target)}: ${s.ms < target ? 'met' : 'NOT met'}`, `${f0(s.read)} / ${f0(s.compile)} / ${f0(s.publish)} (total ${f0(s.controller)})`, f0(s.blockMs)]);
    lines.push({ bench: 'control', case: name, broker: r.broker, metric: 'ms', value: Math.round(s.ms), agents: s.affected, controllerMs: Math.round(s.controller), baseline: 'block time', baselineMs: Math.round(s.blockMs), ratio: Number((s.ms / s.blockMs).toFixed(3)), target });
  }
  rows.push([r.broker, `first publish to ${NODES} agents`, f0(NODES), f0(r.initialMs), '', '', '']);
}
const w = rows[0]!.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
for (const x of rows) console.log(x.map((c, i) => c.padEnd(w[i]!)).join('  '));
console.log('');
for (const l of lines) console.log(JSON.stringify(l));
process.exit(0);
