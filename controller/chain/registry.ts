/**
 * The Logos registry as the controller sees it, whatever pallet holds it: read the network at
 * one finalized block, tell which blocks changed it, and submit changes as signed extrinsics.
 * Implementations own the on-chain mapping entirely (today: uniques-registry.ts); nothing else
 * knows how entries are stored, so a dedicated Logos pallet replaces one implementation file.
 */
import type { KeyringPair } from '@polkadot/keyring/types';
import type { Issue } from '../../fabric/issues.js';
import type { AclRule, BlockRef, ChainSnapshot, Dvci, Network, Node, Slot } from '../../fabric/schema.js';

export type EntryKind = 'dvci' | 'node' | 'slot' | 'rule';
export type RegistryEntry = Dvci | Node | Slot | AclRule;

/**
 * An entry's fields as fabric's schemas take them as input (the shape of a snapshot file), for
 * example `{ id: 'web-1', vcpus: 2, …, groups: ['web'] }` or `{ from: 'group:web', ports: ['80'] }`.
 * The owner, `seq` and `origin` are never fields: the chain decides them.
 */
export type EntryFields = Readonly<Record<string, unknown>>;

/** What a user asks for; the implementation turns it into calls. */
export type RegistryChange =
  /** A new entry owned by `owner` (default: the signing account). Its id must be free. */
  | { readonly op: 'create'; readonly kind: EntryKind; readonly fields: EntryFields; readonly owner?: string }
  /**
   * Changes some fields of an existing entry; the result must still be a valid entry. `item`: the
   * registry item the caller knows holds it (from a snapshot): only that item is read (and checked
   * to hold `id`), not the whole collection.
   */
  | { readonly op: 'update'; readonly kind: EntryKind; readonly id: string; readonly fields: EntryFields; readonly item?: number }
  /** Marks a node or slot retired, or withdraws it where the signer may not edit it. */
  | { readonly op: 'retire'; readonly kind: 'node' | 'slot'; readonly id: string }
  /** Deletes the entry (an ACL revoke). */
  | { readonly op: 'remove'; readonly kind: EntryKind; readonly id: string };

/**
 * Who signs. With `multisig`, the call is proposed or approved on behalf of the multisig
 * account of `signatories` (which `pair` is one of); it runs once `threshold` have approved.
 */
export interface Signer {
  readonly pair: KeyringPair;
  readonly multisig?: { readonly threshold: number; readonly signatories: readonly string[] };
  /**
   * With `proxy`, `pair` signs as a proxy of `real` (Proxy pallet): the call runs with `real` as
   * its origin, as far as the proxy type the runtime records for the pair lets it.
   */
  readonly proxy?: { readonly real: string };
}

export interface SnapshotRead {
  readonly snapshot: ChainSnapshot;
  /** Entries that could not be decoded or failed fabric's schemas; they are left out. */
  readonly issues: readonly Issue[];
  /** What the snapshot was assembled from (assembleSnapshot): every live item, by kind then item. */
  readonly items: readonly ItemRead[];
}

/** One registry item: what a block changed, or what to read. */
export interface ItemRef {
  readonly kind: EntryKind;
  readonly item: number;
}

/** One registry item as read at a block. */
export interface ItemRead extends ItemRef {
  /** False when no such item exists at the block (burned, or never minted): it is in no snapshot. */
  readonly live: boolean;
  /** The decoded, valid entry; absent when the item is gone or refused. */
  readonly entry?: RegistryEntry;
  /** Why a live item was refused, named like `slots[item 17].vcpus`; empty otherwise. */
  readonly issues: readonly Issue[];
}

export interface ItemsRead {
  readonly block: BlockRef;
  /** The network as the registry names it at that block (it changes only with a 'network' touch). */
  readonly network: Network;
  /** One per distinct item asked for, in the order asked. */
  readonly items: readonly ItemRead[];
}

/** One registry change seen in a block's events. */
export interface Touch {
  readonly kind: EntryKind | 'network';
  /** The registry item changed; absent for collection-level changes. */
  readonly item?: number;
  /** What happened, as the chain names it (e.g. `uniques.AttributeSet`). */
  readonly event: string;
  /** The index in its block of the extrinsic that made the change; absent for changes outside extrinsics. */
  readonly extrinsic?: number;
  /** The entry field's key, for attribute changes (as the registry stores it, e.g. `state`). */
  readonly key?: string;
  /** The new value when the key is `state` (a node's quarantine or readmission, a retirement). */
  readonly value?: string;
}

export interface Submitted {
  /** `pending-approval`: a multisig approval was recorded; the change runs at the last one. */
  readonly status: 'applied' | 'pending-approval';
  /** The finalized block that holds the extrinsic. */
  readonly block: BlockRef;
  readonly extrinsic: string;
  /** The entries the change touched, with their registry item numbers. */
  readonly entries: readonly { readonly kind: EntryKind; readonly id: string; readonly item: number }[];
  readonly approvals?: { readonly have: number; readonly need: number };
}

export interface LogosRegistry {
  /** How to find this registry again (`--registry`): opaque to everyone but the implementation. */
  readonly locator: string;
  /**
   * Reads the whole network at `blockHash`, which must be finalized (else `invalid-input`).
   * Lists are ordered by registry item, so every reader produces the same snapshot. Idempotent.
   */
  readSnapshot(blockHash: string): Promise<SnapshotRead>;
  /**
   * Reads only `items` at `blockHash` (finalized, else `invalid-input`), each decoded and
   * validated exactly as readSnapshot does, so that the items of a full read at an earlier block,
   * replaced by these, assemble (assembleSnapshot) into the full read at this block, as long as
   * these are all the items changed in between. Costs a few round trips, not a full read.
   * Throws as readSnapshot when the registry itself is unreadable at that block. Idempotent.
   */
  readItems(blockHash: string, items: readonly ItemRef[]): Promise<ItemsRead>;
  /** The registry changes made by one block (empty when it made none). */
  touchedBy(block: BlockRef): Promise<readonly Touch[]>;
  /**
   * Submits all `changes` as one atomic extrinsic and waits until its block is finalized.
   * Throws Sub0Error `permission` when the runtime refuses the signer, `chain` for other
   * failures, `invalid-input`/`not-found` before submitting when the change cannot be built.
   */
  submit(changes: readonly RegistryChange[], signer: Signer): Promise<Submitted>;
}
