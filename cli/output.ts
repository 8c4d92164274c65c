/** How CLI commands print: JSON for machines (`--json`), aligned text for people. */
import { isSub0Error } from '../fabric/errors.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(rows: readonly (readonly string[])[], header?: readonly string[]): void {
  const all = header ? [header, ...rows] : rows;
  const widths: number[] = [];
  for (const r of all) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  for (const r of all) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
}

/** Exit codes: 2 for input the user can fix, 1 for everything else. */
export function exitOnError(e: unknown): never {
  if (isSub0Error(e)) {
    process.stderr.write(`sub0: ${e.code}: ${e.message}\n`);
    process.exit(e.code === 'invalid-input' ? 2 : 1);
  }
  process.stderr.write(`sub0: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
}

/** Wraps a command action so that every failure ends in one clear line and an exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      exitOnError(e);
    }
  };
}

