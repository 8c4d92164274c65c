/**
 * npm run bench: compiles synthetic networks of 100, 1,000 and 10,000 nodes (10 slots each,
 * 10 rules into each slot) and reports compile time against JSON.parse of the same snapshot
 * measured in the same process (absolute times vary by machine, the ratio much less), the peak
 * memory, and the time to re-plan the affected nodes after a one-rule change.
 * Each size runs in a child process of its own, so that memory figures do not accumulate.
 * Ends with one JSON line per figure.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Compiler } from '../fabric/compile.js';
import { desiredState } from '../fabric/dataplane-state.js';
import { syntheticSnapshot } from '../fabric/examples/synthetic.js';
import { parseSnapshot } from '../fabric/parse-snapshot.js';
import { plan } from '../fabric/plan.js';

interface SizeResult {
  nodes: number;
  slots: number;
  rules: number;
  mb: number;
  jsonParseMs: number;
  validateMs: number;
  compileMs: number;
  peakRssMb: number;
  retainedMb: number;
  ruleChangeMs?: number;
  ruleChangeNodes?: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const gc = () => (globalThis as { gc?: () => void }).gc?.();

function measure(nodes: number): SizeResult {
  const text = JSON.stringify(syntheticSnapshot({ nodes }));
  const reps = nodes >= 10000 ? 3 : nodes >= 1000 ? 5 : 15;
  const jsonTimes: number[] = [];
  const compileTimes: number[] = [];
  let parsed = parseSnapshot(JSON.parse(text));
  const t0 = performance.now();
  parsed = parseSnapshot(JSON.parse(text));
  const validateMs = performance.now() - t0;
  let compiler = new Compiler();
  let retainedMb = 0;
  // Interleave baseline and subject so that machine noise hits both alike.
  for (let i = 0; i < reps; i++) {
    gc();
    let t = performance.now();
    JSON.parse(text);
    jsonTimes.push(performance.now() - t);
    compiler = new Compiler(); // drop the previous result before measuring what this one keeps
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    t = performance.now();
    compiler.compile(parsed.snapshot);
    compileTimes.push(performance.now() - t);
    gc();
    retainedMb = (process.memoryUsage().heapUsed - heap0) / 1e6;
  }
  const result: SizeResult = {
    nodes,
    slots: parsed.snapshot.slots.length,
    rules: parsed.snapshot.rules.length,
    mb: text.length / 1e6,
    jsonParseMs: median(jsonTimes),
    validateMs,
    compileMs: median(compileTimes),
    peakRssMb: 0,
    retainedMb,
  };
  if (nodes === 10000) {
    // One rule changes in a new block: recompile what it touches and plan those nodes.
    const times: number[] = [];
    let affected = 0;
    for (let i = 0; i < 5; i++) {
      const before = compiler.updateRules(parsed.snapshot.block, [], []).configs;
      const rule = parsed.snapshot.rules[1000 * (i + 1)]!;
      const t = performance.now();
      const next = compiler.updateRules({ number: 2 + i, hash: `0x${'ef'.repeat(32)}` }, [{ ...rule, ports: [{ from: 8443 + i, to: 8443 + i }] }], []);
      let ops = 0;
      for (const id of next.changed) ops += plan(desiredState(next.configs.get(id)!), desiredState(before.get(id)!)).length;
      times.push(performance.now() - t);
      affected = next.changed.size;
      if (ops === 0) throw new Error('a rule change produced no operations');
    }
    result.ruleChangeMs = median(times);
    result.ruleChangeNodes = affected;
  }
  result.peakRssMb = process.resourceUsage().maxRSS / 1024;
  return result;
}

const self = fileURLToPath(import.meta.url);
if (process.argv[2] === '--child') {
  process.stdout.write(JSON.stringify(measure(Number(process.argv[3]))));
} else {
  const results: SizeResult[] = [];
  for (const n of [100, 1000, 10000]) {
    process.stderr.write(`compiling ${n} nodes...\n`);
    const out = execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=12000', '--import', 'tsx', self, '--child', String(n)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    results.push(JSON.parse(out));
  }
  const f = (x: number, d = 0) => x.toFixed(d);
  const rows = [['nodes', 'slots', 'rules', 'snapshot MB', 'JSON.parse ms', 'validate ms', 'compile ms', 'compile/JSON.parse', 'retained MB', 'peak RSS MB']];
  for (const r of results) rows.push([f(r.nodes), f(r.slots), f(r.rules), f(r.mb, 1), f(r.jsonParseMs), f(r.validateMs), f(r.compileMs), f(r.compileMs / r.jsonParseMs, 2), f(r.retainedMb), f(r.peakRssMb)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padStart(widths[i]!)).join('  '));
  const [, k1, k10] = results as [SizeResult, SizeResult, SizeResult];
  const big = k10;
  console.log(`\ngrowth 1,000 -> 10,000 nodes: ${f(k10.compileMs / k1.compileMs, 1)}x time for 10x nodes (target <= 12x)`);
  console.log(`10,000 nodes: ${f(big.compileMs)} ms (target < 3000 ms)`);
  console.log(`one rule change: ${f(big.ruleChangeMs!, 1)} ms to recompile and plan the ${big.ruleChangeNodes} affected nodes (target < 50 ms)\n`);
  for (const r of results)
    console.log(JSON.stringify({ bench: 'compile', case: `${r.nodes} nodes`, metric: 'ms', value: Math.round(r.compileMs), baseline: 'json-parse', ratio: Number((r.compileMs / r.jsonParseMs).toFixed(2)) }));
  console.log(JSON.stringify({ bench: 'compile', case: 'one rule change', metric: 'ms', value: Number(big.ruleChangeMs!.toFixed(1)), baseline: 'full compile', ratio: Number((big.ruleChangeMs! / big.compileMs).toFixed(4)) }));
}
