/**
 * A node's ACL that would not fit the kernel's maps is caught by the compiler: its entries are
 * kept in rule order while they fit, the rest left out on that node (denied), with an issue that
 * names the node, the rules and the figures; the agent never gets a config it cannot apply.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { ACL_IDENT_ENTRIES, ACL_POLICY_ENTRIES, aclCost, fitAcl } from '../../fabric/acl-capacity.js';
import { compile } from '../../fabric/compile.js';
import type { AclEntry } from '../../fabric/node-config.js';
import { labSnapshot } from '../helpers/fabric-fixtures.js';

const hosts = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}.${i}/32`);
/** n addresses under a /16 (`100.97` -> 100.97.0.0, 100.97.0.1, ...). */
const block = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}.${i >> 8}.${i & 255}/32`);
const entry = (rule: string, src: string[], dst: string[], proto: AclEntry['proto'] = 'tcp', ports: [number, number] = [80, 80]): AclEntry => ({ rule, src, dst, proto, ports });

t.test('cost: an identity per address, merged by the entries they stand in; a policy key per identity pair and protocol', async (t) => {
  const big = entry('big', block('100.97', 10_000), hosts('100.96.9', 10), 'tcp', [9944, 9944]);
  t.same(aclCost([big]), { ident: 10_010, policy: 1, tuples: 100_000 }, 'a group of 10,000 to a group of 10');
  const v6 = entry('v6', ['fd00::1/128', '100.96.0.1/32'], ['fd00::2/128', '100.96.0.2/32']);
  t.same(aclCost([v6]), { ident: 4, policy: 2, tuples: 2 }, 'families apart: one pair each');
  const lone = entry('lone', ['fd00::1/128'], ['100.96.0.2/32']);
  t.same(aclCost([lone]), { ident: 0, policy: 0, tuples: 0 }, 'no pair of one family: nothing in the kernel');
  const a = entry('a', hosts('100.96.0', 3), hosts('100.96.1', 3));
  const b = entry('b', hosts('100.96.0', 1), hosts('100.96.1', 3), 'udp');
  t.same(aclCost([a, b]), { ident: 6, policy: 3, tuples: 12 }, 'b singles out one source: two source identities; a: 2 keys, b: 1');
});

t.test('entries are kept in order while their kernel entries fit', async (t) => {
  const a = entry('a', hosts('100.96.0', 3), hosts('100.96.1', 3));
  const aOtherPort = entry('a', a.src, a.dst, 'tcp', [443, 443]);
  const b = entry('b', hosts('100.96.2', 2), hosts('100.96.3', 1));
  const c = entry('c', hosts('100.96.0', 1), hosts('100.96.1', 1), 'udp');
  const fit = fitAcl([a, aOtherPort, b, c], { ident: 8, policy: 10, tuples: 100 });
  t.same(fit.kept.map((e) => e.rule), ['a', 'a'], 'a: 6 addresses; b would make 9');
  t.same(fit.dropped, ['b', 'c'], 'the rest is left out in rule order');
  t.same(fit.used, { ident: 6, policy: 1, tuples: 18 });
  t.same(fit.wanted, { ident: 9, policy: 6, tuples: 21 }, 'a: 4 keys (100.96.0.0, in c too, has its own identity), b: 1, c: 1');
  const small = [a, b];
  t.equal(fitAcl(small).kept, small, 'far below the maps\' size: the same list, not walked');
  const huge = [entry('big', block('100.97', 10_000), hosts('100.96.9', 10))];
  t.equal(fitAcl(huge).kept, huge, '10,000 x 10 pairs fit: 10,010 identities and one policy entry');
  const square = [entry('square', block('100.97', 1_000), block('100.98', 1_000))];
  const over = fitAcl(square);
  t.same(over.dropped, ['square'], '1,000 x 1,000 pairs: two identities, but a million tuples for the agent to expand');
  t.same(over.wanted, { ident: 2_000, policy: 1, tuples: 1_000_000 });
});

t.test('the kernel maps are the size the compiler assumes', async (t) => {
  const c = readFileSync(new URL('../../overlay/acl/bpf/acl.bpf.c', import.meta.url), 'utf8');
  const size = (key: string) => Number(new RegExp(`__uint\\(max_entries, (\\d+)\\);\\s*__type\\(key, struct ${key}\\);`).exec(c)?.[1]);
  t.equal(size('ident_key'), ACL_IDENT_ENTRIES, 'acl_ident max_entries in acl.bpf.c');
  t.equal(size('policy_key'), ACL_POLICY_ENTRIES, 'acl_policy max_entries in acl.bpf.c');
});

t.test('a rule from a group of 33,000 slots (66,000 addresses with IPv6) to a group of 300 is left out on the nodes it would overflow, with an issue', async (t) => {
  const snap = labSnapshot((raw) => {
    const template = raw.slots[0];
    for (const [node, group, n] of [['n1', 'big-a', 33_000], ['n2', 'big-b', 300]] as const) {
      delete raw.nodes.find((x: { id: string }) => x.id === node).capacity;
      for (let i = 0; i < n; i++) raw.slots.push({ ...template, id: `${group}-${i}`, seq: 100 + raw.slots.length, node, groups: [group] });
    }
    raw.rules.push({ ...raw.rules[0], id: 'big', from: 'group:big-a', to: 'group:big-b', proto: 'tcp', ports: ['80'] });
  });
  const { configs, issues } = compile(snap);
  const over = issues.filter((i) => i.code === 'acl-over-capacity');
  t.same(over.map((i) => i.entryId).sort(), ['n1', 'n2'], 'both ends of the rule');
  t.match(over[0]!.message, /ACL needs up to 66\d{3} address and \d+ policy entries in the kernel and \d+ tuples in the agent, over the 65536, 65536 and 262144 a node holds: rules ping-all, big left out on this node/, 'ping-all names every slot: it overflows too');
  t.equal(over[0]!.severity, 'error');
  for (const n of ['n1', 'n2']) {
    const rules = new Set(configs.get(n)!.acl.map((e) => e.rule));
    t.notOk(rules.has('big'), `${n}: the big rule is not in its config`);
    t.ok(rules.size > 0, `${n}: its other rules are`);
  }
  t.notOk(issues.some((i) => i.code === 'acl-over-capacity' && i.entryId === 'n3'), 'n3, untouched, has no such issue');
});
