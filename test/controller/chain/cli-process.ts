/**
 * Runs the sub0 CLI from source as child processes, without blocking this process (a chain in
 * this process must keep answering meanwhile), and `sub0 chain up` as a background process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sub0(args: readonly string[], env: Record<string, string>): ChildProcess {
  // Only what the test sets: no key, endpoint or registry leaks in from the caller's shell.
  const base = { ...process.env };
  for (const k of ['SUB0_SURI', 'SUB0_ENDPOINT', 'SUB0_REGISTRY', 'SUB0_HOME']) delete base[k];
  return spawn(process.execPath, ['--import', 'tsx', 'cli/sub0-main.ts', ...args], {
    cwd: ROOT,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function runCli(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const p = sub0(args, env);
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => (stdout += d));
    p.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface ChainProcess {
  readonly endpoint: string;
  readonly log: () => string;
  /** SIGINT, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `sub0 chain up` and resolves once it serves. */
export function chainUp(args: readonly string[], env: Record<string, string>): Promise<ChainProcess> {
  return new Promise((resolve, reject) => {
    const p = sub0(['chain', 'up', '--port', '0', ...args], env);
    let out = '';
    const exited = new Promise<number | null>((r) => p.on('close', (code) => r(code)));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`chain up did not serve in time:\n${out}`));
    }, 120_000);
    const onData = (d: Buffer) => {
      out += d;
      for (const line of out.split('\n')) {
        if (!line.includes('"serving;')) continue;
        clearTimeout(timer);
        const endpoint = (JSON.parse(line) as { endpoint: string }).endpoint;
        resolve({
          endpoint,
          log: () => out,
          stop: async () => {
            p.kill('SIGINT');
            return exited;
          },
        });
        return;
      }
    };
    p.stdout!.on('data', onData);
    p.stderr!.on('data', (d) => (out += d));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`chain up exited with ${code}:\n${out}`));
    });
  });
}
