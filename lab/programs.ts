/**
 * How the lab starts sub0's programs in child processes: from the bundles (dist/agent.js,
 * dist/sub0.js) when it runs bundled itself (`sub0 lab up` after the build), from the TypeScript
 * sources through tsx when it runs from source (the tests).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const fromSource = here.endsWith('.ts');
/** The repository root: one level above lab/ from source, above dist/ once bundled. */
export const REPO = resolve(dirname(here), '..');

function program(bundle: string, source: string): string[] {
  const dist = join(REPO, 'dist', bundle);
  if (!fromSource && existsSync(dist)) return [process.execPath, dist];
  return [process.execPath, '--import', 'tsx', join(REPO, source)];
}

/** The node agent (dist/agent.js). */
export const agentProgram = (): string[] => program('agent.js', 'cli/agent-main.ts');
/** The sub0 CLI (dist/sub0.js). */
export const sub0Program = (): string[] => program('sub0.js', 'cli/sub0-main.ts');
