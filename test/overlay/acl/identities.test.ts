// The identity encoding of the eBPF ACL (overlay/acl/identities.ts), against a model of the
// kernel maps that decides packets as acl.bpf.c does: exact after every change, never more
// permissive than the rules before or after a change at any step of its writes, compact, and
// recoverable from what the kernel holds.
import fc from 'fast-check';
import t from 'tap';
import { parseHost } from '../../../overlay/acl/addr.js';
import { IdentityIndex, type IdentityPlan, type PolicyEntry } from '../../../overlay/acl/identities.js';
import { groupId, IPPROTO, RuleSet, type PortRange, type RuleGroup } from '../../../overlay/acl/rule-set.js';

const V4 = Array.from({ length: 6 }, (_, i) => parseHost(`100.96.0.${i + 1}/32`).bytes);
const V6 = Array.from({ length: 3 }, (_, i) => parseHost(`fd00::${i + 1}/128`).bytes);
const RANGES: PortRange[] = [[80, 80], [443, 443], [1000, 2000], [0, 65535]];
const PORTS = [80, 443, 1500, 5000];
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The kernel's maps as plain maps, and acl.bpf.c's rule decision over them. */
class KernelModel {
  ident = new Map<string, number>();
  policy = new Map<string, PolicyEntry>();
  private key = (sid: number, did: number) => `${sid}:${did}`;
  put(p: IdentityPlan, phases = 4): void {
    if (phases > 0) for (const e of p.policyPut) this.policy.set(this.key(e.sid, e.did), e);
    if (phases > 1) for (const e of p.identPut) this.ident.set(hex(e.addr), e.id);
    if (phases > 2) for (const a of p.identDel) this.ident.delete(hex(a));
    if (phases > 3) for (const e of p.policyDel) this.policy.delete(this.key(e.sid, e.did));
  }
  allows(s: Uint8Array, d: Uint8Array, proto: number, port: number): boolean {
    const sid = this.ident.get(hex(s));
    const did = this.ident.get(hex(d));
    if (sid === undefined || did === undefined) return false;
    const v = this.policy.get(this.key(sid, did));
    if (!v) return false;
    if (v.protos.some((x) => x.proto === IPPROTO.any)) return true;
    const x = v.protos.find((y) => y.proto === proto);
    if (proto === IPPROTO.tcp || proto === IPPROTO.udp) return x !== undefined && x.ranges.some(([lo, hi]) => port >= lo && port <= hi);
    return x !== undefined;
  }
  clone(): KernelModel {
    const k = new KernelModel();
    k.ident = new Map(this.ident);
    k.policy = new Map(this.policy);
    return k;
  }
}

/** Every packet the universe can make: (src, dst of one family, protocol, port). */
function* packets(): Generator<[Uint8Array, Uint8Array, number, number]> {
  for (const [fam, icmp] of [[V4, IPPROTO.icmp], [V6, IPPROTO.icmpv6]] as const) {
    for (const s of fam) for (const d of fam) {
      for (const p of [IPPROTO.tcp, IPPROTO.udp]) for (const port of PORTS) yield [s, d, p, port];
      yield [s, d, icmp, 0];
    }
  }
}

/** A group change: (src, dst) of one family, a protocol, and its new ranges (none: removed). */
const change = fc.record({
  v6: fc.boolean(),
  s: fc.nat(5),
  d: fc.nat(5),
  proto: fc.constantFrom('tcp', 'udp', 'icmp', 'any'),
  ranges: fc.subarray(RANGES, { maxLength: 2 }),
}).map(({ v6, s, d, proto, ranges }): RuleGroup => {
  const fam = v6 ? V6 : V4;
  const n = proto === 'icmp' ? (v6 ? IPPROTO.icmpv6 : IPPROTO.icmp) : IPPROTO[proto as 'tcp' | 'udp' | 'any'];
  const ported = proto === 'tcp' || proto === 'udp';
  return { src: fam[s % fam.length]!, dst: fam[d % fam.length]!, proto: n, ranges: ported || ranges.length === 0 ? ranges : [[0, 65535]] };
});
/** One apply's changes, one per group (as the driver hands them over). */
const batch = fc.array(change, { minLength: 1, maxLength: 12 }).map((cs) => [...new Map(cs.map((g) => [groupId(g.src, g.dst, g.proto), g])).values()]);

function applyTo(model: RuleSet, gs: readonly RuleGroup[]): void {
  for (const g of gs) model.set(groupId(g.src, g.dst, g.proto), g);
}

t.test('exact after every change, and no write order step allows what neither side does', async (t) => {
  let checked = 0;
  fc.assert(
    fc.property(fc.array(batch, { minLength: 1, maxLength: 8 }), (batches) => {
      const idx = new IdentityIndex();
      const kernel = new KernelModel();
      let model = new RuleSet();
      for (const gs of batches) {
        const before = model.clone();
        applyTo(model, gs);
        idx.change(gs);
        const p = idx.plan();
        for (let phase = 1; phase < 4; phase++) {
          const mid = kernel.clone();
          mid.put(p, phase);
          for (const [s, d, proto, port] of packets()) {
            if (mid.allows(s, d, proto, port) && !before.allows(s, d, proto, port) && !model.allows(s, d, proto, port)) {
              throw new Error(`after write phase ${phase}: ${hex(s)} -> ${hex(d)} ${proto}/${port} allowed by neither side`);
            }
          }
        }
        kernel.put(p);
        idx.written();
        for (const [s, d, proto, port] of packets()) {
          if (kernel.allows(s, d, proto, port) !== model.allows(s, d, proto, port)) {
            throw new Error(`${hex(s)} -> ${hex(d)} ${proto}/${port}: kernel ${kernel.allows(s, d, proto, port)}, rules ${model.allows(s, d, proto, port)}`);
          }
        }
        // Compact: one identity entry per address some group names.
        const named = new Set<string>();
        for (const g of model.groups.values()) named.add(hex(g.src)).add(hex(g.dst));
        if (kernel.ident.size !== named.size || idx.counts.ident !== named.size) throw new Error(`ident ${kernel.ident.size}, addresses ${named.size}`);
        if (kernel.policy.size !== idx.counts.policy) throw new Error('policy count');
        model = model.clone();
        checked++;
      }
      // What the kernel holds is enough to start over: same rules, nothing to rewrite.
      const again = new IdentityIndex();
      const read = RuleSet.of(again.load(kernel.ident, [...kernel.policy.values()]));
      if (read.groups.size !== model.groups.size) throw new Error(`reloaded ${read.groups.size} groups, rules hold ${model.groups.size}`);
      for (const [s, d, proto, port] of packets()) if (read.allows(s, d, proto, port) !== model.allows(s, d, proto, port)) throw new Error('reload differs');
      const p = again.plan();
      if (p.policyPut.length + p.identPut.length + p.identDel.length + p.policyDel.length > 0) throw new Error(`a reload plans writes: ${JSON.stringify(p)}`);
    }),
    { numRuns: 300, seed: 0x5b0 },
  );
  t.ok(checked > 300, `${checked} changes checked against every packet of the universe`);
});

t.test('a rule from a group of 10,000 slots to a group of 10: addresses plus one policy entry', async (t) => {
  const src = Array.from({ length: 10_000 }, (_, i) => parseHost(`100.97.${i >> 8}.${i & 255}/32`).bytes);
  const dst = Array.from({ length: 10 }, (_, i) => parseHost(`100.96.9.${i + 1}/32`).bytes);
  const groups: RuleGroup[] = [];
  for (const s of src) for (const d of dst) groups.push({ src: s, dst: d, proto: IPPROTO.tcp, ranges: [[9944, 9944]] });
  const idx = new IdentityIndex();
  idx.change(groups);
  let p = idx.plan();
  idx.written();
  t.same(idx.counts, { ident: 10_010, policy: 1 });
  t.equal(p.identPut.length, 10_010);
  t.equal(p.policyPut.length, 1);
  t.same(p.policyPut[0]!.protos, [{ proto: IPPROTO.tcp, ranges: [[9944, 9944]] }]);

  // One more rule, from a new slot to one of the ten: two identities move or appear, two policy entries.
  const probe = parseHost('100.96.9.200/32').bytes;
  idx.change([{ src: probe, dst: dst[0]!, proto: IPPROTO.udp, ranges: [[5353, 5353]] }]);
  p = idx.plan();
  idx.written();
  t.same(p.identPut.map((x) => hex(x.addr)).sort(), [hex(probe), hex(dst[0]!)].sort(), 'the new slot and the destination it singles out');
  t.equal(p.policyPut.length, 2, 'the group to the singled-out destination, and the new rule');
  t.equal(p.policyDel.length + p.identDel.length, 0);
  t.same(idx.counts, { ident: 10_011, policy: 3 });

  // A slot leaves the group of 10,000: its identity entry goes, and the ten destinations, whose
  // signatures name their sources, move to new identities (ten entries, not 10,000).
  idx.change(dst.map((d) => ({ src: src[0]!, dst: d, proto: IPPROTO.tcp, ranges: [] })));
  p = idx.plan();
  idx.written();
  t.same(p.identDel.map(hex), [hex(src[0]!)]);
  t.same(p.identPut.map((x) => hex(x.addr)).sort(), dst.map(hex).sort());
  t.same(idx.counts, { ident: 10_010, policy: 3 });

  // The probe rule goes: the destination rejoins its group's identity; the probe's entries go.
  idx.change([{ src: probe, dst: dst[0]!, proto: IPPROTO.udp, ranges: [] }]);
  p = idx.plan();
  idx.written();
  t.same(idx.counts, { ident: 10_009, policy: 1 }, 'the ten destinations share one identity again');
  t.equal(p.policyDel.length, 2);
  t.same(p.identDel.map(hex), [hex(probe)]);
});

t.test('a kernel whose identities mix signatures (written by hand) is read as it enforces, then rewritten', async (t) => {
  const [a, b, c] = V4 as [Uint8Array, Uint8Array, Uint8Array];
  const [x, y, z] = V6 as [Uint8Array, Uint8Array, Uint8Array];
  const kernel = new KernelModel();
  // Identity 7 holds a, b and the IPv6 x; 9 holds c and y; z has 5, which no policy names.
  // 7 -> 9 tcp 80, 9 -> 7 udp 53, 9 -> 9 icmp, and an orphan 3 -> 3.
  kernel.ident = new Map([[hex(a), 7], [hex(b), 7], [hex(x), 7], [hex(c), 9], [hex(y), 9], [hex(z), 5]]);
  const all: PortRange[] = [[0, 65535]];
  for (const e of [
    { sid: 7, did: 9, protos: [{ proto: 6, ranges: [[80, 80]] }] },
    { sid: 9, did: 7, protos: [{ proto: 17, ranges: [[53, 53]] }] },
    { sid: 9, did: 9, protos: [{ proto: 1, ranges: all }] },
    { sid: 3, did: 3, protos: [{ proto: 6, ranges: [[1, 1]] }] },
  ] as PolicyEntry[]) {
    kernel.policy.set(`${e.sid}:${e.did}`, e);
  }
  const idx = new IdentityIndex();
  const read = RuleSet.of(idx.load(kernel.ident, [...kernel.policy.values()]));
  const differ = (u: { allows: KernelModel['allows'] }, v: { allows: KernelModel['allows'] }) =>
    [...packets()].filter(([s, d, proto, port]) => u.allows(s, d, proto, port) !== v.allows(s, d, proto, port)).length;
  t.equal(differ(read, kernel), 0, 'the groups read decide every packet as the kernel does');
  t.equal(read.groups.size, 8, 'a,b -> c and x -> y tcp; c -> a,b and y -> x udp; c -> c and y -> y proto 1');
  const p = idx.plan();
  t.same(p.identDel.map(hex), [hex(z)], 'the address no policy reaches is removed');
  t.same(p.policyDel.map((e) => `${e.sid}:${e.did}`).sort(), ['3:3'], 'the orphan policy entry is removed; the rest is kept');
  t.same(p.identPut.map((e) => hex(e.addr)).sort(), [hex(x), hex(y)].sort(), 'the IPv6 addresses, unlike the IPv4 ones they shared numbers with, get their own');
  kernel.put(p);
  idx.written();
  t.equal(differ(kernel, read), 0, 'rewritten, the kernel decides every packet as before');
  const again = new IdentityIndex();
  again.load(kernel.ident, [...kernel.policy.values()]);
  const q = again.plan();
  t.equal(q.policyPut.length + q.identPut.length + q.identDel.length + q.policyDel.length, 0, 'now as this index writes it: nothing to rewrite');
});
