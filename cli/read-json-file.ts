import { readFileSync } from 'node:fs';
import { Sub0Error } from '../fabric/errors.js';

/** Reads and parses a JSON file, naming the file (and the line) in any error. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Sub0Error('not-found', `cannot read: ${(e as Error).message}`, { where: path, cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Sub0Error('invalid-input', `not valid JSON: ${(e as Error).message}`, { where: path, cause: e });
  }
}
