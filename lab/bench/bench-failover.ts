/**
 * bench:control's "controller failover": a 3-node ControlLab with two controllers, each with its
 * own embedded broker (agents in namespaces, real WireGuard, real packets); a ping flow between
 * two nodes while each controller and its broker are killed in turn (lab/failover.ts). The
 * figure is what ping itself counted as lost. Needs root (network namespaces).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ControlLab } from '../control-lab.js';
import { controllerFailover, type FailoverCount } from '../failover.js';

export interface FailoverBenchResult extends FailoverCount {
  readonly everyMs: number;
  /** Flow start -> stop (both deaths, a chain change applied after each, the second's restart). */
  readonly ms: number;
}

export async function benchFailover(o: { readonly log: Logger; readonly say?: (line: string) => void; readonly everyMs?: number }): Promise<FailoverBenchResult> {
  const say = o.say ?? (() => undefined);
  const everyMs = o.everyMs ?? 20;
  const home = mkdtempSync(join(tmpdir(), 'sub0-bench-failover-'));
  let cl: ControlLab | undefined;
  // A crash of this process still removes the namespaces.
  const exit = () => cl?.lab.destroy();
  process.once('exit', exit);
  try {
    cl = await ControlLab.start({ home, log: o.log, tag: 'bfo', nodes: 3, broker: 'embedded', secondController: true, progress: say });
    say(`a ping flow every ${everyMs} ms; killing each controller with its broker in turn`);
    const t0 = performance.now();
    const c = await controllerFailover(cl, { everyMs, step: say });
    return { ...c, everyMs, ms: performance.now() - t0 };
  } finally {
    await cl?.destroy().catch(() => undefined);
    process.off('exit', exit);
    rmSync(home, { recursive: true, force: true });
  }
}
