/** Small JSON state files (records, cursors), read through a schema. */
import { readFileSync } from 'node:fs';
import type * as z from 'zod';
import { Sub0Error } from '../fabric/errors.js';

/**
 * The file at `path` parsed by `schema`; undefined when there is no such file. A file that is not
 * JSON or fails the schema throws Sub0Error 'invalid-input' naming the file, with `unreadable`
 * as the message (say what the user can do about it).
 */
export function readJsonRecord<S extends z.ZodType>(path: string, schema: S, unreadable: string): z.output<S> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new Sub0Error('invalid-input', unreadable, { where: path });
  return r.data;
}
