/**
 * The agent's status, as one JSON file in its state dir (status.json), replaced atomically on every
 * change: which config is applied, what the last reconcile did, why the last config was refused.
 * The lab and the tests wait on it; an operator reads it with `cat`.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-file.js';
import { join } from 'node:path';
import type { BlockRef } from '../../fabric/schema.js';
import type { ReconcileResult } from './reconciler.js';

export const STATUS_FILE = 'status.json';

import type { SlotStatus } from '../slots/slot-manager.js';

export interface AgentStatus {
  readonly pid: number;
  readonly node: string | undefined;
  readonly ifname: string;
  readonly publicKey: string;
  readonly backends: { readonly wireguard: string; readonly acl: string; readonly aclFallbackReason?: string };
  /** The config accepted last (it may still be converging). */
  readonly accepted?: { readonly revision: number; readonly hash: string; readonly source: string; readonly at: number };
  readonly lastResult?: ReconcileResult;
  /** The revision and hash of the last config that fully converged (and its ACL entry count). */
  readonly converged?: { readonly revision: number; readonly block: BlockRef; readonly hash: string; readonly at: number };
  readonly lastRejected?: { readonly code: string; readonly message: string; readonly at: number };
  /** A config source that cannot read (an unreadable file); absent while every source reads. */
  readonly sourceError?: { readonly source: string; readonly code: string; readonly message: string; readonly at: number } | undefined;
  /** The slots this node runs as VMs (with --slots): state, uptime, restarts, last error. */
  readonly slots?: readonly SlotStatus[];
  readonly updatedAt: number;
}

export class StatusFile {
  private status: AgentStatus;

  /** Called after every change (the agent publishes its signed status from here). */
  onChange: (() => void) | undefined;

  constructor(
    private readonly stateDir: string,
    initial: Omit<AgentStatus, 'updatedAt'>,
  ) {
    this.status = { ...initial, updatedAt: Date.now() };
    this.write();
  }

  get value(): AgentStatus {
    return this.status;
  }

  update(patch: Partial<Omit<AgentStatus, 'updatedAt'>>): void {
    this.status = { ...this.status, ...patch, updatedAt: Date.now() };
    this.write();
    this.onChange?.();
  }

  recordResult(r: ReconcileResult): void {
    const converged = r.status === 'failed' ? this.status.converged : { revision: r.revision, block: r.block, hash: r.configHash, at: Date.now() };
    this.update({ lastResult: r, ...(converged ? { converged } : {}) });
  }

  private write(): void {
    writeFileAtomic(join(this.stateDir, STATUS_FILE), `${JSON.stringify(this.status, null, 2)}\n`);
  }
}

/** An agent's status.json, read from outside it (the CLI, labs); undefined when absent or unreadable. */
export function readAgentStatus(stateDir: string): AgentStatus | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, STATUS_FILE), 'utf8')) as AgentStatus;
  } catch {
    return undefined;
  }
}
