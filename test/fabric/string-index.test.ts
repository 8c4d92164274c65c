import t from 'tap';
import { repeatedIds } from '../../fabric/repeats.js';
import { hashString, StringIndex } from '../../fabric/string-index.js';

/** `count` distinct ids whose hashes share their low `bits` bits: they probe the same slots. */
function colliding(count: number, bits: number): string[] {
  const out: string[] = [];
  const mask = (1 << bits) - 1;
  for (let i = 0; out.length < count; i++) if ((hashString(`c${i}`) & mask) === 0) out.push(`c${i}`);
  return out;
}

t.test('StringIndex numbers keys in order, finds them again, and survives colliding keys', async (t) => {
  const plain = Array.from({ length: 500 }, (_, i) => `k${i}`);
  const crafted = colliding(80, 10); // one home slot for all: past the probe bound
  const keys = [...plain, ...crafted];
  const index = new StringIndex(keys.length);
  t.same(keys.map((k) => index.add(k)), keys.map((_, i) => i), 'new keys get 0, 1, 2…');
  t.same(keys.map((k) => index.add(k)), keys.map(() => -1), 'known keys are refused');
  t.same(keys.map((k) => index.indexOf(k)), keys.map((_, i) => i));
  t.equal(index.indexOf('absent'), -1);
  t.equal(index.size, keys.length);
  const small = new StringIndex(2);
  t.same(plain.map((k) => small.add(k)), plain.map((_, i) => i), 'more keys than expected still fit');
  t.same(plain.map((k) => small.indexOf(k)), plain.map((_, i) => i));
});

t.test('repeatedIds marks exactly the later occurrences, whatever the hashes', async (t) => {
  const naive = (ids: string[]) => {
    const seen = new Set<string>();
    return ids.map((id) => (seen.has(id) ? 1 : (seen.add(id), 0)));
  };
  const crafted = colliding(80, 12); // one home slot in tables of up to 4096 slots
  for (const n of [0, 1, 100, 20000]) {
    const ids = Array.from({ length: n }, (_, i) => `r${i % Math.max(1, Math.floor(n * 0.9))}`);
    ids.push(...crafted, ...crafted.slice(0, 10));
    t.same([...repeatedIds(ids.map((id) => ({ id })))], naive(ids), `${n} ids and colliding ones`);
  }
});
