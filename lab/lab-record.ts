/**
 * What a running `sub0 lab up` records for the other commands (`sub0 lab down|ping|exec`,
 * `sub0 mesh status`, and every chain command through its chain record): where its chain and
 * broker are, its controller's state, and its nodes' namespaces. `$SUB0_HOME/lab/lab.json`.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { Sub0Error } from '../fabric/errors.js';
import { labHome, recordLive, sub0Home } from '../controller/chain/home.js';
import { writeFileAtomic } from '../overlay/atomic-file.js';
import { readJsonRecord } from '../overlay/json-file.js';

export const LabRecord = z.object({
  pid: z.number().int().positive(),
  /** false while it starts. */
  ready: z.boolean(),
  network: z.string(),
  chain: z.object({ endpoint: z.string(), registry: z.string() }),
  /** Where this machine reaches the broker, and where the nodes do. */
  broker: z.object({ url: z.string(), nodeUrl: z.string(), kind: z.enum(['embedded', 'mosquitto']) }),
  controllerDir: z.string(),
  controllerKey: z.string(),
  nodes: z.array(z.object({ id: z.string(), netns: z.string(), ifname: z.string(), stateDir: z.string(), underlay: z.string() })),
  /** The slots run as VMs (`lab up --vm-slots`); else they are addresses on their nodes. */
  vmSlots: z.boolean().optional(),
});
export type LabRecord = z.output<typeof LabRecord>;

export function labRecordPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(labHome(sub0Home(env)), 'lab.json');
}

export function writeLabRecord(r: LabRecord, env: NodeJS.ProcessEnv = process.env): void {
  writeFileAtomic(labRecordPath(env), `${JSON.stringify(r, null, 2)}\n`);
}

export function removeLabRecord(env: NodeJS.ProcessEnv = process.env): void {
  rmSync(labRecordPath(env), { force: true });
}

/** The record, if there is one (running or left by a lab that died); `live` says which. */
export function readLabRecord(env: NodeJS.ProcessEnv = process.env): { record: LabRecord; live: boolean } | undefined {
  const record = readJsonRecord(labRecordPath(env), LabRecord, 'unreadable lab record; `sub0 lab down` removes it');
  return record && { record, live: recordLive(record) };
}

/** The running lab, or a clear error saying how to start one. */
export function runningLab(env: NodeJS.ProcessEnv = process.env): LabRecord {
  const r = readLabRecord(env);
  if (!r || !r.live) throw new Sub0Error('not-found', 'no lab is running: start one with `sub0 lab up` (or `npm start`)');
  if (!r.record.ready) throw new Sub0Error('not-found', `the lab (pid ${r.record.pid}) is still starting`);
  return r.record;
}
