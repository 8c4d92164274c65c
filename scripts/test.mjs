#!/usr/bin/env node
// The whole suite: the type check, then every tap test file. Ends with the one line CI reads,
// `N passed, N failed[, N skipped]`, counting the subtests of every test file (the t.test()
// calls), a test file that dies outside any subtest as one failure, and the type check as one test.
// Exits non-zero when anything failed. Extra args go to tap (e.g. a test file to run alone).
import { spawn, spawnSync } from 'node:child_process';
import { Parser } from 'tap-parser';

let passed = 0;
let failed = 0;
let skipped = 0;

const onlyFiles = process.argv.slice(2).some((a) => !a.startsWith('-'));
if (!onlyFiles) {
  const tsc = spawnSync('npx', ['tsc', '--noEmit'], { stdio: 'inherit' });
  if (tsc.status === 0) {
    passed++;
    console.log('ok - typecheck (tsc --noEmit)');
  } else {
    failed++;
    console.log('not ok - typecheck (tsc --noEmit)');
  }
}

const child = spawn('npx', ['tap', '--reporter=tap', ...process.argv.slice(2)], { stdio: ['ignore', 'pipe', 'inherit'] });
const parser = new Parser();
parser.on('child', (file) => {
  // Each child of the root parser is one test file; its children are the file's subtests.
  file.on('assert', (a) => {
    if (a.skip || a.todo) skipped++;
    else if (a.ok) passed++;
    else failed++;
  });
  file.on('complete', (res) => {
    if (!res.ok && res.fail === 0 && res.count === 0) failed++; // died before any subtest
  });
});
child.stdout.on('data', (d) => process.stdout.write(d));
child.stdout.pipe(parser);

child.on('close', (code) => {
  if (code !== 0 && failed === 0) failed++; // tap failed for a reason no subtest shows
  console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed > 0 ? 1 : 0);
});
