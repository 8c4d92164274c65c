/**
 * Deterministic, stable overlay addresses.
 *
 * IPv4 comes from 100.64.0.0/10 (shared address space, never routed on the internet):
 *   100.64.0.0/16  reserved for DVCI infrastructure (controllers, brokers)
 *   100.65.0.0 - 100.95.255.255  nodes
 *   100.96.0.0/11  slots
 * IPv6 comes from a ULA /48 derived from the network id; the subnet says what the address is
 * (1 = nodes, 2 = slots) and the last 32 bits repeat the IPv4 address, so the two map 1:1.
 *
 * An entry's address is a hash of (network, kind, id, salt): it depends on nothing but the entry
 * itself, so adding, retiring or removing any other entry never moves it. Registration picks a salt
 * whose address is free; if two entries still hash to one address (racing registrations), the
 * older one (lower chain seq, then lower id) keeps it and the newer one walks its own hash sequence
 * to the next free address, with a warning. Only burning an entry that had displaced a newer one can
 * move that newer one (back to its first choice); retiring keeps the address reserved.
 */
import { hash } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { formatIpv6 } from './ip.js';

export { formatIpv6 };

export type AddressKind = 'node' | 'slot';

interface Pool {
  readonly base: number; // first IPv4 address, as an unsigned 32-bit integer
  readonly size: number;
  readonly subnet: number; // IPv6 subnet id
}

const V4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

export const POOLS: Readonly<Record<AddressKind, Pool>> = {
  node: { base: V4(100, 65, 0, 0), size: V4(100, 96, 0, 0) - V4(100, 65, 0, 0), subnet: 1 },
  slot: { base: V4(100, 96, 0, 0), size: 1 << 21, subnet: 2 },
};

export interface Allocatable {
  readonly id: string;
  readonly seq?: number | undefined;
  readonly salt?: number | undefined;
}

export interface OverlayAddress {
  readonly v4: number;
  /** `100.96.1.2` */
  readonly ipv4: string;
  /** `fd12:3456:789a:2::6460:102` */
  readonly ipv6: string;
}

export interface Allocation {
  readonly addresses: ReadonlyMap<string, OverlayAddress>;
  /** Entries that did not get their first-choice address, with the id that holds it. */
  readonly moved: readonly { readonly id: string; readonly heldBy: string; readonly attempts: number }[];
}

/** The three hextets of a network's ULA /48: `fd` + 40 bits of sha256(network id). */
function ulaHextets(networkId: string): [number, number, number] {
  const h = sha256(utf8ToBytes(`sub0/ula/${networkId}`));
  return [(0xfd << 8) | h[0]!, (h[1]! << 8) | h[2]!, (h[3]! << 8) | h[4]!];
}

/** The ULA /48 prefix of a network, as text (`fdc4:66d8:3627`). */
export function ulaPrefix(networkId: string): string {
  return ulaHextets(networkId).map((x) => x.toString(16)).join(':');
}

export function formatIpv4(v4: number): string {
  return `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`;
}

/**
 * The first 32 bits of sha256(UTF-8 of s). One address per slot makes this hot (100,000 at
 * 10,000 nodes): Node's one-shot hash to hex is ~6x faster than a JS sha256 on such short inputs.
 */
function hash32(s: string): number {
  return parseInt(hash('sha256', s, 'hex').slice(0, 8), 16);
}

function candidate(networkId: string, kind: AddressKind, e: Allocatable, attempt: number): number {
  return candidateIn(`${networkId}\0${kind}\0`, POOLS[kind], e, attempt);
}

/** candidate with the constant head of the hashed text built once (a hundred thousand calls). */
function candidateIn(head: string, pool: Pool, e: Allocatable, attempt: number): number {
  const tail = e.salt === undefined && attempt === 0 ? '\x000\x000' : `\0${e.salt ?? 0}\0${attempt}`;
  return pool.base + (hash32(head + e.id + tail) % pool.size);
}

/** The address an entry gets when nothing collides with it (what registration checks). */
export function preferredAddress(networkId: string, kind: AddressKind, e: Allocatable): number {
  return candidate(networkId, kind, e, 0);
}

/**
 * formatIpv6 for [prefix, subnet, 0, 0, hi, lo] with hi != 0 (every overlay address: the IPv4
 * part starts at 100.65), in one template: the zero run to compress is either in the prefix
 * (when its last two hextets are 0: the first of two equal runs wins) or hextets 4-5.
 */
export function ipv6Formatter(prefix: readonly [number, number, number], subnet: number): (v4: number) => string {
  const head = ipv6Head(prefix, subnet);
  return (v4) => `${head}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
}

function ipv6Head(prefix: readonly [number, number, number], subnet: number): string {
  return prefix[1] === 0 && prefix[2] === 0 ? `${prefix[0].toString(16)}::${subnet.toString(16)}:0:0:` : `${prefix.map((x) => x.toString(16)).join(':')}:${subnet.toString(16)}::`;
}

/**
 * The host-route text of a pool's addresses, `100.96.1.2/32` and `fd12:3456:789a:2::6460:102/128`
 * (formatIpv4 and ipv6Formatter, plus the prefix length). Built with join, which makes one flat
 * string where a template literal leaves a chain of concatenations: a compilation keeps two per
 * slot, and whoever reads them need not flatten them.
 */
export function hostCidrText(networkId: string, kind: AddressKind): { v4: (v4: number) => string; v6: (v4: number) => string } {
  const head = ipv6Head(ulaHextets(networkId), POOLS[kind].subnet);
  return {
    v4: (v) => [v >>> 24, '.', (v >>> 16) & 255, '.', (v >>> 8) & 255, '.', v & 255, '/32'].join(''),
    v6: (v) => [head, (v >>> 16).toString(16), ':', (v & 0xffff).toString(16), '/128'].join(''),
  };
}

/** Priority for collisions: older on chain first, then by id. Pure and total. */
function byAge(a: Allocatable, b: Allocatable): number {
  const sa = a.seq ?? Number.MAX_SAFE_INTEGER;
  const sb = b.seq ?? Number.MAX_SAFE_INTEGER;
  return sa - sb || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Allocates one pool. Entries must have unique ids; pass every entry that exists on chain,
 * retired ones included, so that their addresses stay reserved.
 */
export function allocate(networkId: string, kind: AddressKind, entries: readonly Allocatable[]): Allocation {
  const { v4, moved } = allocateV4(networkId, kind, entries);
  const v6 = ipv6Formatter(ulaHextets(networkId), POOLS[kind].subnet);
  const addresses = new Map<string, OverlayAddress>();
  entries.forEach((e, i) => addresses.set(e.id, { v4: v4[i]!, ipv4: formatIpv4(v4[i]!), ipv6: v6(v4[i]!) }));
  return { addresses, moved };
}

/**
 * allocate without the text: each entry's IPv4 address as an integer, by position in `entries`
 * (a compilation formats only the addresses it uses, and keeps no map by id).
 */
export function allocateV4(networkId: string, kind: AddressKind, entries: readonly Allocatable[]): Pick<Allocation, 'moved'> & { v4: Uint32Array } {
  const v4 = new Uint32Array(entries.length);
  const holder = new AddressTable(entries.length);
  const head = `${networkId}\0${kind}\0`;
  const pool = POOLS[kind];
  const moved: { id: string; heldBy: string; attempts: number }[] = [];
  // Oldest first: an entry can only ever be displaced by an older one, so adding an entry never
  // moves another, and neither does retiring one (retired entries keep their reservation).
  let ordered = true;
  for (let i = 1; i < entries.length && ordered; i++) ordered = byAge(entries[i - 1]!, entries[i]!) <= 0;
  const order = ordered ? undefined : Array.from(entries.keys()).sort((a, b) => byAge(entries[a]!, entries[b]!));
  for (let k = 0; k < entries.length; k++) {
    const i = order ? order[k]! : k;
    const e = entries[i]!;
    let attempt = 0;
    let v = candidateIn(head, pool, e, 0);
    const firstHolder = holder.get(v);
    while (holder.get(v) >= 0) v = candidateIn(head, pool, e, ++attempt);
    if (firstHolder >= 0) moved.push({ id: e.id, heldBy: entries[firstHolder]!.id, attempts: attempt });
    holder.set(v, i);
    v4[i] = v;
  }
  return { v4, moved };
}

/**
 * Address -> position of the entry holding it: open addressing on one typed array, sized once
 * (a Map of 100,000 numbers costs several times more to fill). Addresses are never 0.
 */
class AddressTable {
  private readonly table: Int32Array; // pairs (address, position)
  private readonly mask: number;
  private readonly shift: number;

  constructor(expected: number) {
    let bits = 4;
    while (1 << bits < expected * 2) bits++;
    this.table = new Int32Array(2 << bits);
    this.mask = (1 << bits) - 1;
    this.shift = 32 - bits;
  }

  /** The position holding `v`, or -1. */
  get(v: number): number {
    for (let j = this.slot(v); ; j = (j + 1) & this.mask) {
      const a = this.table[2 * j]!;
      if (a === 0) return -1;
      if (a === (v | 0)) return this.table[2 * j + 1]!;
    }
  }

  set(v: number, position: number): void {
    let j = this.slot(v);
    while (this.table[2 * j] !== 0) j = (j + 1) & this.mask;
    this.table[2 * j] = v;
    this.table[2 * j + 1] = position;
  }

  private slot(v: number): number {
    return Math.imul(v, 0x9e3779b1) >>> this.shift; // the product's top bits (Fibonacci hashing)
  }
}

/**
 * The prefixes that hold slot addresses. Traffic to or from them is what ACLs govern (deny by
 * default); traffic between node addresses is the mesh's own and is not filtered.
 */
export function slotPrefixes(networkId: string): readonly [string, string] {
  return ['100.96.0.0/11', `${formatIpv6([...ulaHextets(networkId), POOLS.slot.subnet, 0, 0, 0, 0])}/64`];
}
