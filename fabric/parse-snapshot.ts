/**
 * Parses a raw snapshot (a JSON file, or what a chain adapter decoded) entry by entry: an entry
 * that fails its schema becomes an issue naming it and is left out; the others are kept.
 * Only a snapshot whose frame (network, block, the four lists) is unreadable is refused whole.
 */
import * as z from 'zod';
import { Sub0Error } from './errors.js';
import { issue, joinPath, type Issue, type IssueCode } from './issues.js';
import { AclRule, BlockRef, Dvci, Network, Node, Slot, type ChainSnapshot } from './schema.js';

const Frame = z.object({
  network: Network,
  block: BlockRef,
  dvcis: z.array(z.unknown()).default([]),
  nodes: z.array(z.unknown()).default([]),
  slots: z.array(z.unknown()).default([]),
  rules: z.array(z.unknown()).default([]),
});

const RESOURCE_FIELDS = new Set(['vcpus', 'memoryMiB', 'diskGiB', 'capacity']);

/** Maps a schema failure to the most telling issue code. */
function codeOf(zi: z.core.$ZodIssue): IssueCode {
  const params = (zi as { params?: { sub0?: IssueCode } }).params;
  if (params?.sub0) return params.sub0;
  const field = zi.path[0];
  if (field === 'wgPublicKey') return 'bad-key';
  if (typeof field === 'string' && RESOURCE_FIELDS.has(field)) return 'impossible-resources';
  return 'invalid-entry';
}

function idOf(raw: unknown): string | undefined {
  if (raw && typeof raw === 'object' && 'id' in raw) {
    const id = (raw as { id: unknown }).id;
    if (typeof id === 'string' || typeof id === 'number') return String(id);
  }
  return undefined;
}

/** Parses one list; `at` names it in issue paths (`nodes`). */
export function parseEntries<T extends z.ZodType>(schema: T, list: readonly unknown[], at: string, issues: Issue[]): z.output<T>[] {
  const out: z.output<T>[] = [];
  list.forEach((raw, i) => {
    const r = schema.safeParse(raw);
    if (r.success) {
      out.push(r.data);
      return;
    }
    const id = idOf(raw);
    for (const zi of r.error.issues) issues.push(issue(codeOf(zi), joinPath(`${at}[${i}]`, zi.path), zi.message, id));
  });
  return out;
}

export function parseSnapshot(raw: unknown, source = 'snapshot'): { snapshot: ChainSnapshot; issues: Issue[] } {
  const frame = Frame.safeParse(raw);
  if (!frame.success) throw new Sub0Error('invalid-input', z.prettifyError(frame.error), { where: source });
  const f = frame.data;
  const issues: Issue[] = [];
  const snapshot: ChainSnapshot = {
    network: f.network,
    block: f.block,
    dvcis: parseEntries(Dvci, f.dvcis, 'dvcis', issues),
    nodes: parseEntries(Node, f.nodes, 'nodes', issues),
    slots: parseEntries(Slot, f.slots, 'slots', issues),
    rules: parseEntries(AclRule, f.rules, 'rules', issues),
  };
  return { snapshot, issues };
}
