/**
 * Writes the entries of a snapshot into a registry, as the signer's extrinsics, in batches.
 * Entries whose id is already registered are skipped, so an import can be re-run after an
 * interruption. Owners come from the snapshot (a DVCI's owner is its operator).
 */
import type { ChainSnapshot } from '../../fabric/schema.js';
import type { EntryKind, LogosRegistry, RegistryChange, Signer, Submitted } from './registry.js';
import { ruleToInput } from './snapshot-input.js';

export interface ImportResult {
  readonly created: number;
  readonly skipped: readonly string[];
  readonly submitted: readonly Submitted[];
}

const LISTS = [
  ['dvci', 'dvcis'],
  ['node', 'nodes'],
  ['slot', 'slots'],
  ['rule', 'rules'],
] as const;

/**
 * `signer` signs every batch; or, as a function, names per kind the signers that approve each
 * batch in turn until it runs (the signatories of a multisig that owns that kind's collection).
 */
export async function importSnapshot(
  registry: LogosRegistry,
  finalizedHash: string,
  snapshot: ChainSnapshot,
  signer: Signer | ((kind: EntryKind) => readonly Signer[]),
  o: { batch?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<ImportResult> {
  const { snapshot: now } = await registry.readSnapshot(finalizedHash);
  const changes: RegistryChange[] = [];
  const skipped: string[] = [];
  for (const [kind, list] of LISTS) {
    const have = new Set(now[list].map((e) => e.id));
    for (const entry of snapshot[list]) {
      if (have.has(entry.id)) {
        skipped.push(`${kind} ${entry.id}`);
        continue;
      }
      changes.push(createOf(kind, kind === 'rule' ? ruleToInput(entry as ChainSnapshot['rules'][number]) : { ...entry }));
    }
  }
  const size = o.batch ?? 25;
  const submitted: Submitted[] = [];
  let done = 0;
  // A batch holds one kind only, so that one set of signers may write it.
  for (const [kind] of LISTS) {
    const ofKind = changes.filter((c) => c.kind === kind);
    for (let i = 0; i < ofKind.length; i += size) {
      const batch = ofKind.slice(i, i + size);
      const signers = typeof signer === 'function' ? signer(kind) : [signer];
      let r: Submitted | undefined;
      for (const s of signers) {
        r = await registry.submit(batch, s);
        if (r.status === 'applied') break;
      }
      submitted.push(r!);
      done += batch.length;
      o.onProgress?.(done, changes.length);
    }
  }
  return { created: changes.length, skipped, submitted };
}

function createOf(kind: EntryKind, entry: Record<string, unknown>): RegistryChange {
  // The chain decides owner, creation order and origin; the rest are the entry's fields.
  const { owner, operator, seq: _seq, origin: _origin, ...fields } = entry;
  return { op: 'create', kind, fields, owner: String(kind === 'dvci' ? operator : owner) };
}
