#!/usr/bin/env node
// The whole suite: the type check, then every tap test file. Ends with the one line CI reads,
// `N passed, N failed[, N skipped]`, counting the subtests of every test file (the t.test()
// calls), a test file that dies outside any subtest as one failure, and the type check as one test.
// Exits non-zero when anything failed. Extra args go to tap (e.g. a test file to run alone).
//
// The suite runs in two phases: everything but the data plane with tap's default parallelism,
// then the data-plane and lab tests one file at a time. Those run real WireGuard meshes whose
// handshakes time out and retry (5 s) when wireguard-go is starved of CPU by another mesh on these
// 2 cores.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Parser } from 'tap-parser';

const totals = { passed: 0, failed: 0, skipped: 0 };

function typecheck() {
  const tsc = spawnSync('npx', ['tsc', '--noEmit'], { stdio: 'inherit' });
  if (tsc.status === 0) totals.passed++;
  else totals.failed++;
  console.log(`${tsc.status === 0 ? 'ok' : 'not ok'} - typecheck (tsc --noEmit)`);
}

/** Runs tap with these args, streaming its TAP output, and adds its subtests to the totals. */
function tap(args) {
  return new Promise((resolve) => {
    const child = spawn('npx', ['tap', '--reporter=tap', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let failedHere = 0;
    const parser = new Parser();
    parser.on('child', (file) => {
      // Each child of the root parser is one test file; its children are the file's subtests.
      file.on('assert', (a) => {
        if (a.skip || a.todo) totals.skipped++;
        else if (a.ok) totals.passed++;
        else {
          totals.failed++;
          failedHere++;
        }
      });
      file.on('complete', (res) => {
        if (!res.ok && res.fail === 0 && res.count === 0) {
          totals.failed++; // died before any subtest
          failedHere++;
        }
      });
    });
    child.stdout.on('data', (d) => process.stdout.write(d));
    child.stdout.pipe(parser);
    child.on('close', (code) => {
      if (code !== 0 && failedHere === 0) totals.failed++; // tap failed for a reason no subtest shows
      resolve();
    });
  });
}

/** The test files under a directory (helpers beside them are not test files). */
const testFiles = (dir) =>
  readdirSync(dir, { recursive: true })
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => join(dir, f))
    .sort();

const args = process.argv.slice(2);
if (args.some((a) => !a.startsWith('-'))) {
  await tap(args);
} else {
  typecheck();
  await tap([...args, ...testFiles('test/fabric'), ...testFiles('test/controller'), ...testFiles('test/cli')]);
  await tap([...args, '--jobs=1', ...testFiles('test/overlay'), ...testFiles('test/lab'), ...testFiles('test/bootimage')]);
}
console.log(`\n${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`);
process.exit(totals.failed > 0 ? 1 : 0);
