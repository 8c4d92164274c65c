/**
 * Entry fields <-> Uniques item attributes, and the Uniques storage layout the reader decodes by
 * hand (polkadot-js types cost more than the read itself at 100k entries). Private to the
 * Uniques adapter: with uniques-registry.ts and uniques-reader.ts, the whole Uniques mapping.
 *
 * Attribute keys and values (values are UTF-8 text unless noted; defaults are not written):
 *   all   id
 *   dvci  name, region, ck (the controller keys authorized for it: their 32 raw bytes each,
 *         concatenated)                  (the DVCI's operator is the item owner)
 *   node  dvci, key (the WireGuard key as its 32 raw bytes), ik (the identity key as its 32 raw
 *         bytes), ep (endpoints, space-separated),
 *         port (absent: 51820), state, cap ("vcpus/memoryMiB/diskGiB"), salt
 *   slot  node (absent: unplaced), res ("vcpus/memoryMiB/diskGiB"), image, state,
 *         groups (space-separated), salt
 *   rule  from, to (selectors as in fabric: slot:ID, group:NAME, owner:ACCOUNT), proto,
 *         ports ("80 8000-8100")
 * A value longer than 64 bytes continues in `key.1`, `key.2`, … .
 */
import { Sub0Error } from '../../fabric/errors.js';
import { Buffer } from 'node:buffer';
import { decodeAddress, encodeAddress } from '@polkadot/util-crypto';
import { issue, type Issue } from '../../fabric/issues.js';
import type { AclRule, Dvci, Node, Selector, Slot } from '../../fabric/schema.js';
import type { EntryKind } from './registry.js';

export const MAX_VALUE = 64;
export const MAX_KEY = 32;

/** One item as read from storage. */
export interface RawItem {
  readonly item: number;
  /** The item owner's 32-byte account id; absent for attributes left behind by a burn. */
  owner?: Uint8Array;
  readonly attrs: Map<string, Uint8Array>;
}

/** SS58 text of account ids, cached: one network has few owners and many entries. */
export class AccountFormat {
  private readonly cache = new Map<string, string>();
  constructor(readonly ss58: number) {}

  text(id: Uint8Array): string {
    const hex = Buffer.from(id).toString('hex');
    let s = this.cache.get(hex);
    if (s === undefined) {
      s = encodeAddress(id, this.ss58);
      this.cache.set(hex, s);
    }
    return s;
  }

  /** The same account in this network's format, or undefined when `s` is no account. */
  normalize(s: string): string | undefined {
    try {
      return this.text(decodeAddress(s));
    } catch {
      return undefined;
    }
  }
}

// ---------------------------------------------------------------- reading

const utf8 = new TextDecoder('utf-8', { fatal: true });
const DECIMAL = /^(?:0|[1-9]\d{0,9})$/;

/** The entry id an item claims, if readable: used to name it in issues and to find it. */
export function itemEntryId(it: RawItem): string | undefined {
  const b = it.attrs.get('id');
  if (!b) return undefined;
  try {
    return utf8.decode(b);
  } catch {
    return undefined;
  }
}

/** Reads one item's attributes, recording why a field is unreadable under the fabric field name. */
class Fields {
  bad = false;
  constructor(private readonly it: RawItem, private readonly at: string, private readonly issues: Issue[], private readonly id: string | undefined) {}

  private fail(field: string, message: string): undefined {
    this.bad = true;
    this.issues.push(issue('invalid-entry', `${this.at}.${field}`, message, this.id));
    return undefined;
  }

  bytes(key: string): Uint8Array | undefined {
    const first = this.it.attrs.get(key);
    if (!first) return undefined;
    const parts = [first];
    for (let i = 1; ; i++) {
      const more = this.it.attrs.get(`${key}.${i}`);
      if (!more) break;
      parts.push(more);
    }
    return parts.length === 1 ? first : Buffer.concat(parts);
  }

  text(key: string, field: string): string | undefined {
    const b = this.bytes(key);
    if (!b) return undefined;
    try {
      return utf8.decode(b);
    } catch {
      return this.fail(field, `attribute "${key}" is not UTF-8 text`);
    }
  }

  int(key: string, field: string): number | undefined {
    const s = this.text(key, field);
    if (s === undefined) return undefined;
    return DECIMAL.test(s) ? Number(s) : this.fail(field, `attribute "${key}" must be a decimal number, got "${s}"`);
  }

  list(key: string, field: string): string[] | undefined {
    const s = this.text(key, field);
    return s === undefined ? undefined : s.split(' ').filter((x) => x !== '');
  }

  resources(key: string, field: string): { vcpus: number; memoryMiB: number; diskGiB: number } | undefined {
    const s = this.text(key, field);
    if (s === undefined) return undefined;
    const parts = s.split('/');
    if (parts.length !== 3 || !parts.every((p) => DECIMAL.test(p)))
      return this.fail(field, `attribute "${key}" must be VCPUS/MEMORY_MIB/DISK_GIB, got "${s}"`);
    const [vcpus, memoryMiB, diskGiB] = parts.map(Number) as [number, number, number];
    return { vcpus, memoryMiB, diskGiB };
  }

  /** Concatenated 32-byte keys, as hex. */
  keys(key: string, field: string): string[] | undefined {
    const b = this.bytes(key);
    if (!b) return undefined;
    if (b.length % 32 !== 0) return this.fail(field, `attribute "${key}" must hold 32-byte keys, got ${b.length} bytes`);
    const out: string[] = [];
    for (let off = 0; off < b.length; off += 32) out.push(Buffer.from(b.subarray(off, off + 32)).toString('hex'));
    return out;
  }

  selector(key: string, field: string, accounts: AccountFormat): string | undefined {
    const s = this.text(key, field);
    if (s === undefined || !s.startsWith('owner:')) return s;
    const account = accounts.normalize(s.slice('owner:'.length));
    return account === undefined ? this.fail(field, `attribute "${key}" names no valid account: "${s}"`) : `owner:${account}`;
  }
}

/**
 * An item's attributes as the raw input of fabric's schema for `kind` (fields it lacks are left
 * out so that the schema's defaults and errors apply), or undefined with issues when an
 * attribute cannot even be read. `at` names the item in issue paths: `slots[item 17]`.
 */
export function decodeEntry(kind: EntryKind, it: RawItem, owner: string, at: string, issues: Issue[], accounts: AccountFormat): Record<string, unknown> | undefined {
  const f = new Fields(it, at, issues, itemEntryId(it));
  let raw: Record<string, unknown>;
  const id = f.text('id', 'id');
  switch (kind) {
    case 'dvci':
      raw = { id, operator: owner, name: f.text('name', 'name'), region: f.text('region', 'region'), controllers: f.keys('ck', 'controllers') };
      break;
    case 'node': {
      const key = f.bytes('key');
      const ik = f.bytes('ik');
      raw = {
        id,
        owner,
        dvci: f.text('dvci', 'dvci'),
        // Any length is encoded: fabric's key schema then reports a wrong one as bad-key.
        wgPublicKey: key ? Buffer.from(key).toString('base64') : undefined,
        identityKey: ik ? Buffer.from(ik).toString('hex') : undefined,
        endpoints: f.list('ep', 'endpoints'),
        listenPort: f.int('port', 'listenPort'),
        state: f.text('state', 'state'),
        capacity: f.resources('cap', 'capacity'),
        salt: f.int('salt', 'salt'),
        seq: it.item,
      };
      break;
    }
    case 'slot':
      raw = {
        id,
        owner,
        node: f.text('node', 'node') ?? null,
        ...f.resources('res', 'vcpus'),
        image: f.text('image', 'image'),
        state: f.text('state', 'state'),
        groups: f.list('groups', 'groups'),
        salt: f.int('salt', 'salt'),
        seq: it.item,
      };
      break;
    case 'rule':
      raw = {
        id,
        owner,
        from: f.selector('from', 'from', accounts),
        to: f.selector('to', 'to', accounts),
        proto: f.text('proto', 'proto'),
        ports: f.list('ports', 'ports'),
      };
      break;
  }
  if (f.bad) return undefined;
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  return raw;
}

// ---------------------------------------------------------------- writing

const utf8e = new TextEncoder();

/** The attributes of a parsed entry, long values split into continuation keys. */
export function encodeEntry(kind: EntryKind, e: Dvci | Node | Slot | AclRule, accounts: AccountFormat): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const put = (key: string, value: string | Uint8Array | undefined) => {
    if (value === undefined) return;
    const b = typeof value === 'string' ? utf8e.encode(value) : value;
    for (let i = 0, off = 0; off < b.length || i === 0; i++, off += MAX_VALUE) out.set(i === 0 ? key : `${key}.${i}`, b.subarray(off, off + MAX_VALUE));
  };
  put('id', e.id);
  switch (kind) {
    case 'dvci': {
      const d = e as Dvci;
      put('name', d.name);
      put('region', d.region);
      if (d.controllers.length) put('ck', Buffer.concat(d.controllers.map((k) => Buffer.from(k, 'hex'))));
      break;
    }
    case 'node': {
      const n = e as Node;
      put('dvci', n.dvci);
      put('key', Buffer.from(n.wgPublicKey, 'base64'));
      if (n.identityKey) put('ik', Buffer.from(n.identityKey, 'hex'));
      if (n.endpoints.length) put('ep', n.endpoints.join(' '));
      if (n.listenPort !== 51820) put('port', String(n.listenPort));
      put('state', n.state);
      if (n.capacity) put('cap', `${n.capacity.vcpus}/${n.capacity.memoryMiB}/${n.capacity.diskGiB}`);
      if (n.salt) put('salt', String(n.salt));
      break;
    }
    case 'slot': {
      const s = e as Slot;
      if (s.node !== null) put('node', s.node);
      put('res', `${s.vcpus}/${s.memoryMiB}/${s.diskGiB}`);
      put('image', s.image);
      put('state', s.state);
      if (s.groups.length) put('groups', s.groups.join(' '));
      if (s.salt) put('salt', String(s.salt));
      break;
    }
    case 'rule': {
      const r = e as AclRule;
      put('from', selectorText(r.from, accounts));
      put('to', selectorText(r.to, accounts));
      put('proto', r.proto);
      if (r.ports.length) put('ports', r.ports.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)).join(' '));
      break;
    }
  }
  return out;
}

function selectorText(s: Selector, accounts: AccountFormat): string {
  return `${s.kind}:${s.kind === 'owner' ? (accounts.normalize(s.value) ?? s.value) : s.value}`;
}

// ---------------------------------------------------------------- storage layout

/** Reads a SCALE compact length at `off`: [value, bytes used]. Throws Sub0Error on bytes that are not one. */
function compactAt(b: Uint8Array, off: number): [number, number] {
  const need = (n: number) => {
    if (off + n > b.length) throw new Sub0Error('invalid-input', `a SCALE compact length at byte ${off} runs past the end (${b.length} bytes)`);
  };
  need(1);
  const b0 = b[off]!;
  switch (b0 & 3) {
    case 0:
      return [b0 >> 2, 1];
    case 1:
      need(2);
      return [(b0 | (b[off + 1]! << 8)) >> 2, 2];
    case 2:
      need(4);
      return [(b0 | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 2, 4];
    default:
      throw new Sub0Error('invalid-input', `a SCALE compact length at byte ${off} is beyond 2^30: no attribute is that long`);
  }
}

const u32le = (b: Uint8Array, off: number) => (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
const HASH = 16; // Blake2_128Concat: 16 hash bytes, then the key itself

/** `Uniques.Asset(class, item)` under a class prefix: the item number and its owner. */
export function decodeAsset(key: string, prefixHexLen: number, value: string): { item: number; owner: Uint8Array } {
  const k = Buffer.from(key.slice(prefixHexLen), 'hex');
  return { item: u32le(k, HASH), owner: Buffer.from(value.slice(2, 2 + 64), 'hex') };
}

/** `Uniques.Attribute(class, Option<item>, key)` under a class prefix, and its value. */
export function decodeAttribute(key: string, prefixHexLen: number, value: string): { item: number | null; key: string; value: Uint8Array } {
  const k = Buffer.from(key.slice(prefixHexLen), 'hex');
  let off = HASH;
  let item: number | null = null;
  if (k[off++] === 1) {
    item = u32le(k, off);
    off += 4;
  }
  off += HASH;
  const [klen, kl] = compactAt(k, off);
  const v = Buffer.from(value.slice(2), 'hex');
  const [vlen, vl] = compactAt(v, 0);
  if (off + kl + klen > k.length || vl + vlen > v.length) throw new Sub0Error('invalid-input', `attribute storage entry ${key.slice(0, 80)}: its key or value is shorter than its length says`);
  return { item, key: k.subarray(off + kl, off + kl + klen).toString('latin1'), value: v.subarray(vl, vl + vlen) };
}
