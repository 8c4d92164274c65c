/**
 * The parsers at the trust boundaries (test/fuzz/targets.ts): every input kept in the corpus (the
 * ones `npm run fuzz` found crashing or hanging a parser, fixed since) is replayed, then a short
 * fuzz pass runs each target on fresh inputs. A parser may return or throw Sub0Error, nothing else.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as fc from 'fast-check';
import t from 'tap';
import { CORPUS, inputs, runOne, TARGETS } from './targets.js';

const RUNS = Number(process.env.FUZZ_TEST_RUNS ?? 2000);

for (const target of TARGETS) {
  t.test(target.name, async (t) => {
    for (const seed of target.seeds) t.equal(runOne(target, seed), undefined, 'a valid seed parses');
    const dir = join(CORPUS, target.name);
    const kept = existsSync(dir) ? readdirSync(dir).sort() : [];
    for (const f of kept) t.equal(runOne(target, readFileSync(join(dir, f))), undefined, `corpus ${f}: no crash, no hang`);
    const seed = Date.now() & 0x7fffffff;
    const r = fc.check(
      fc.property(inputs(target), (input) => {
        const failure = runOne(target, input);
        if (failure) throw new Error(failure);
      }),
      { numRuns: RUNS, seed },
    );
    t.notOk(r.failed, r.failed ? `${r.errorInstance instanceof Error ? r.errorInstance.message : 'failure'}; input (base64) ${Buffer.from(r.counterexample?.[0] as Uint8Array).toString('base64').slice(0, 400)}; fast-check seed ${seed}` : `${RUNS} fresh inputs: no crash, no hang (seed ${seed})`);
  });
}
