/**
 * Golden files: compare text output against a committed file. `UPDATE_GOLDEN=1 npm test` rewrites
 * them (review the diff!); a missing golden file is a failure, never a silent pass.
 */
import type { Test } from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export function golden(t: Test, file: URL, actual: string, message: string): void {
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(file, actual);
    t.pass(`${message} (golden file rewritten)`);
    return;
  }
  if (!existsSync(file)) {
    t.fail(`${message}: golden file ${file.pathname} is missing; run with UPDATE_GOLDEN=1 to create it`);
    return;
  }
  t.equal(actual, readFileSync(file, 'utf8'), message);
}
