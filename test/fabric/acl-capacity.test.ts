/**
 * A node's ACL that would not fit the kernel's rule map is caught by the compiler: its entries are
 * kept in rule order while they fit, the rest left out on that node (denied), with an issue that
 * names the node, the rules and the figures; the agent never gets a config it cannot apply.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { ACL_KERNEL_ENTRIES, fitAcl } from '../../fabric/acl-capacity.js';
import { compile } from '../../fabric/compile.js';
import type { AclEntry } from '../../fabric/node-config.js';
import { labSnapshot } from '../helpers/fabric-fixtures.js';

const hosts = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}.${i}/32`);
const entry = (rule: string, src: string[], dst: string[], proto: AclEntry['proto'] = 'tcp', ports: [number, number] = [80, 80]): AclEntry => ({ rule, src, dst, proto, ports });

t.test('entries are kept in order while their kernel entries fit', async (t) => {
  const a = entry('a', hosts('100.96.0', 3), hosts('100.96.1', 3));
  const aOtherPort = entry('a', a.src, a.dst, 'tcp', [443, 443]);
  const b = entry('b', hosts('100.96.2', 2), hosts('100.96.3', 1));
  const c = entry('c', hosts('100.96.0', 1), hosts('100.96.1', 1), 'udp');
  const fit = fitAcl([a, aOtherPort, b, c], 10);
  t.same(fit.kept.map((e) => e.rule), ['a', 'a', 'c'], 'a: 9 entries, its second port range shares them; b (2 more) does not fit; c (1) does');
  t.same(fit.dropped, ['b']);
  t.equal(fit.used, 10);
  t.equal(fit.wanted, 12);
  const small = [a, b];
  t.equal(fitAcl(small).kept, small, 'far below the map size: the same list, not walked');
});

t.test('the kernel map is the size the compiler assumes', async (t) => {
  const c = readFileSync(new URL('../../overlay/acl/bpf/acl.bpf.c', import.meta.url), 'utf8');
  const m = /__uint\(max_entries, (\d+)\);\s*__type\(key, struct rule_key\);/.exec(c);
  t.equal(Number(m?.[1]), ACL_KERNEL_ENTRIES, 'acl_rules max_entries in acl.bpf.c');
});

t.test('a rule between two groups of 300 slots (90,000 pairs per family) is left out on the nodes it would overflow, with an issue', async (t) => {
  const snap = labSnapshot((raw) => {
    const template = raw.slots[0];
    for (const [node, group] of [['n1', 'big-a'], ['n2', 'big-b']] as const) {
      delete raw.nodes.find((n: { id: string }) => n.id === node).capacity;
      for (let i = 0; i < 300; i++) raw.slots.push({ ...template, id: `${group}-${i}`, seq: 100 + raw.slots.length, node, groups: [group] });
    }
    raw.rules.push({ ...raw.rules[0], id: 'big', from: 'group:big-a', to: 'group:big-b', proto: 'tcp', ports: ['80'] });
  });
  const { configs, issues } = compile(snap);
  const over = issues.filter((i) => i.code === 'acl-over-capacity');
  t.same(over.map((i) => i.entryId).sort(), ['n1', 'n2'], 'both ends of the rule');
  t.match(over[0]!.message, /ACL needs at least 180\d{3} kernel entries \(source x destination x protocol\), over the 65536 its map holds: rule big left out on this node/);
  t.equal(over[0]!.severity, 'error');
  for (const n of ['n1', 'n2']) {
    const rules = new Set(configs.get(n)!.acl.map((e) => e.rule));
    t.notOk(rules.has('big'), `${n}: the big rule is not in its config`);
    t.ok(rules.size > 0, `${n}: its other rules are`);
  }
  t.notOk(issues.some((i) => i.code === 'acl-over-capacity' && i.entryId === 'n3'), 'n3, untouched, has no such issue');
});
