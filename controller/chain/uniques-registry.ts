/**
 * The Logos registry on the Uniques pallet. With uniques-reader.ts (reading storage) and
 * uniques-codec.ts (attributes <-> fields), the only code that knows how the registry sits in
 * Uniques; a dedicated Logos pallet replaces these three files.
 *
 * On chain (the README's "on-chain schema"):
 *  - the root collection holds the DVCIs as items; its collection attributes name the network
 *    (`sub0`=logos/1, `net`, `name`) and the other collections (`nodes`, `slots`, `rules`); each
 *    collection says what it holds in its `kind` attribute;
 *  - one item per entry; item number = creation order (fabric's `seq`); item owner = the entry's
 *    owner; collection owner = issuer = admin = the network operator (the root's owner is
 *    fabric's operator; the rules collection may be owned by a governance multisig instead);
 *  - entry fields are item attributes (uniques-codec.ts); each collection's `next` attribute is
 *    the next item number, so numbers are never reused, not even after a burn (which leaves the
 *    attributes behind: the reader ignores attributes of items that no longer exist).
 * Uniques lets only a collection's owner mint and write attributes, and an item's owner or the
 * admin burn it. So the operator writes entries, anyone else is refused by the runtime, and an
 * entry's owner can withdraw it (retire/revoke burn the item when the signer is not the operator).
 */
import { Buffer } from 'node:buffer';
import { decodeAddress } from '@polkadot/util-crypto';
import * as z from 'zod';
import { Sub0Error } from '../../fabric/errors.js';
import { AclRule, Dvci, Id, Node, Slot, type BlockRef } from '../../fabric/schema.js';
import type { EventRecord } from '@polkadot/types/interfaces';
import { KINDS } from './assemble-snapshot.js';
import type { ChainClient } from './client.js';
import type { EntryKind, ItemRef, ItemsRead, LogosRegistry, RegistryChange, Signer, SnapshotRead, Submitted, Touch } from './registry.js';
import { storage, txFn, type Call } from './pallets.js';
import { actingAccount, submitCall } from './submit.js';
import { AccountFormat, decodeEntry, encodeEntry, itemEntryId, type RawItem } from './uniques-codec.js';
import { FORMAT, UniquesReader, type Collection, type Layout } from './uniques-reader.js';

export { FORMAT };
const SCHEMAS = { dvci: Dvci, node: Node, slot: Slot, rule: AclRule } as const;
/** Item events whose second field is the item number. */
const ITEM_EVENTS = new Set(['Issued', 'Transferred', 'Burned', 'Frozen', 'Thawed', 'ApprovedTransfer', 'ApprovalCancelled', 'MetadataSet', 'MetadataCleared']);

const text = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

export class UniquesRegistry implements LogosRegistry {
  readonly locator: string;
  private readonly root: number;
  private readonly accounts: AccountFormat;
  private readonly reader: UniquesReader;
  private layoutCache: Layout | undefined;
  /**
   * The newest block whose events changed the network's own attributes (touchedBy): a layout
   * read at an older block (a pass behind the follower) is not cached, it may be outdated.
   */
  private layoutSince = -1;

  constructor(private readonly client: ChainClient, locator: string) {
    if (!/^\d{1,10}$/.test(locator)) throw new Sub0Error('invalid-input', `a Uniques registry is named by its root collection number, got "${locator}"`);
    this.locator = locator;
    this.root = Number(locator);
    this.accounts = new AccountFormat(client.api.registry.chainSS58 ?? 42);
    this.reader = new UniquesReader(client, this.root, this.accounts);
    for (const name of ['asset', 'attribute']) {
      const hashers = storage(client.api, 'uniques', name).creator.meta.type.asMap.hashers;
      if (!hashers.every((h) => h.isBlake2128Concat))
        throw new Sub0Error('unsupported', `Uniques.${name} uses hashers ${hashers.map((h) => h.type).join(',')}; this adapter decodes Blake2_128Concat keys only`);
    }
  }

  // ---------------------------------------------------------------- reading

  async readSnapshot(blockHash: string): Promise<SnapshotRead> {
    const { read, layout } = await this.reader.readAll(blockHash);
    this.remember(layout, read.snapshot.block.number);
    return read;
  }

  async readItems(blockHash: string, items: readonly ItemRef[]): Promise<ItemsRead> {
    // The cached layout only locates the items: the reader checks it against the chain's.
    const { read, layout } = await this.reader.readItems(blockHash, items, await this.layout(blockHash));
    this.remember(layout, read.block.number);
    return read;
  }

  private async layout(at: string): Promise<Layout> {
    if (this.layoutCache) return this.layoutCache;
    const [rootCol, owner] = await Promise.all([this.reader.readCollection(this.root, at), this.reader.classOwner(this.root, at)]);
    const layout = this.reader.layoutOf(rootCol.attrs, owner);
    this.remember(layout, (await this.client.blockRef(at)).number);
    return layout;
  }

  private remember(layout: Layout, blockNumber: number): void {
    if (blockNumber >= this.layoutSince) this.layoutCache = layout;
  }

  // ---------------------------------------------------------------- following

  async touchedBy(block: BlockRef): Promise<readonly Touch[]> {
    // Before the registry was complete only its root can have changed.
    const layout = await this.layout(block.hash).catch((e: unknown) => {
      if (e instanceof Sub0Error && (e.code === 'invalid-input' || e.code === 'not-found')) return undefined;
      throw e;
    });
    const kindOf = new Map<number, EntryKind>(layout ? KINDS.map((k) => [layout.ids[k], k]) : [[this.root, 'dvci']]);
    const apiAt = await this.client.api.at(block.hash);
    const records = (await storage(apiAt, 'system', 'events')()) as unknown as readonly EventRecord[];
    const seen = new Set<string>();
    const issued = new Set<string>();
    const out: Touch[] = [];
    for (const { event, phase } of records) {
      if (event.section !== 'uniques') continue;
      const kind = kindOf.get(Number(event.data[0]!.toString()));
      if (kind === undefined) continue;
      let item: number | undefined;
      let key: string | undefined;
      let value: string | undefined;
      if (ITEM_EVENTS.has(event.method)) item = Number(event.data[1]!.toString());
      else if (event.method === 'AttributeSet' || event.method === 'AttributeCleared') {
        const maybe = event.data[1] as unknown as { isSome: boolean; unwrap(): { toNumber(): number } };
        if (maybe.isSome) item = maybe.unwrap().toNumber();
        // Keys are ASCII by construction (keyHex); a value is only kept for `state`: the audit's decisions.
        key = Buffer.from(event.data[2]!.toU8a(true)).toString('latin1');
        if (key === 'state' && event.method === 'AttributeSet') value = text(event.data[3]!.toU8a(true));
      }
      const extrinsic = phase.isApplyExtrinsic ? phase.asApplyExtrinsic.toNumber() : undefined;
      const t: Touch = {
        ...(item === undefined ? { kind: kind === 'dvci' ? ('network' as const) : kind } : { kind, item }),
        event: `uniques.${event.method}`,
        ...(extrinsic !== undefined ? { extrinsic } : {}),
        ...(key !== undefined ? { key } : {}),
        ...(value !== undefined ? { value } : {}),
      };
      const id = `${t.kind}/${t.item ?? '-'}`;
      const decision = `${id}/state/${extrinsic ?? '-'}`;
      if (event.method === 'Issued') issued.add(id);
      if (!seen.has(id)) {
        seen.add(id);
        if (value !== undefined) seen.add(decision);
        out.push(t);
        continue;
      }
      // A node's state change is a gatekeeper's decision (quarantine, readmission, retirement):
      // it is a touch of its own even after another change of the node, so that the audit sees
      // it. Not at registration: the first state is part of the node's creation.
      if (kind === 'node' && value !== undefined && !issued.has(id) && !seen.has(decision)) {
        seen.add(decision);
        out.push(t);
      }
    }
    // The network's own attributes changed: the collections may have moved.
    if (out.some((t) => t.kind === 'network')) {
      this.layoutCache = undefined;
      this.layoutSince = Math.max(this.layoutSince, block.number);
    }
    return out;
  }

  // ---------------------------------------------------------------- writing

  async submit(changes: readonly RegistryChange[], signer: Signer): Promise<Submitted> {
    if (changes.length === 0) throw new Sub0Error('invalid-input', 'nothing to submit');
    const at = (await this.client.finalizedHead()).hash;
    const plan = new Plan(this, at, actingAccount(signer, this.accounts.ss58));
    for (const c of changes) await plan.add(c);
    const calls = plan.calls();
    if (calls.length === 0) throw new Sub0Error('invalid-input', `nothing to change: the registry already holds ${changes.map((c) => `${c.kind} ${'id' in c ? c.id : String(c.fields.id)}`).join(', ')} as asked`);
    const call = calls.length === 1 ? calls[0]! : txFn(this.client.api, 'utility', 'batchAll')(calls);
    const r = await submitCall(this.client, call, signer);
    return { ...r, entries: plan.entries };
  }

  /** @internal the pieces Plan needs */
  get internals() {
    return {
      client: this.client,
      accounts: this.accounts,
      layout: (at: string) => this.layout(at),
      readCollection: (id: number, at: string) => this.reader.readCollection(id, at),
      readRawItem: (col: number, item: number, at: string) => this.reader.readRawItem(col, item, at),
      classAccounts: (id: number, at: string) => this.reader.classAccounts(id, at),
    };
  }
}

/** Builds the calls for a list of changes against one finalized state. */
class Plan {
  readonly entries: { kind: EntryKind; id: string; item: number }[] = [];
  private readonly out: Call[] = [];
  private readonly cols = new Map<number, Promise<Collection>>();
  private readonly next = new Map<number, number>();
  private readonly reg: UniquesRegistry['internals'];

  constructor(registry: UniquesRegistry, private readonly at: string, private readonly acting: string) {
    this.reg = registry.internals;
  }

  calls(): Call[] {
    const tx = uniquesTx(this.reg.client.api);
    // Bump each collection's counter once, after its mints.
    return [...this.out, ...[...this.next].map(([col, n]) => tx.setAttribute(col, null, 'next', String(n)))];
  }

  async add(c: RegistryChange): Promise<void> {
    const layout = await this.reg.layout(this.at);
    const colId = layout.ids[c.kind];
    const tx = uniquesTx(this.reg.client.api);
    if (c.op === 'create') return this.create(c, await this.collection(colId));
    const col = c.op === 'update' && c.item !== undefined && !this.cols.has(colId) ? undefined : await this.collection(colId);
    const it = col ? this.find(col, c.kind, c.id) : await this.hinted(colId, c.kind, c.id, (c as { item: number }).item);
    const isOwner = await this.isCollectionOwner(colId);
    if (c.op === 'remove' || (c.op === 'retire' && !isOwner)) {
      // Uniques lets the item's owner (or the admin) burn it; anyone else is refused by the runtime.
      this.out.push(tx.burn(colId, it.item, null));
      if (isOwner) for (const k of it.attrs.keys()) this.out.push(tx.clearAttribute(colId, it.item, k));
      col?.items.delete(it.item);
    } else {
      const fields = c.op === 'retire' ? { state: 'retired' } : Object.fromEntries(Object.entries(c.fields).filter(([, v]) => v !== undefined));
      const current = decodeEntry(c.kind, it, this.reg.accounts.text(it.owner!), `${c.kind} ${c.id}`, [], this.reg.accounts);
      if (!current) throw new Sub0Error('invalid-input', `${c.kind} "${c.id}" (item ${it.item}) is unreadable on chain; remove it and create it again`);
      const next = this.validate(c.kind, { ...current, ...fields, id: c.id }, `${c.kind} ${c.id}`);
      const want = encodeEntry(c.kind, next, this.reg.accounts);
      for (const [k, v] of want) if (!sameBytes(it.attrs.get(k), v)) this.out.push(tx.setAttribute(colId, it.item, k, v));
      for (const k of it.attrs.keys()) if (!want.has(k)) this.out.push(tx.clearAttribute(colId, it.item, k));
      // Later changes in this batch build on this one.
      it.attrs.clear();
      for (const [k, v] of want) it.attrs.set(k, v);
    }
    this.entries.push({ kind: c.kind, id: c.id, item: it.item });
  }

  private async create(c: Extract<RegistryChange, { op: 'create' }>, col: Collection): Promise<void> {
    const where = `${c.kind} ${String(c.fields.id ?? '?')}`;
    const owner = this.reg.accounts.normalize(c.owner ?? this.acting);
    if (!owner) throw new Sub0Error('invalid-input', `owner "${c.owner}" is not an account`, { where });
    const raw = c.kind === 'dvci' ? { ...c.fields, operator: owner } : { ...c.fields, owner };
    const entry = this.validate(c.kind, raw, where);
    const taken = [...col.items.values()].find((it) => itemEntryId(it) === entry.id);
    if (taken) throw new Sub0Error('invalid-input', `${c.kind} "${entry.id}" already exists (item ${taken.item})`);
    const item = this.next.get(col.id) ?? Math.max(col.highest, Number(text(col.attrs.get('next')) ?? 0));
    this.next.set(col.id, item + 1);
    const tx = uniquesTx(this.reg.client.api);
    const attrs = encodeEntry(c.kind, entry, this.reg.accounts);
    this.out.push(tx.mint(col.id, item, owner));
    for (const [k, v] of attrs) this.out.push(tx.setAttribute(col.id, item, k, v));
    // Later changes in this batch see the new entry.
    col.items.set(item, { item, owner: decodeAddress(owner), attrs: new Map(attrs) });
    this.entries.push({ kind: c.kind, id: entry.id, item });
  }

  private validate(kind: EntryKind, raw: Record<string, unknown>, where: string): Dvci | Node | Slot | AclRule {
    const r = SCHEMAS[kind].safeParse(raw);
    if (!r.success) throw new Sub0Error('invalid-input', z.prettifyError(r.error).replace(/\n/g, '; '), { where });
    return r.data as Dvci | Node | Slot | AclRule;
  }

  /** The item a caller named for an entry, read alone, checked to hold that entry. */
  private async hinted(col: number, kind: EntryKind, id: string, item: number): Promise<RawItem> {
    const it = await this.reg.readRawItem(col, item, this.at);
    if (!it || itemEntryId(it) !== id) throw new Sub0Error('not-found', `${kind} "${id}" is not item ${item} of collection ${col} (any more)`);
    return it;
  }

  /** The oldest live item with this entry id (the one fabric keeps). */
  private find(col: Collection, kind: EntryKind, id: string): RawItem {
    for (const it of col.items.values()) if (itemEntryId(it) === id) return it;
    throw new Sub0Error('not-found', `${kind} "${id}" is not in the registry (collection ${col.id})`);
  }

  private collection(id: number): Promise<Collection> {
    let p = this.cols.get(id);
    if (!p) this.cols.set(id, (p = this.reg.readCollection(id, this.at)));
    return p;
  }

  private async isCollectionOwner(id: number): Promise<boolean> {
    const { owner } = await this.reg.classAccounts(id, this.at);
    return this.reg.accounts.text(owner) === this.reg.accounts.normalize(this.acting);
  }
}

/**
 * The Uniques calls this adapter makes. Attribute keys and values always go as hex: the API
 * would read a Uint8Array as length-prefixed and a text starting with 0x as hex.
 */
function uniquesTx(api: ChainClient['api']) {
  const f = (name: string) => txFn(api, 'uniques', name);
  const set = f('setAttribute');
  const clear = f('clearAttribute');
  return {
    create: f('create'),
    mint: f('mint'),
    burn: f('burn'),
    setAttribute: (col: number, item: number | null, key: string, value: string | Uint8Array) => set(col, item, keyHex(key), hexOf(value)),
    clearAttribute: (col: number, item: number | null, key: string) => clear(col, item, keyHex(key)),
  };
}

/** Keys as the reader names them: one character per byte (they are ASCII by construction). */
function keyHex(k: string): string {
  return `0x${Buffer.from(k, 'latin1').toString('hex')}`;
}

function hexOf(v: string | Uint8Array): string {
  return `0x${Buffer.from(typeof v === 'string' ? Buffer.from(v, 'utf8') : v).toString('hex')}`;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.compare(a, b) === 0;
}

// ---------------------------------------------------------------- creating a registry

export interface CreateOptions {
  readonly network: string;
  readonly name?: string;
  /** The root collection's number; the node, slot and rule collections follow it. */
  readonly firstCollection: number;
  /** The network operator: owns the root, node and slot collections (and rules, unless governed). */
  readonly operator: Signer;
  /** When set, the rules collection is created by and owned by this multisig: each approver signs in turn. */
  readonly ruleGovernance?: readonly Signer[];
  readonly onProgress?: (step: string) => void;
}

/** Creates the collections of a new registry and returns its locator. Not idempotent: fails if any collection exists. */
export async function createUniquesRegistry(client: ChainClient, o: CreateOptions): Promise<{ locator: string; block: BlockRef }> {
  const net = Id.safeParse(o.network);
  if (!net.success) throw new Sub0Error('invalid-input', `network id: ${z.prettifyError(net.error)}`);
  const { api } = client;
  const tx = uniquesTx(api);
  const root = o.firstCollection;
  const ids = { dvci: root, node: root + 1, slot: root + 2, rule: root + 3 };
  for (const id of Object.values(ids))
    if (!((await storage(api, 'uniques', 'class')(id)) as unknown as { isNone: boolean }).isNone) throw new Sub0Error('invalid-input', `collection ${id} already exists; choose another --collections`);
  const ss58 = api.registry.chainSS58 ?? 42;
  const operator = actingAccount(o.operator, ss58);
  const governed = o.ruleGovernance !== undefined && o.ruleGovernance.length > 0;
  const calls: Call[] = [];
  for (const k of KINDS) {
    if (k === 'rule' && governed) continue;
    calls.push(tx.create(ids[k], operator), tx.setAttribute(ids[k], null, 'kind', k));
  }
  const attrs: [string, string | undefined][] = [['sub0', FORMAT], ['net', net.data], ['name', o.name], ['nodes', `${ids.node}`], ['slots', `${ids.slot}`], ['rules', `${ids.rule}`]];
  for (const [k, v] of attrs) if (v !== undefined) calls.push(tx.setAttribute(root, null, k, v));
  o.onProgress?.(`creating collections ${root}-${ids.rule} for network "${net.data}"`);
  const batchAll = txFn(api, 'utility', 'batchAll');
  let r = await submitCall(client, batchAll(calls), o.operator);
  if (governed) {
    const owner = actingAccount(o.ruleGovernance![0]!, ss58);
    const call = batchAll([tx.create(ids.rule, owner), tx.setAttribute(ids.rule, null, 'kind', 'rule')]);
    for (const s of o.ruleGovernance!) {
      o.onProgress?.(`rules collection ${ids.rule}: approval by ${s.pair.address}`);
      r = await submitCall(client, call, s);
      if (r.status === 'applied') break;
    }
    if (r.status !== 'applied') throw new Sub0Error('invalid-input', 'the rule governance approvers did not reach the multisig threshold');
  }
  return { locator: String(root), block: r.block };
}

/** The registry for `locator` on the chain behind `client`. */
export function openUniquesRegistry(client: ChainClient, locator: string): LogosRegistry {
  return new UniquesRegistry(client, locator);
}

// ---------------------------------------------------------------- bench fixtures

/**
 * The storage that registering `entries` (fabric-parsed, with owners) through this adapter would
 * leave in Uniques, as raw [key, value] pairs for dev_setStorage: items with owners and
 * attributes, the owners' account index, the collections' counters, no deposits. For loading a
 * registry of tens of thousands of entries into the local chain in seconds (bench:chain); the
 * extrinsic path (`submit`) is what the tests exercise.
 */
export async function uniquesFixtureStorage(client: ChainClient, locator: string, entries: Readonly<Record<EntryKind, readonly (Dvci | Node | Slot | AclRule)[]>>): Promise<[string, string][]> {
  const registry = new UniquesRegistry(client, locator);
  const { api } = client;
  const at = (await client.finalizedHead()).hash;
  const { layout, accounts } = registry.internals;
  const ids = (await layout(at)).ids;
  const q = (name: string) => storage(api, 'uniques', name);
  const valueType = (name: string) => api.registry.createLookupType(q(name).creator.meta.type.asMap.value);
  const out: [string, string][] = [];
  for (const kind of KINDS) {
    const col = ids[kind];
    const list = entries[kind];
    let attributes = 0;
    list.forEach((e, item) => {
      const owner = kind === 'dvci' ? (e as Dvci).operator : (e as Node).owner;
      out.push([q('asset').key(col, item), api.createType(valueType('asset'), { owner, approved: null, isFrozen: false, deposit: 0 }).toHex()]);
      out.push([q('account').key(owner, col, item), '0x']);
      for (const [k, v] of encodeEntry(kind, e, accounts)) {
        out.push([q('attribute').key(col, item, keyHex(k)), attributeValueHex(v)]);
        attributes++;
      }
    });
    out.push([q('attribute').key(col, null, keyHex('next')), attributeValueHex(Buffer.from(String(list.length)))]);
    const details = ((await q('class')(col)) as unknown as { unwrap(): { toJSON(): Record<string, unknown> } }).unwrap().toJSON();
    const counted = { ...details, instances: list.length, attributes: Number(details.attributes ?? 0) + attributes + 1 };
    out.push([q('class').key(col), api.createType(valueType('class'), counted).toHex()]);
  }
  return out;
}

/** `(BoundedVec<u8>, Balance)`: the value, SCALE length-prefixed, and a zero deposit. */
function attributeValueHex(v: Uint8Array): string {
  const len = v.length < 64 ? Buffer.from([v.length << 2]) : Buffer.from([((v.length << 2) | 1) & 0xff, v.length >> 6]);
  return `0x${Buffer.concat([len, v, Buffer.alloc(16)]).toString('hex')}`;
}
