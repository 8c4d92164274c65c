/**
 * A set of strings on typed arrays, for the one check a compilation makes a million times (is this
 * rule id taken?). A Set of that size spends its time rehashing as it grows and chasing entries;
 * this table is sized once and probed linearly, several times faster.
 * Probes are bounded: a key that finds no free place within PROBES slots (ids crafted to collide)
 * is kept in a Map instead, so colliding input costs what a Map costs, never quadratic time.
 */
const PROBES = 32;

/** FNV-1a over UTF-16 code units, then a final mix so that the low bits index well. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

export class StringSet {
  private readonly keys: string[];
  private count = 0;
  private readonly slots: Int32Array; // index in keys + 1; 0 is free
  private readonly hashes: Int32Array;
  private readonly mask: number;
  private overflow: Set<string> | undefined;

  /** Sized for `expected` keys at most half full; more still fit, in the overflow. */
  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.slots = new Int32Array(cap);
    this.hashes = new Int32Array(cap);
    this.mask = cap - 1;
    this.keys = new Array<string>(expected);
  }

  /** Adds `key`; false if it was there already. */
  add(key: string): boolean {
    const h = hashString(key);
    for (let n = 0, j = h & this.mask; n < PROBES; n++, j = (j + 1) & this.mask) {
      const k = this.slots[j]!;
      if (k === 0) {
        this.keys[this.count] = key;
        this.slots[j] = ++this.count;
        this.hashes[j] = h;
        return true;
      }
      if (this.hashes[j] === h && this.keys[k - 1] === key) return false;
    }
    // The whole probe window is taken, and stays so (no removal): the key can only be here.
    const o = (this.overflow ??= new Set());
    if (o.has(key)) return false;
    o.add(key);
    return true;
  }
}
