/**
 * Numbers distinct strings 0, 1, 2… in the order they are added: a hash table on one typed array
 * for the string sets a compilation builds at scale (a million rule ids, 100,000 slot ids). A Map
 * of that size spends its time rehashing as it grows; this one is sized once and probed linearly,
 * hash and key number side by side, several times faster to fill and as fast to read.
 * Probes are bounded: a key that finds no free place within PROBES slots (ids crafted to collide)
 * is kept in a Map instead, so colliding input costs what a Map costs, never quadratic time.
 */
const PROBES = 32;

/** FNV-1a over UTF-16 code units, then a final mix so that the low bits index well. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

export class StringIndex {
  private readonly keys: string[];
  private count = 0;
  /** Pairs (hash, key number + 1); 0 marks a free slot. */
  private readonly table: Int32Array;
  private readonly mask: number;
  private overflow: Map<string, number> | undefined;

  /** Sized for `expected` keys at most half full; more still fit, in the overflow. */
  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.table = new Int32Array(cap * 2);
    this.mask = cap - 1;
    this.keys = new Array<string>(expected);
  }

  get size(): number {
    return this.count;
  }

  /** Adds `key` and returns its number; -1 if it was there already. */
  add(key: string): number {
    const h = hashString(key);
    const t = this.table;
    for (let n = 0, j = h & this.mask; n < PROBES; n++, j = (j + 1) & this.mask) {
      const k = t[2 * j + 1]!;
      if (k === 0) {
        t[2 * j] = h;
        t[2 * j + 1] = this.count + 1;
        this.keys[this.count] = key;
        return this.count++;
      }
      if (t[2 * j] === h && this.keys[k - 1] === key) return -1;
    }
    // The whole probe window is taken, and stays so (no removal): the key can only be here.
    const o = (this.overflow ??= new Map());
    if (o.has(key)) return -1;
    o.set(key, this.count);
    this.keys[this.count] = key;
    return this.count++;
  }

  /** The key's number, or -1. */
  indexOf(key: string): number {
    const h = hashString(key);
    const t = this.table;
    for (let n = 0, j = h & this.mask; n < PROBES; n++, j = (j + 1) & this.mask) {
      const k = t[2 * j + 1]!;
      if (k === 0) return -1;
      if (t[2 * j] === h && this.keys[k - 1] === key) return k - 1;
    }
    return this.overflow?.get(key) ?? -1;
  }
}
