/**
 * A snapshot from its registry items: the one place where a full read and a held snapshot patched
 * item by item become a ChainSnapshot, so the two cannot drift apart. Pure.
 */
import type { Issue } from '../../fabric/issues.js';
import type { BlockRef, ChainSnapshot, Network } from '../../fabric/schema.js';
import type { EntryKind, ItemRead, SnapshotRead } from './registry.js';

export const KINDS = ['dvci', 'node', 'slot', 'rule'] as const satisfies readonly EntryKind[];
export const LIST = { dvci: 'dvcis', node: 'nodes', slot: 'slots', rule: 'rules' } as const;

export type ItemsByKind = Readonly<Record<EntryKind, readonly ItemRead[]>>;

/**
 * Lists hold the valid entries in item order; issues are those of every item, by kind (dvci,
 * node, slot, rule) then item. `byKind` must hold live items only, each list in item order.
 */
export function assembleSnapshot(network: Network, block: BlockRef, byKind: ItemsByKind): SnapshotRead {
  const issues: Issue[] = [];
  const items: ItemRead[] = [];
  const lists = {} as Record<(typeof LIST)[EntryKind], unknown[]>;
  for (const kind of KINDS) {
    const list: unknown[] = (lists[LIST[kind]] = []);
    for (const it of byKind[kind]) {
      items.push(it);
      for (const i of it.issues) issues.push(i);
      if (it.entry) list.push(it.entry);
    }
  }
  return { snapshot: { network, block, ...lists } as unknown as ChainSnapshot, issues, items };
}
