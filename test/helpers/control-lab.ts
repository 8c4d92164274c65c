/**
 * The whole system for a test (lab/control-lab.ts): chain, broker, controller, agents in
 * namespaces; torn down when the test ends, pass or fail. Logs go to the lab's home (kept on
 * failure for reading, removed on success).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Test } from 'tap';
import { ControlLab, type ControlLabOptions } from '../../lab/control-lab.js';

export async function useControlLab(t: Test, o: Partial<ControlLabOptions> = {}): Promise<ControlLab> {
  const home = mkdtempSync(join(tmpdir(), 'sub0-control-'));
  const log = pino({ level: process.env.SUB0_TEST_LOG ?? 'info' }, pino.destination({ dest: join(home, 'test.log'), sync: true }));
  const lab = await ControlLab.start({ home, log, tag: 'cl', ...o });
  const exit = () => lab.lab.destroy();
  process.once('exit', exit);
  t.teardown(async () => {
    await lab.destroy();
    process.off('exit', exit);
    if (t.passing()) rmSync(home, { recursive: true, force: true });
    else t.comment(`lab home kept for reading: ${home}`);
  });
  return lab;
}
