#!/usr/bin/env node
// Runs the whole suite with tap and ends with the one line CI reads: `N passed, N failed[, N skipped]`.
// Counts the subtests of every test file (the t.test() calls), and a test file that dies outside
// any subtest as one failure. Exits non-zero when anything failed. Extra args go to tap.
import { spawn } from 'node:child_process';
import { Parser } from 'tap-parser';

const args = ['tap', '--reporter=tap', ...process.argv.slice(2)];
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'inherit'] });

let passed = 0;
let failed = 0;
let skipped = 0;
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
