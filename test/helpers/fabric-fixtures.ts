/** Builders for snapshots in tests: a small valid network, and copies of it with one change. */
import { readFileSync } from 'node:fs';
import { parseSnapshot } from '../../fabric/parse-snapshot.js';
import type { ChainSnapshot } from '../../fabric/schema.js';

export const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
export const BOB = '5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty';
export const CHARLIE = '5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y';

export const LAB_FILE = new URL('../../fabric/examples/lab.json', import.meta.url).pathname;

/** The shipped example, as raw JSON (a fresh copy each call, free to mutate). */
export function labRaw(): Record<string, any> {
  return JSON.parse(readFileSync(LAB_FILE, 'utf8'));
}

export function labSnapshot(mutate?: (raw: Record<string, any>) => void): ChainSnapshot {
  const raw = labRaw();
  mutate?.(raw);
  const { snapshot, issues } = parseSnapshot(raw);
  if (issues.length) throw new Error(`fixture does not parse: ${JSON.stringify(issues)}`);
  return snapshot;
}
