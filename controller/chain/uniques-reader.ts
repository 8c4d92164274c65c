/**
 * Reading the Logos registry out of Uniques storage: the whole registry at a block, or only some
 * of its items. Part of the Uniques mapping with uniques-registry.ts (the interface, writing) and
 * uniques-codec.ts (attributes <-> fields). Both reads decode each item with `decodeItem`, and
 * check the registry's frame (root attributes, collection kinds, operator) with the same code, so
 * that items read one by one equal those of a full read.
 *
 * Storage is read raw (state_getKeysPaged + state_queryStorageAt) and decoded by hand:
 * polkadot-js types cost more than the read itself at 100k entries.
 */
import { Buffer } from 'node:buffer';
import { blake2AsU8a } from '@polkadot/util-crypto';
import * as z from 'zod';
import { Sub0Error } from '../../fabric/errors.js';
import type { Issue } from '../../fabric/issues.js';
import { parseEntries } from '../../fabric/parse-snapshot.js';
import { AclRule, Dvci, Id, Node, Slot, type BlockRef, type Network } from '../../fabric/schema.js';
import { KINDS, LIST, assembleSnapshot } from './assemble-snapshot.js';
import type { ChainClient } from './client.js';
import { storage } from './pallets.js';
import type { EntryKind, ItemRead, ItemRef, ItemsRead, RegistryEntry, SnapshotRead } from './registry.js';
import { PAGE_SIZE, readPrefix } from './storage-pages.js';
import { type AccountFormat, decodeAsset, decodeAttribute, decodeEntry, type RawItem } from './uniques-codec.js';

export const FORMAT = 'logos/1';
const SCHEMAS = { dvci: Dvci, node: Node, slot: Slot, rule: AclRule } as const;
/** Root collection attributes naming the collection of each kind (DVCIs live in the root). */
const POINTER = { node: 'nodes', slot: 'slots', rule: 'rules' } as const;
/** The root attributes the frame is made of (see layoutOf). */
const ROOT_ATTRS = ['sub0', 'kind', 'net', 'name', 'nodes', 'slots', 'rules'] as const;
/** Item attribute prefixes listed at once by readItems. */
const PARALLEL = 32;

export interface Collection {
  readonly id: number;
  /** Collection-level attributes. */
  readonly attrs: Map<string, Uint8Array>;
  /** Live items (those with an owner), by item number, in item order. */
  readonly items: Map<number, RawItem>;
  /** One past the highest item number that any item or attribute uses. */
  readonly highest: number;
}

export interface Layout {
  readonly root: number;
  readonly ids: Readonly<Record<EntryKind, number>>;
  readonly network: Network;
}

const text = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

export class UniquesReader {
  constructor(
    private readonly client: ChainClient,
    private readonly root: number,
    private readonly accounts: AccountFormat,
  ) {}

  /** The whole registry at a finalized block; returns the layout it found with it. */
  async readAll(blockHash: string): Promise<{ read: SnapshotRead; layout: Layout }> {
    const block = await this.finalizedBlock(blockHash);
    const [rootCol, owner] = await Promise.all([this.readCollection(this.root, block.hash), this.classOwner(this.root, block.hash)]);
    const layout = this.layoutOf(rootCol.attrs, owner);
    const cols = await Promise.all((['node', 'slot', 'rule'] as const).map((k) => this.readCollection(layout.ids[k], block.hash)));
    const byKind: Record<EntryKind, Collection> = { dvci: rootCol, node: cols[0]!, slot: cols[1]!, rule: cols[2]! };
    for (const k of ['node', 'slot', 'rule'] as const) checkKind(byKind[k].attrs, k, byKind[k].id);
    const items = Object.fromEntries(KINDS.map((k) => [k, [...byKind[k].items.values()].map((it) => this.decodeItem(k, it))])) as Record<EntryKind, ItemRead[]>;
    return { read: assembleSnapshot(layout.network, block, items), layout };
  }

  /**
   * Only `refs`, at a finalized block, with the frame checked as readAll checks it. `layout`
   * locates the items; when the chain's differs (a 'network' change the caller did not see), the
   * read is made again with the chain's. Round trips: the item keys, the frame and owners, and
   * the finality check at once; then the attribute values.
   */
  async readItems(blockHash: string, refs: readonly ItemRef[], layout: Layout): Promise<{ read: ItemsRead; layout: Layout }> {
    const finalized = this.finalizedBlock(blockHash);
    finalized.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    const first = await this.readItemsWith(blockHash, refs, layout);
    const chain = first.layout;
    const same = KINDS.every((k) => chain.ids[k] === layout.ids[k]);
    const again = same ? first : await this.readItemsWith(blockHash, refs, chain);
    if (!same && KINDS.some((k) => again.layout.ids[k] !== chain.ids[k])) throw new Sub0Error('internal', 'the registry layout changed within one block');
    return { read: { block: await finalized, network: again.layout.network, items: again.items }, layout: again.layout };
  }

  private async readItemsWith(at: string, refs: readonly ItemRef[], layout: Layout): Promise<{ layout: Layout; items: ItemRead[] }> {
    const api = this.client.api;
    const wanted = [...new Map(refs.map((r) => [`${r.kind}/${r.item}`, r])).values()];
    const attrPrefix = (col: number) => storage(api, 'uniques', 'attribute').keyPrefix(col);
    const attrKey = (col: number, key: string) => storage(api, 'uniques', 'attribute').key(col, null, `0x${Buffer.from(key, 'latin1').toString('hex')}`);
    const assetKey = (col: number, item: number) => storage(api, 'uniques', 'asset').key(col, item);
    const classKey = storage(api, 'uniques', 'class').key(this.root);
    const frameKeys = [...ROOT_ATTRS.map((k) => attrKey(this.root, k)), ...(['node', 'slot', 'rule'] as const).map((k) => attrKey(layout.ids[k], 'kind'))];
    const assetKeys = wanted.map((r) => assetKey(layout.ids[r.kind], r.item));

    const [values, attrKeys] = await Promise.all([
      queryAt(this.client, [classKey, ...frameKeys, ...assetKeys], at),
      mapLimit(wanted, PARALLEL, (r) => keysUnder(this.client, itemAttrPrefix(attrPrefix(layout.ids[r.kind]), r.item), at)),
    ]);

    // The frame, as readAll checks it.
    const owner = values.get(classKey);
    const rootAttrs = new Map<string, Uint8Array>();
    ROOT_ATTRS.forEach((k, i) => {
      const v = values.get(frameKeys[i]!);
      if (v) rootAttrs.set(k, decodeAttribute(frameKeys[i]!, attrPrefix(this.root).length, v).value);
    });
    const chain = this.layoutOf(rootAttrs, owner ? classOwnerOf(owner) : undefined);
    if (KINDS.some((k) => chain.ids[k] !== layout.ids[k])) return { layout: chain, items: [] };
    (['node', 'slot', 'rule'] as const).forEach((k, i) => {
      const key = frameKeys[ROOT_ATTRS.length + i]!;
      const v = values.get(key);
      const attrs = new Map<string, Uint8Array>();
      if (v) attrs.set('kind', decodeAttribute(key, attrPrefix(layout.ids[k]).length, v).value);
      checkKind(attrs, k, layout.ids[k]);
    });

    const attrValues = await queryAt(this.client, attrKeys.flat(), at);
    const items = wanted.map((r, i): ItemRead => {
      const col = layout.ids[r.kind];
      const it = this.rawItem(col, assetKeys[i]!, values.get(assetKeys[i]!), attrKeys[i]!, attrValues);
      return it ? this.decodeItem(r.kind, it) : { kind: r.kind, item: r.item, live: false, issues: [] };
    });
    return { layout: chain, items };
  }

  /** Decodes and validates one live item; issues are named after the chain item. */
  decodeItem(kind: EntryKind, it: RawItem): ItemRead {
    const list = LIST[kind];
    const at = `${list}[item ${it.item}]`;
    const issues: Issue[] = [];
    const raw = decodeEntry(kind, it, this.accounts.text(it.owner!), at, issues, this.accounts);
    if (!raw) return { kind, item: it.item, live: true, issues };
    // parseEntries names the entry `${list}[0]`: rename it after the chain item.
    const found: Issue[] = [];
    const [entry] = parseEntries(SCHEMAS[kind], [raw], list, found) as RegistryEntry[];
    for (const i of found) issues.push({ ...i, path: at + i.path.slice(`${list}[0]`.length) });
    return entry ? { kind, item: it.item, live: true, entry, issues } : { kind, item: it.item, live: true, issues };
  }

  async finalizedBlock(hash: string): Promise<BlockRef> {
    if (!/^0x[0-9a-f]{64}$/.test(hash)) throw new Sub0Error('invalid-input', `not a block hash: "${hash}"`);
    const [block, fin] = await Promise.all([this.client.blockRef(hash), this.client.finalizedHead()]);
    const canonical = block.number <= fin.number ? await this.client.rpc<string | null>('chain_getBlockHash', [block.number]) : null;
    if (canonical !== hash) throw new Sub0Error('invalid-input', `block #${block.number} ${hash} is not finalized (finalized: #${fin.number})`);
    return block;
  }

  /** One item of a collection, raw (owner and attributes); undefined when it does not exist. */
  async readRawItem(col: number, item: number, at: string): Promise<RawItem | undefined> {
    const api = this.client.api;
    const assetKey = storage(api, 'uniques', 'asset').key(col, item);
    const attrPrefix = storage(api, 'uniques', 'attribute').keyPrefix(col);
    const [values, keys] = await Promise.all([queryAt(this.client, [assetKey], at), keysUnder(this.client, itemAttrPrefix(attrPrefix, item), at)]);
    const asset = values.get(assetKey);
    return asset ? this.rawItem(col, assetKey, asset, keys, await queryAt(this.client, keys, at)) : undefined;
  }

  /** An item from its `Uniques.Asset` entry (no value: it does not exist) and its attributes' keys and values. */
  private rawItem(col: number, assetKey: string, asset: string | undefined, attrKeys: readonly string[], attrValues: ReadonlyMap<string, string>): RawItem | undefined {
    if (!asset) return undefined;
    const api = this.client.api;
    const prefixLen = storage(api, 'uniques', 'attribute').keyPrefix(col).length;
    const { item, owner } = decodeAsset(assetKey, storage(api, 'uniques', 'asset').keyPrefix(col).length, asset);
    const it: RawItem = { item, owner, attrs: new Map() };
    for (const key of attrKeys) {
      const v = attrValues.get(key);
      if (!v) continue;
      const a = decodeAttribute(key, prefixLen, v);
      it.attrs.set(a.key, a.value);
    }
    return it;
  }

  async readCollection(id: number, at: string): Promise<Collection> {
    const assetPrefix = storage(this.client.api, 'uniques', 'asset').keyPrefix(id);
    const attrPrefix = storage(this.client.api, 'uniques', 'attribute').keyPrefix(id);
    const rpc = this.client.rpc;
    const [assets, attrs] = await Promise.all([readPrefix(rpc, assetPrefix, at), readPrefix(rpc, attrPrefix, at)]);
    const items = new Map<number, RawItem>();
    const collectionAttrs = new Map<string, Uint8Array>();
    let highest = 0;
    for (const [key, value] of assets) {
      if (value === null) continue;
      const a = decodeAsset(key, assetPrefix.length, value);
      items.set(a.item, { item: a.item, owner: a.owner, attrs: new Map() });
      highest = Math.max(highest, a.item + 1);
    }
    for (const [key, value] of attrs) {
      if (value === null) continue;
      const a = decodeAttribute(key, attrPrefix.length, value);
      if (a.item === null) {
        collectionAttrs.set(a.key, a.value);
        continue;
      }
      highest = Math.max(highest, a.item + 1);
      // Attributes of a burned item stay behind: they belong to no entry.
      items.get(a.item)?.attrs.set(a.key, a.value);
    }
    const sorted = new Map([...items.entries()].sort((x, y) => x[0] - y[0]));
    return { id, attrs: collectionAttrs, items: sorted, highest };
  }

  /** The layout named by the root's collection attributes; the root's owner (undefined: no root) is the operator. */
  layoutOf(a: ReadonlyMap<string, Uint8Array>, rootOwner: Uint8Array | undefined): Layout {
    const where = `collection ${this.root}`;
    if (text(a.get('sub0')) !== FORMAT) throw new Sub0Error('invalid-input', `not a sub0 registry (attribute sub0 is not "${FORMAT}")`, { where });
    checkKind(a, 'dvci', this.root);
    const net = Id.safeParse(text(a.get('net')));
    if (!net.success) throw new Sub0Error('invalid-input', `attribute "net" is not a network id: ${z.prettifyError(net.error)}`, { where });
    const ids = { dvci: this.root } as Record<EntryKind, number>;
    for (const k of ['node', 'slot', 'rule'] as const) {
      const v = text(a.get(POINTER[k]));
      if (!v || !/^\d{1,10}$/.test(v)) throw new Sub0Error('invalid-input', `attribute "${POINTER[k]}" must name the ${k} collection`, { where });
      ids[k] = Number(v);
    }
    if (!rootOwner) throw new Sub0Error('not-found', `collection ${this.root} does not exist`);
    const name = text(a.get('name'));
    const network: Network = { id: net.data, operator: this.accounts.text(rootOwner), ...(name ? { name } : {}) };
    return { root: this.root, ids, network };
  }

  /** Owner and admin of a collection, raw from `Uniques.Class` (owner, issuer, admin, freezer, …). */
  async classAccounts(id: number, at: string): Promise<{ owner: Uint8Array; admin: Uint8Array }> {
    const v = await this.classValue(id, at);
    if (!v) throw new Sub0Error('not-found', `collection ${id} does not exist`);
    const b = Buffer.from(v.slice(2), 'hex');
    return { owner: b.subarray(0, 32), admin: b.subarray(64, 96) };
  }

  /** A collection's owner; undefined when it does not exist. */
  async classOwner(id: number, at: string): Promise<Uint8Array | undefined> {
    const v = await this.classValue(id, at);
    return v ? classOwnerOf(v) : undefined;
  }

  private classValue(id: number, at: string): Promise<string | null> {
    return this.client.rpc<string | null>('state_getStorage', [storage(this.client.api, 'uniques', 'class').key(id), at]);
  }
}

/** `Uniques.Class` value (hex) -> its first field, the owner's account id. */
const classOwnerOf = (hex: string): Uint8Array => Buffer.from(hex.slice(2, 2 + 64), 'hex');

export function checkKind(attrs: ReadonlyMap<string, Uint8Array>, kind: EntryKind, id: number): void {
  const k = text(attrs.get('kind'));
  if (k !== kind) throw new Sub0Error('invalid-input', `expected the ${kind} collection, found kind "${k ?? ''}"`, { where: `collection ${id}` });
}

/** The key prefix of `Uniques.Attribute(class, Some(item), *)`: the class prefix, then Blake2_128Concat(Some(item)). */
export function itemAttrPrefix(classPrefix: string, item: number): string {
  const some = Buffer.alloc(5);
  some[0] = 1;
  some.writeUInt32LE(item, 1);
  return classPrefix + Buffer.from(blake2AsU8a(some, 128)).toString('hex') + some.toString('hex');
}

/** Every key under a prefix (an item's attributes: a handful, one page). */
async function keysUnder(client: ChainClient, prefix: string, at: string): Promise<string[]> {
  const out: string[] = [];
  for (let start = prefix; ; ) {
    const keys = await client.rpc<string[]>('state_getKeysPaged', [prefix, PAGE_SIZE, start, at]);
    out.push(...keys);
    if (keys.length < PAGE_SIZE) return out;
    start = keys[keys.length - 1]!;
  }
}

/** Values of exact keys (absent ones left out), a page of keys per request, pages at once. */
async function queryAt(client: ChainClient, keys: readonly string[], at: string): Promise<Map<string, string>> {
  const pages: string[][] = [];
  for (let i = 0; i < keys.length; i += PAGE_SIZE) pages.push(keys.slice(i, i + PAGE_SIZE));
  const out = new Map<string, string>();
  const sets = await Promise.all(pages.map((p) => client.rpc<{ changes: [string, string | null][] }[]>('state_queryStorageAt', [p, at])));
  for (const page of sets) for (const set of page) for (const [k, v] of set.changes) if (v !== null) out.set(k, v);
  return out;
}

/** `f` over `list` with at most `limit` calls in flight; results in list order. */
async function mapLimit<T, R>(list: readonly T[], limit: number, f: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(list.length);
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const i = next++;
      out[i] = await f(list[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, list.length) }, worker));
  return out;
}
