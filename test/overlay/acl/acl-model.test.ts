// The pure parts of the ACL drivers: address text <-> bytes, tuple grouping and port-range merges,
// the eBPF map byte layouts, and the nftables text.
import t from 'tap';
import { aclKey, type AclTuple } from '../../../fabric/dataplane-state.js';
import { slotPrefixes } from '../../../fabric/address.js';
import { formatHost, parseHost, parsePrefix } from '../../../overlay/acl/addr.js';
import { decodeFlow, decodePolicy, decodeRule, policyKey, policyValue, ruleKey, ruleValue, FLOW_KEY_SIZE, FLOW_VAL_SIZE, POLICY_VAL_SIZE } from '../../../overlay/acl/bpf-maps.js';
import { renderDelta, renderTable, tableName } from '../../../overlay/acl/nft-ruleset.js';
import { locate, mergeRanges, RuleSet, type PortRange, type RuleGroup } from '../../../overlay/acl/rule-set.js';
import type { PolicyProto } from '../../../overlay/acl/identities.js';

const tup = (src: string, dst: string, proto: AclTuple['proto'], lo = 0, hi = 65535): AclTuple => ({ src, dst, proto, ports: [lo, hi] });

t.test('addresses round-trip in canonical text', async (t) => {
  for (const c of ['100.96.1.2/32', 'fd12:3456:789a:2::6460:102/128', 'fd12:0:789a:2::6460:0/128', '::1/128', '1:2:3:4:5:6:7:8/128']) {
    t.equal(formatHost(parseHost(c).bytes), c, c);
  }
  t.equal(formatHost(parseHost('fd00:0:0:1:0:0:0:5/128').bytes), 'fd00:0:0:1::5/128', 'longest zero run compressed');
  t.equal(formatHost(parseHost('fd00:0:0:2::1:1/128').bytes), 'fd00::2:0:0:1:1/128', 'first of two equal runs (RFC 5952)');
  t.equal(parsePrefix('100.96.0.0/11').bits, 107, 'IPv4 prefixes live in the mapped space');
  t.throws(() => parseHost('100.96.0.0/24'), { code: 'invalid-input' });
  t.throws(() => parseHost('nonsense'), { code: 'invalid-input' });
  const [, ula] = slotPrefixes('lab');
  t.equal(parsePrefix(ula).bits, 64, 'fabric slot prefix parses');
});

t.test('tuples group by (src, dst, proto); ranges stay as given', async (t) => {
  const s = new RuleSet();
  for (const x of [tup('100.96.0.1/32', '100.96.0.2/32', 'tcp', 80, 90), tup('100.96.0.1/32', '100.96.0.2/32', 'tcp', 85, 95), tup('100.96.0.1/32', '100.96.0.2/32', 'icmp')]) {
    const { id, group } = s.with(x, true);
    s.set(id, group);
  }
  t.equal(s.groups.size, 2, 'two keys for three tuples');
  t.same([...s.tuples().keys()].sort(), ['100.96.0.1/32>100.96.0.2/32/icmp:0-65535', '100.96.0.1/32>100.96.0.2/32/tcp:80-90', '100.96.0.1/32>100.96.0.2/32/tcp:85-95']);
  const a = parseHost('100.96.0.1/32').bytes;
  const b = parseHost('100.96.0.2/32').bytes;
  t.ok(s.allows(a, b, 6, 94), 'port in the second range');
  t.notOk(s.allows(a, b, 6, 96), 'port outside both');
  t.notOk(s.allows(b, a, 6, 80), 'other direction');
  t.ok(s.allows(a, b, 1, 0), 'icmp');
  t.notOk(s.allows(a, b, 17, 53), 'udp not allowed');
  const { id, group } = s.with(tup('100.96.0.1/32', '100.96.0.2/32', 'tcp', 80, 90), false);
  s.set(id, group);
  t.notOk(s.allows(a, b, 6, 80), 'removed range no longer allows');
  t.throws(() => s.with(tup('100.96.0.1/32', 'fd00::1/128', 'tcp'), true), { code: 'invalid-input' }, 'mixed families refused');
  t.same(mergeRanges([[85, 95], [80, 90], [96, 100], [200, 300]]), [[80, 100], [200, 300]]);
});

t.test('eBPF map layouts round-trip', async (t) => {
  const g = { src: parseHost('100.96.0.1/32').bytes, dst: parseHost('fd00::1/128').bytes, proto: 6, ranges: [[1, 2], [65535, 65535]] as const };
  const back = decodeRule(ruleKey(g), ruleValue(g.ranges));
  t.same(back, { ...g, src: Uint8Array.from(g.src), dst: Uint8Array.from(g.dst), ranges: [[1, 2], [65535, 65535]] });
  const k = Buffer.alloc(FLOW_KEY_SIZE);
  k.set(g.src, 0);
  k.set(g.dst, 16);
  k.writeUInt16LE(1000, 32);
  k.writeUInt16LE(80, 34);
  k[36] = 6;
  const v = Buffer.alloc(FLOW_VAL_SIZE);
  v[8] = 1; // opened by b
  const f = decodeFlow(k, v);
  t.same([formatHost(f.src), f.sport, f.dport], ['fd00::1/128', 80, 1000], 'flow read in the direction that opened it');
  const all: PortRange[] = [[0, 65535]];
  const protos: PolicyProto[] = [{ proto: 0, ranges: all }, { proto: 58, ranges: all }, { proto: 6, ranges: [[80, 80], [443, 444]] }, { proto: 17, ranges: [[53, 53]] }];
  const pv = policyValue(protos);
  t.equal(pv.length, POLICY_VAL_SIZE);
  t.same(decodePolicy(policyKey({ sid: 7, did: 0xfffffffe }), pv), { sid: 7, did: 0xfffffffe, protos }, 'a policy value holds any, the ICMP of a family, TCP and UDP ranges');
  t.throws(() => policyValue([{ proto: 47, ranges: all }]), /protocol 47 has no place/);
});

t.test('icmp and any take no ports: the driver refuses a tuple that gives them some', async (t) => {
  t.throws(() => locate(tup('100.96.0.1/32', '100.96.0.2/32', 'icmp', 80, 80)), { code: 'invalid-input', message: /icmp takes no ports/ });
  t.throws(() => locate(tup('100.96.0.1/32', '100.96.0.2/32', 'any', 0, 1024)), { code: 'invalid-input' });
  t.equal(locate(tup('100.96.0.1/32', '100.96.0.2/32', 'icmp')).proto, 1);
});

t.test('nftables text: one table per interface, merged intervals, record of exact tuples', async (t) => {
  t.equal(tableName('wg-sub0.1'), 'sub0_wg_sub0_1');
  const table = renderTable('wg0', ['100.96.0.0/11', 'fd00:1:2:2::/64']);
  t.match(table, 'add element inet sub0_wg0 guard4 { 100.96.0.0/11 }');
  t.match(table, 'add element inet sub0_wg0 guard6 { fd00:1:2:2::/64 }');
  t.match(table, 'iifname "wg0" ip saddr @guard4 goto check');
  const s = new RuleSet();
  for (const x of [tup('100.96.0.1/32', '100.96.0.2/32', 'tcp', 80, 90), tup('100.96.0.1/32', '100.96.0.2/32', 'tcp', 85, 95), tup('fd00::1/128', 'fd00::2/128', 'icmp')]) {
    const { id, group } = s.with(x, true);
    s.set(id, group);
  }
  const text = renderDelta('wg0', [...s.groups.values()].map((g) => [undefined, g] as const));
  t.match(text, 'add element inet sub0_wg0 ports4 { 100.96.0.1 . 100.96.0.2 . 6 . 80-95 }');
  t.match(text, 'add element inet sub0_wg0 tuples4 { 100.96.0.1 . 100.96.0.2 . 6 . 80 . 90, 100.96.0.1 . 100.96.0.2 . 6 . 85 . 95 }');
  t.match(text, 'add element inet sub0_wg0 icmp6 { fd00::1 . fd00::2 . 58 }');
  t.notMatch(text, /flush|delete/, 'from nothing: additions only');
  // 85-95 goes: the tuple record loses it, the merged interval shrinks; the ICMP group goes whole.
  const [tcp, icmp] = [...s.groups.values()] as [RuleGroup, RuleGroup];
  const delta = renderDelta('wg0', [[tcp, { ...tcp, ranges: [[80, 90]] }], [icmp, undefined]]);
  t.same(delta.trim().split('\n'), [
    'delete element inet sub0_wg0 tuples4 { 100.96.0.1 . 100.96.0.2 . 6 . 85 . 95 }',
    'delete element inet sub0_wg0 ports4 { 100.96.0.1 . 100.96.0.2 . 6 . 80-95 }',
    'delete element inet sub0_wg0 tuples6 { fd00::1 . fd00::2 . 58 . 0 . 65535 }',
    'delete element inet sub0_wg0 groups6 { fd00::1 . fd00::2 . 58 }',
    'delete element inet sub0_wg0 icmp6 { fd00::1 . fd00::2 . 58 }',
    'add element inet sub0_wg0 ports4 { 100.96.0.1 . 100.96.0.2 . 6 . 80-90 }',
  ], 'a change deletes and adds only the elements that differ, deletions first');
  t.equal(aclKey(tup('a', 'b', 'any')), 'a>b/any:0-65535');
});
