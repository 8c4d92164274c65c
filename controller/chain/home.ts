/**
 * Where sub0 keeps its local state: `$SUB0_HOME`, or `~/.sub0`. The local chain's database and
 * the record of where it listens live under `chain/`; followers keep their cursors beside them.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../overlay/atomic-file.js';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';
import { Sub0Error } from '../../fabric/errors.js';

export function sub0Home(env: NodeJS.ProcessEnv = process.env): string {
  return env.SUB0_HOME && env.SUB0_HOME.length > 0 ? env.SUB0_HOME : join(homedir(), '.sub0');
}

export function chainDir(home: string): string {
  return join(home, 'chain');
}

/** Where `sub0 lab up` keeps its chain, controller and broker state (its own chain/ inside). */
export function labHome(home: string): string {
  return join(home, 'lab');
}

/** Whether the process that wrote a record still runs (records without a pid: assumed so). */
export function recordLive(r: { readonly pid?: number | undefined }): boolean {
  if (r.pid === undefined) return true;
  try {
    process.kill(r.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What `sub0 chain up` records while it runs, so that other commands find the local chain. */
export const LocalChainRecord = z.object({
  endpoint: z.string().regex(/^wss?:\/\//),
  /** The registry's root collection (see uniques-registry.ts). */
  registry: z.string().min(1),
  network: z.string(),
  /** sha256 of the chain spec's raw genesis: a database from another spec is refused. */
  genesis: z.string(),
  /** The process serving it (absent in records of older versions). */
  pid: z.number().int().positive().optional(),
});
export type LocalChainRecord = z.output<typeof LocalChainRecord>;

export function localChainRecordPath(home: string): string {
  return join(chainDir(home), 'local.json');
}

/** The record, or undefined when no local chain was ever started here. */
export function readLocalChainRecord(home: string): LocalChainRecord | undefined {
  const path = localChainRecordPath(home);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const r = LocalChainRecord.safeParse(safeJson(text));
  if (!r.success) throw new Sub0Error('invalid-input', `unreadable local chain record: ${z.prettifyError(r.error)}`, { where: path });
  return r.data;
}

/** Writes JSON through a temporary file and a rename, so that readers never see half a file. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
