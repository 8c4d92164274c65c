import t from 'tap';
import { allocate, POOLS, preferredAddress, slotPrefixes, ulaPrefix, formatIpv4 } from '../../fabric/address.js';

const ids = (n: number, prefix = 'e') => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, seq: i }));
const v4s = (a: ReturnType<typeof allocate>) => new Map([...a.addresses].map(([k, v]) => [k, v.ipv4]));

t.test('addresses stay inside their pool, and IPv6 mirrors IPv4', async (t) => {
  const a = allocate('lab', 'slot', ids(2000));
  const outside: string[] = [];
  const mismatched: string[] = [];
  for (const [, addr] of a.addresses) {
    if (!(addr.v4 >= POOLS.slot.base && addr.v4 < POOLS.slot.base + POOLS.slot.size)) outside.push(addr.ipv4);
    const [hi, lo] = addr.ipv6.split('::')[1]!.split(':').map((h) => parseInt(h, 16));
    if (!addr.ipv6.startsWith(`${ulaPrefix('lab')}:2::`) || formatIpv4(((hi! << 16) | lo!) >>> 0) !== addr.ipv4) mismatched.push(addr.ipv6);
  }
  t.same(outside, [], 'every IPv4 address is in 100.96.0.0/11');
  t.same(mismatched, [], 'every IPv6 address is in the slot subnet of the network ULA and ends with the IPv4 address');
  t.equal(new Set([...a.addresses.values()].map((x) => x.v4)).size, 2000, 'all distinct');
});

t.test('the ULA /48 is derived from the network id', async (t) => {
  t.match(ulaPrefix('lab'), /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/);
  t.not(ulaPrefix('lab'), ulaPrefix('lab2'));
  t.equal(ulaPrefix('lab'), ulaPrefix('lab'));
  t.same(slotPrefixes('lab'), ['100.96.0.0/11', `${ulaPrefix('lab')}:2::/64`]);
});

t.test('adding or removing one entry never renumbers another', async (t) => {
  const base = ids(3000);
  const before = v4s(allocate('net', 'slot', base));
  // Add: the newcomer is the newest, so it can only move itself.
  const added = v4s(allocate('net', 'slot', [...base, { id: 'newcomer', seq: 3000 }]));
  for (const [id, addr] of before) if (added.get(id) !== addr) t.fail(`${id} moved on add`);
  // Remove any one entry that did not displace another: nobody else moves.
  const a = allocate('net', 'slot', base);
  const displacers = new Set(a.moved.map((m) => m.heldBy));
  for (const victim of [0, 17, 1500, 2999].map((i) => `e${i}`).filter((v) => !displacers.has(v))) {
    const after = v4s(allocate('net', 'slot', base.filter((e) => e.id !== victim)));
    const moved = [...after].filter(([id, addr]) => before.get(id) !== addr);
    t.same(moved, [], `removing ${victim} moved nobody`);
  }
  // Order of the input does not matter.
  t.same(v4s(allocate('net', 'slot', [...base].reverse())), before, 'input order is irrelevant');
});

t.test('collisions: the older entry keeps the address, the newer moves, deterministically', async (t) => {
  // A pool this full makes collisions certain; find a pair that shares a first choice.
  const entries = ids(40000, 'c');
  const first = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (const e of entries) {
    const v = preferredAddress('net', 'node', e);
    const other = first.get(v);
    if (other) {
      pair = [other, e.id];
      break;
    }
    first.set(v, e.id);
  }
  if (!pair) return t.fail('no collision among 40000 entries');
  const [older, newer] = pair;
  const seqOf = (id: string) => Number(id.slice(1));
  const one = allocate('net', 'node', [{ id: newer, seq: seqOf(newer) }, { id: older, seq: seqOf(older) }]);
  t.equal(one.addresses.get(older)!.v4, preferredAddress('net', 'node', { id: older }), 'older keeps its first choice');
  t.not(one.addresses.get(newer)!.v4, one.addresses.get(older)!.v4, 'newer gets another address');
  t.same(one.moved, [{ id: newer, heldBy: older, attempts: 1 }]);
  const again = allocate('net', 'node', [{ id: older, seq: seqOf(older) }, { id: newer, seq: seqOf(newer) }]);
  t.same(v4s(again), v4s(one), 'same result whatever the order');
  // A salt chosen at registration avoids the collision altogether.
  let salt = 1;
  while (preferredAddress('net', 'node', { id: newer, salt }) === preferredAddress('net', 'node', { id: older })) salt++;
  const salted = allocate('net', 'node', [{ id: older, seq: 0 }, { id: newer, seq: 1, salt }]);
  t.same(salted.moved, [], 'salted: no collision');
});

t.test('IPv6 text is canonical (RFC 5952), as the kernel prints it', async (t) => {
  const { formatIpv6 } = await import('../../fabric/address.js');
  t.equal(formatIpv6([0xfd12, 0x3456, 0x789a, 2, 0, 0, 0x6460, 0x102]), 'fd12:3456:789a:2::6460:102');
  t.equal(formatIpv6([0xfd00, 0, 0, 2, 0, 0, 0x6460, 0x102]), 'fd00::2:0:0:6460:102', 'first of two equal runs');
  t.equal(formatIpv6([0xfd00, 0, 0, 2, 0, 0, 0, 0]), 'fd00:0:0:2::', 'longest run wins');
  t.equal(formatIpv6([0xfd00, 1, 0, 2, 3, 0, 5, 6]), 'fd00:1:0:2:3:0:5:6', 'a lone zero is not compressed');
  t.equal(formatIpv6([0, 0, 0, 0, 0, 0, 0, 1]), '::1');
});

t.test('the allocation fast path formats exactly as formatIpv6', async (t) => {
  const { formatIpv6, ipv6Formatter } = await import('../../fabric/address.js');
  const bad: string[] = [];
  for (const prefix of [[0xfd12, 0x3456, 0x789a], [0xfd00, 0, 0], [0xfd00, 0, 5], [0xfd00, 5, 0]] as [number, number, number][]) {
    for (const subnet of [1, 2]) {
      const f = ipv6Formatter(prefix, subnet);
      for (const v4 of [0x64410000, 0x64600000, 0x6460ffff, 0x647fff00, 0x645a0001]) {
        const want = formatIpv6([...prefix, subnet, 0, 0, v4 >>> 16, v4 & 0xffff]);
        if (f(v4) !== want) bad.push(`${f(v4)} != ${want}`);
      }
    }
  }
  t.same(bad, []);
});

t.test('host-route text is formatIpv4 and the IPv6 text plus the prefix length', async (t) => {
  const { hostCidrText } = await import('../../fabric/address.js');
  const bad: string[] = [];
  for (const net of ['lab', 'bench', 'net']) {
    for (const kind of ['node', 'slot'] as const) {
      const text = hostCidrText(net, kind);
      for (const [, a] of allocate(net, kind, ids(300)).addresses) {
        if (text.v4(a.v4) !== `${a.ipv4}/32`) bad.push(text.v4(a.v4));
        if (text.v6(a.v4) !== `${a.ipv6}/128`) bad.push(text.v6(a.v4));
      }
    }
  }
  t.same(bad, []);
});
