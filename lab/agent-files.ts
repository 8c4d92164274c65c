/**
 * What a lab reads of a node agent from outside it: its status.json and its log, both in its
 * state dir, and a wait on the status (event-driven where it can be: the agent rewrites the file
 * at every change, and the wait re-reads it then).
 */
import type { ChildProcess } from 'node:child_process';
import { watch } from 'node:fs';
import { join } from 'node:path';
import { readAgentStatus, STATUS_FILE, type AgentStatus } from '../overlay/agent/status.js';
import { logTail } from './processes.js';

export { readAgentStatus };

export function agentLogTail(stateDir: string, lines = 20): string {
  return logTail(join(stateDir, 'agent.log'), lines);
}

/**
 * Resolves with the agent's status once `pred` holds; rejects, with the agent's log tail, when the
 * agent process exits first or `timeoutMs` passes.
 */
export async function waitAgentStatus(o: { node: string; stateDir: string; proc: ChildProcess | undefined }, pred: (s: AgentStatus) => boolean, what: string, timeoutMs: number): Promise<AgentStatus> {
  const end = Date.now() + timeoutMs;
  let wake: () => void = () => undefined;
  const w = watch(o.stateDir, (_e, f) => (f === null || f === STATUS_FILE) && wake());
  w.on('error', () => undefined);
  try {
    for (;;) {
      const s = readAgentStatus(o.stateDir);
      if (s && pred(s)) return s;
      const p = o.proc;
      if (p && (p.exitCode !== null || p.signalCode !== null) && p.pid === s?.pid) throw new Error(`${o.node}: agent exited while waiting for ${what}\n${agentLogTail(o.stateDir)}`);
      if (Date.now() > end) throw new Error(`${o.node}: timed out waiting for ${what}; status ${JSON.stringify(s?.lastResult ?? s)}\n${agentLogTail(o.stateDir)}`);
      // The next change of the file, or a short poll (a rename can slip past a watch).
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  } finally {
    w.close();
  }
}
