/**
 * Simulated slots for the namespace lab: where a real node runs a VM per slot, a lab node puts the
 * slot's two addresses on its loopback (traffic from a slot leaves with that source address). It
 * follows the config the node's agent accepted (its state dir's accepted.signed, verified with
 * the controller key), as a hypervisor would: slots appear and disappear with the config.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { verifyConfig } from '../fabric/signing.js';
import { ACCEPTED_FILE } from '../overlay/agent/config-gate.js';
import type { Lab } from './lab.js';
import { run } from './netns.js';

export class SlotSim {
  private readonly held = new Map<string, Set<string>>();
  private readonly watchers: FSWatcher[] = [];

  constructor(
    private readonly lab: Lab,
    private readonly trusted: readonly Uint8Array[],
  ) {}

  /** Follows every node's accepted config from now on (and applies the current one). */
  start(): void {
    for (const n of this.lab.nodes) {
      const sync = () => this.sync(n.id);
      const w = watch(n.stateDir, (_e, file) => {
        if (file === null || file === ACCEPTED_FILE) sync();
      });
      w.on('error', () => undefined);
      this.watchers.push(w);
      sync();
    }
  }

  stop(): void {
    for (const w of this.watchers) w.close();
  }

  /** The addresses of the slots node `id` runs now. */
  addresses(id: string): ReadonlySet<string> {
    return this.held.get(id) ?? new Set();
  }

  private sync(id: string): void {
    let want: Set<string>;
    try {
      const { config } = verifyConfig(readFileSync(join(this.lab.node(id).stateDir, ACCEPTED_FILE)), this.trusted);
      want = new Set(config.slots.flatMap((s) => [s.ipv4, s.ipv6]));
    } catch {
      return; // none accepted yet (or being replaced): keep what runs
    }
    const have = this.held.get(id) ?? new Set<string>();
    const batch = [...[...want].filter((c) => !have.has(c)).map((c) => `addr replace ${c} dev lo`), ...[...have].filter((c) => !want.has(c)).map((c) => `addr del ${c} dev lo`)];
    if (batch.length === 0) return;
    run('ip', ['-n', this.lab.node(id).netns, '-force', '-batch', '-'], { input: `${batch.join('\n')}\n`, allowFail: true });
    this.held.set(id, want);
  }
}
