/**
 * Which entries of a list repeat the id of an earlier one (a million rules: the first wins, the
 * repeats are reported). One table of a million ids is probed at random across 16 MB, a cache
 * miss per id; instead the ids are hashed in list order, partitioned by the top bits of their
 * hash, and each partition's table (a few thousand ids, in cache) is filled on its own.
 * A repeat falls in the partition of its first occurrence, and partitions keep list order.
 * Probes are bounded as in StringIndex: a partition whose ids collide past PROBES (crafted ids)
 * goes to a Set instead, so colliding input costs what a Set costs, never quadratic time.
 */
import { hashString } from './string-index.js';

const PER_PARTITION = 4096;
const PROBES = 32;

/** 1 at the positions whose id is already at a lower position. */
export function repeatedIds(list: readonly { readonly id: string }[]): Uint8Array {
  const n = list.length;
  const hashes = new Int32Array(n);
  for (let i = 0; i < n; i++) hashes[i] = hashString(list[i]!.id);
  let bits = 0;
  while (bits < 16 && n >> bits > PER_PARTITION) bits++;
  const shift = 32 - bits;
  const parts = 1 << bits;
  const partOf = (h: number) => (bits === 0 ? 0 : h >>> shift);

  // Counting sort of positions by partition, in list order within each.
  const start = new Int32Array(parts + 1);
  for (let i = 0; i < n; i++) start[partOf(hashes[i]!) + 1]!++;
  for (let p = 0; p < parts; p++) start[p + 1]! += start[p]!;
  const next = start.slice(0, parts);
  const byPart = new Int32Array(n);
  for (let i = 0; i < n; i++) byPart[next[partOf(hashes[i]!)]!++] = i;

  const out = new Uint8Array(n);
  let table = new Int32Array(0); // position + 1; 0 is free
  for (let p = 0; p < parts; p++) {
    const a = start[p]!;
    const b = start[p + 1]!;
    let cap = 16;
    while (cap < (b - a) * 2) cap *= 2;
    if (table.length < cap) table = new Int32Array(cap);
    else table.fill(0, 0, cap);
    const mask = cap - 1;
    let overflow: Set<string> | undefined;
    for (let k = a; k < b; k++) {
      const i = byPart[k]!;
      const h = hashes[i]!;
      const id = list[i]!.id;
      let placed = false;
      for (let probe = 0, j = h & mask; probe < PROBES; probe++, j = (j + 1) & mask) {
        const e = table[j]!;
        if (e === 0) {
          table[j] = i + 1;
          placed = true;
          break;
        }
        if (hashes[e - 1] === h && list[e - 1]!.id === id) {
          out[i] = 1;
          placed = true;
          break;
        }
      }
      if (placed) continue;
      // The whole probe window is taken, and stays so: the id can only be in the overflow.
      overflow ??= new Set();
      if (overflow.has(id)) out[i] = 1;
      else overflow.add(id);
    }
  }
  return out;
}
