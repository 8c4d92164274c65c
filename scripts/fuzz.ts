/**
 * npm run fuzz: each target of test/fuzz/targets.ts for FUZZ_SECONDS (default 60) of generated
 * inputs (fast-check: random bytes and mutants of valid seeds). An input that crashes a parser or
 * hangs it is shrunk, saved into test/fuzz/corpus/<target>/ (the test suite replays the corpus),
 * and reported; the exit code is then 1. Prints how many inputs each target ran.
 * FUZZ_TARGETS=a,b picks targets.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { CORPUS, inputs, runOne, TARGETS } from '../test/fuzz/targets.js';

const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const only = process.env.FUZZ_TARGETS?.split(',');
const rows: string[][] = [['target', 'inputs', 'seconds', 'result']];
let failed = 0;
for (const target of TARGETS.filter((t) => !only || only.includes(t.name))) {
  let runs = 0;
  const t0 = performance.now();
  const r = fc.check(
    fc.property(inputs(target), (input) => {
      runs++;
      const f = runOne(target, input);
      if (f) throw new Error(f);
    }),
    { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: seconds * 1000, markInterruptAsFailure: false, seed: Date.now() & 0x7fffffff },
  );
  const took = ((performance.now() - t0) / 1000).toFixed(0);
  if (r.failed && r.counterexample) {
    failed++;
    const input = r.counterexample[0] as Uint8Array;
    const name = createHash('sha256').update(input).digest('hex').slice(0, 12);
    mkdirSync(join(CORPUS, target.name), { recursive: true });
    writeFileSync(join(CORPUS, target.name, `${name}.bin`), input);
    rows.push([target.name, String(runs), took, `FOUND: ${(r.errorInstance as Error | undefined)?.message ?? 'failure'} (saved as corpus/${target.name}/${name}.bin)`]);
  } else rows.push([target.name, String(runs), took, 'no crash, no hang']);
  process.stderr.write(`${rows.at(-1)!.join('  ')}\n`);
}
const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
process.exitCode = failed ? 1 : 0;
