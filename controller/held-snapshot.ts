/**
 * The registry as the controller last read it, item by item: a full read, then patched with the
 * items each pass reads again. It assembles (assembleSnapshot) into exactly what a full read at
 * its block gives, provided every item changed since the last full read was patched in: the
 * follower names them from the blocks' events. Holds nothing the chain cannot rebuild: a full
 * read replaces it whole. Pure: no I/O.
 */
import { canonicalJson } from '../fabric/encoding.js';
import type { BlockRef, Network } from '../fabric/schema.js';
import { assembleSnapshot, KINDS } from './chain/assemble-snapshot.js';
import type { EntryKind, ItemRead, ItemsRead, SnapshotRead } from './chain/registry.js';

/** One item whose read changed; `before`/`after` are absent when the item was not live. */
export interface ItemChange {
  readonly kind: EntryKind;
  readonly item: number;
  readonly before?: ItemRead;
  readonly after?: ItemRead;
}

export class HeldSnapshot {
  /** Live items by kind, each map in item order. */
  private readonly items: Record<EntryKind, Map<number, ItemRead>>;
  /** The highest item number each map has held (a removal leaves it: it only decides when to sort). */
  private readonly highest: Record<EntryKind, number>;
  private assembled: SnapshotRead | undefined;

  private constructor(
    private blockRef: BlockRef,
    readonly network: Network,
    items: Record<EntryKind, Map<number, ItemRead>>,
  ) {
    this.items = items;
    this.highest = Object.fromEntries(KINDS.map((k) => [k, [...items[k].keys()].reduce((a, b) => Math.max(a, b), -1)])) as Record<EntryKind, number>;
  }

  /** From a full read (its `items` are live and in kind, then item, order). */
  static of(read: SnapshotRead): HeldSnapshot {
    const items = Object.fromEntries(KINDS.map((k) => [k, new Map<number, ItemRead>()])) as Record<EntryKind, Map<number, ItemRead>>;
    for (const it of read.items) items[it.kind].set(it.item, it);
    for (const k of KINDS) items[k] = sorted(items[k]);
    const held = new HeldSnapshot(read.snapshot.block, read.snapshot.network, items);
    held.assembled = read;
    return held;
  }

  get block(): BlockRef {
    return this.blockRef;
  }

  /** The snapshot and its read issues, as a full read at `block` gives them. */
  read(): SnapshotRead {
    this.assembled ??= assembleSnapshot(this.network, this.blockRef, {
      dvci: [...this.items.dvci.values()],
      node: [...this.items.node.values()],
      slot: [...this.items.slot.values()],
      rule: [...this.items.rule.values()],
    });
    return this.assembled;
  }

  /** The live items of one kind, in item order. */
  list(kind: EntryKind): readonly ItemRead[] {
    return this.read().items.filter((it) => it.kind === kind);
  }

  /**
   * Moves to `read.block`, replacing the items read (a gone item leaves). Returns the items whose
   * read differs from what was held. The caller checked that `read.network` is the held one.
   */
  patch(read: ItemsRead): ItemChange[] {
    const changes: ItemChange[] = [];
    for (const after of read.items) {
      const map = this.items[after.kind];
      const before = map.get(after.item);
      if (same(before, after)) continue;
      changes.push({ kind: after.kind, item: after.item, ...(before ? { before } : {}), ...(after.live ? { after } : {}) });
      if (!after.live) map.delete(after.item);
      else {
        map.set(after.item, after);
        // A new item is almost always the newest; one below the highest puts the map back in order.
        if (!before && after.item < this.highest[after.kind]) this.items[after.kind] = sorted(map);
        this.highest[after.kind] = Math.max(this.highest[after.kind], after.item);
      }
    }
    this.blockRef = read.block;
    this.assembled = undefined;
    return changes;
  }
}

function same(before: ItemRead | undefined, after: ItemRead): boolean {
  if (!before) return !after.live;
  return after.live && canonicalJson({ e: before.entry ?? null, i: before.issues }) === canonicalJson({ e: after.entry ?? null, i: after.issues });
}

function sorted(m: Map<number, ItemRead>): Map<number, ItemRead> {
  return new Map([...m].sort((a, b) => a[0] - b[0]));
}
