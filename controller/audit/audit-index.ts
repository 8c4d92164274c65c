/**
 * The audit index on disk, `audit.jsonl` in the controller's state dir, beside the follower's
 * cursor: a header line naming the registry and the block after which the index is complete,
 * then one AuditRecord per line, in chain order. Written by AuditLog (audit-log.ts), read here by
 * the controller at start and by `sub0 audit`.
 *
 * What it covers: every registry change of the blocks after `since`, up to the follower's
 * cursor (the controller records a block before its cursor moves past it). Records after the
 * cursor may be those of a block in flight, possibly cut short by a crash: readers drop them and
 * read those blocks from the chain again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { Sub0Error } from '../../fabric/errors.js';
import { BlockRef } from '../../fabric/schema.js';
import { readJsonRecord } from '../../overlay/json-file.js';
import { AuditRecord } from './audit-record.js';

export const AUDIT_FILE = 'audit.jsonl';
/** The follower's cursor file, as the controller names it in its state dir (controller/config.ts). */
export const CURSOR_FILE = 'cursor.json';

export const AuditHeader = z.strictObject({
  audit: z.literal(1),
  registry: z.string().min(1),
  /** The index holds every change of the blocks after this one. */
  since: BlockRef,
});
export type AuditHeader = z.output<typeof AuditHeader>;

export interface AuditIndex {
  readonly header: AuditHeader;
  /** The last block the index is complete up to (`since` when it holds nothing yet). */
  readonly through: number;
  readonly records: readonly AuditRecord[];
}

export interface ParsedIndex {
  readonly header: AuditHeader | undefined;
  readonly records: AuditRecord[];
  /** Bytes of whole lines: a torn last line (a crash in mid-write) starts here. */
  readonly whole: number;
}

/** Parses the file's text; a torn last line is left out, any other bad line throws naming it. */
export function parseIndex(text: string, file: string): ParsedIndex {
  const whole = text.lastIndexOf('\n') + 1;
  const lines = text.slice(0, whole).split('\n').slice(0, -1);
  let header: AuditHeader | undefined;
  const records: AuditRecord[] = [];
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new Sub0Error('invalid-input', 'not JSON: the audit index is damaged; move it away and the controller starts a new one (`sub0 audit --rebuild` reads the chain)', { where });
    }
    const r = i === 0 ? AuditHeader.safeParse(json) : AuditRecord.safeParse(json);
    if (!r.success) throw new Sub0Error('invalid-input', `not an audit ${i === 0 ? 'header' : 'record'}: ${z.prettifyError(r.error).replace(/\n/g, '; ')}`, { where });
    if (i === 0) header = r.data as AuditHeader;
    else records.push(r.data as AuditRecord);
  });
  return { header, records, whole };
}

/** The follower's cursor in `cursorFile`, when it belongs to `registry`. */
export function readCursor(cursorFile: string, registry: string): BlockRef | undefined {
  const r = readJsonRecord(cursorFile, z.object({ cursor: BlockRef, registry: z.string() }), 'unreadable follower cursor');
  return r && r.registry === registry ? r.cursor : undefined;
}

/**
 * The index in `dir` as far as it is complete: up to the follower's cursor beside it (records of
 * later blocks dropped), or, without a cursor, up to the block before its last one (which may be
 * cut short). Undefined when there is no index; throws when it is damaged or of another registry.
 */
export function readAuditIndex(dir: string, registry: string): AuditIndex | undefined {
  const file = join(dir, AUDIT_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Sub0Error('permission', `cannot read the audit index: ${(e as Error).message}`, { where: file });
  }
  const { header, records } = parseIndex(text, file);
  if (!header) return undefined; // only a torn header: nothing was ever recorded
  if (header.registry !== registry) throw new Sub0Error('invalid-input', `the audit index belongs to registry ${header.registry}, not ${registry}`, { where: file });
  const cursor = readCursor(join(dir, CURSOR_FILE), registry);
  const last = records.at(-1)?.block ?? header.since.number;
  const through = Math.max(header.since.number, cursor ? cursor.number : last - 1);
  return { header, through, records: records.filter((r) => r.block <= through) };
}
