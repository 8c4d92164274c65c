/** Runs a system tool (ip, tc, nft, mount) without a shell; failures become Sub0Error 'driver'. */
import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import { Sub0Error } from '../../fabric/errors.js';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Resolves with the exit code and output; rejects only when the program cannot be started. Past
 * `timeoutMs` the tool is killed (SIGKILL) and the result says so (code -1). `nice` (0 to 19)
 * lowers the tool's CPU priority.
 */
export function run(cmd: string, args: readonly string[], input?: string, timeoutMs?: number, nice?: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...(timeoutMs ? { timeout: timeoutMs, killSignal: 'SIGKILL' as const } : {}) });
    if (nice !== undefined && child.pid !== undefined) {
      try {
        setPriority(child.pid, nice);
      } catch {
        // it runs at the normal priority
      }
    }
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (cause) => reject(new Sub0Error('unsupported', `cannot run ${cmd}`, { cause, where: cmd })));
    child.on('close', (code, signal) => resolve({ code: code ?? -1, stdout, stderr: signal && timeoutMs ? `${stderr}${cmd}: no answer within ${timeoutMs / 1000} s (killed)` : stderr }));
    if (child.stdin) {
      child.stdin.on('error', () => {}); // a tool that exits without reading its input: its exit code tells
      child.stdin.end(input);
    }
  });
}

/** Like run(), and throws Sub0Error 'driver' with the tool's message when it exits non-zero. */
export async function runOk(cmd: string, args: readonly string[], input?: string, timeoutMs?: number): Promise<string> {
  const r = await run(cmd, args, input, timeoutMs);
  if (r.code !== 0) {
    throw new Sub0Error('driver', `${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`, { where: cmd });
  }
  return r.stdout;
}
