import t from 'tap';
import { compile, Compiler } from '../../fabric/compile.js';
import { desiredState, eachAclTuple } from '../../fabric/dataplane-state.js';
import { canonicalJson } from '../../fabric/encoding.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { parseSnapshot } from '../../fabric/parse-snapshot.js';
import type { AclRule, ChainSnapshot } from '../../fabric/schema.js';
import { prng, syntheticSnapshot } from '../../fabric/examples/synthetic.js';
import { sameConfigContent } from '../../fabric/config-equal.js';
import { golden } from '../helpers/golden.js';
import { ALICE, CHARLIE, labSnapshot } from '../helpers/fabric-fixtures.js';

const codes = (issues: readonly { code: string }[]) => issues.map((i) => i.code);
/** Every tuple a config allows, as `src>dst/proto:lo-hi rule`, sorted. */
const tuples = (c: NodeConfig) => c.acl.flatMap((e) => {
  const out: string[] = [];
  eachAclTuple(e, (key) => out.push(`${key} ${e.rule}`));
  return out;
}).sort();

t.test('golden: the shipped example compiles to the committed configs', async (t) => {
  const { configs, issues } = compile(labSnapshot());
  t.same(issues, []);
  golden(t, new URL('./golden/lab.configs.json', import.meta.url), `${JSON.stringify(Object.fromEntries(configs), null, 1)}\n`, 'configs match the golden file');
});

t.test('each node gets only the rules for the slots it hosts, in both directions', async (t) => {
  const { configs } = compile(labSnapshot());
  const n1 = configs.get('n1')!;
  const n2 = configs.get('n2')!;
  const n3 = configs.get('n3')!;
  const slotAddr = (cfgs: typeof configs, id: string) => [...cfgs.values()].flatMap((c) => c.slots).find((s) => s.id === id)!;
  const web = slotAddr(configs, 'web-1');
  const rpc = slotAddr(configs, 'rpc-1');
  const db = slotAddr(configs, 'db-1');
  const both = (from: typeof web, to: typeof web, rest: string) => [`${from.ipv4}>${to.ipv4}/${rest}`, `${from.ipv6}>${to.ipv6}/${rest}`];
  // n1 hosts web-1 only: it sees web->rpc (egress) and ping from web (owner Bob's slots) to rpc.
  t.same(tuples(n1), [...both(web, rpc, 'tcp:9944-9944 web-to-rpc'), ...both(web, rpc, 'tcp:30333-30334 web-to-rpc'), ...both(web, rpc, 'icmp:0-65535 ping-all')].sort(), 'n1: its egress, both families');
  // n3 hosts db-1: rpc->db reaches it, and it may ping rpc-1.
  t.same(tuples(n3), [...both(rpc, db, 'tcp:5432-5432 rpc-to-db'), ...both(db, rpc, 'icmp:0-65535 ping-all')].sort(), 'n3: its ingress and its egress');
  // n2 hosts rpc-1: every rule touches it; ping-all's sources are web-1 and db-1 (rpc-1 to itself is no pair).
  t.same(tuples(n2), [
    ...both(web, rpc, 'tcp:9944-9944 web-to-rpc'), ...both(web, rpc, 'tcp:30333-30334 web-to-rpc'),
    ...both(rpc, db, 'tcp:5432-5432 rpc-to-db'),
    ...both(web, rpc, 'icmp:0-65535 ping-all'), ...both(db, rpc, 'icmp:0-65535 ping-all'),
  ].sort());
  t.same(n3.acl.filter((a) => a.rule === 'rpc-to-db'), [{ rule: 'rpc-to-db', src: [rpc.ipv4, rpc.ipv6], dst: [db.ipv4, db.ipv6], proto: 'tcp', ports: [5432, 5432] }], 'a slot-to-slot rule: one entry');
  t.equal(n2.acl.filter((a) => a.rule === 'web-to-rpc').length, 2, 'one entry per port range');
  t.same(n2.acl.filter((a) => a.rule === 'ping-all').map((a) => [a.src, a.dst]), [[[web.ipv4, web.ipv6, db.ipv4, db.ipv6], [rpc.ipv4, rpc.ipv6]]], 'a group rule: one entry with address lists');
  t.same(n2.peers.map((p) => p.node), ['n1', 'n3'], 'same DVCI: full mesh');
  t.same([...desiredState(n2).routes].sort(), n2.peers.flatMap((p) => p.allowedIps).sort(), 'routes: every address behind each peer (derived, not sent)');
  t.notOk('routes' in n2, 'the wire carries no separate route list');
  t.ok(n2.peers[0]!.allowedIps.includes(web.ipv4), 'a peer carries its slots');
});

t.test('deny by default: no rule, no entry; a rule never crosses to slots its owner does not own', async (t) => {
  const s = labSnapshot((raw) => {
    raw.rules = [
      // Charlie tries to open Bob's db-1 to the world: refused by name.
      { id: 'steal', owner: CHARLIE, from: 'slot:web-1', to: 'slot:db-1', proto: 'tcp', ports: ['22'] },
      // Charlie's group rule silently matches none of Bob's slots.
      { id: 'grab', owner: CHARLIE, from: 'group:web', to: 'group:db', proto: 'any' },
    ];
  });
  const { configs, issues } = compile(s);
  t.same(codes(issues).sort(), ['empty-selector', 'not-owner']);
  t.equal(issues.find((i) => i.code === 'not-owner')!.entryId, 'steal');
  for (const c of configs.values()) t.same(c.acl, [], `${c.node} enforces nothing`);
  // The operator (network admin) may write rules into any slot.
  const op = labSnapshot((raw) => {
    raw.rules = [{ id: 'ops', owner: ALICE, from: 'slot:web-1', to: 'slot:db-1', proto: 'tcp', ports: ['22'] }];
  });
  t.equal(compile(op).configs.get('n3')!.acl.length, 1);
});

t.test('cross-entry problems are reported per entry and the rest compiles', async (t) => {
  const s = labSnapshot((raw) => {
    raw.nodes.push({ ...raw.nodes[0], id: 'n1' }); // duplicate id
    raw.nodes.push({ ...raw.nodes[1], id: 'n4' }); // duplicate key
    raw.nodes.push({ ...raw.nodes[2], id: 'n5', dvci: 'paris', wgPublicKey: 'StnhPSc9jeRPLygDYHiYD2fkNcUYYD4vBcD2UUnC0RM=' });
    raw.slots.push({ ...raw.slots[0], id: 'ghost', node: 'n9' }); // unknown node
    raw.slots.push({ ...raw.slots[0], id: 'huge', node: 'n2', vcpus: 64 }); // more than n2 has at all
    raw.slots.push({ ...raw.slots[0], id: 'extra', node: 'n2', vcpus: 1, diskGiB: 60 }); // n2 has 50 GiB of disk left
    raw.slots.push({ ...raw.slots[0], id: 'web-1' }); // duplicate slot id
    raw.rules.push({ ...raw.rules[1], id: 'to-nowhere', to: 'slot:nope' });
    raw.rules.push({ ...raw.rules[1], id: 'rpc-to-db' }); // duplicate rule id
  });
  const { configs, issues } = compile(s);
  const byEntry = Object.fromEntries(issues.map((i) => [`${i.entryId}:${i.code}`, i.path]));
  t.same(byEntry, {
    'n1:duplicate-id': 'nodes[3].id',
    'n4:duplicate-key': 'nodes[4].wgPublicKey',
    'n5:unknown-dvci': 'nodes[5].dvci',
    'web-1:duplicate-id': 'slots[6].id',
    'ghost:unknown-node': 'slots[3].node',
    'huge:impossible-resources': 'slots[4]',
    'extra:over-capacity': 'slots[5]',
    'to-nowhere:unknown-slot': 'rules[3].to',
    'rpc-to-db:duplicate-id': 'rules[4].id',
  });
  t.same([...configs.keys()].sort(), ['n1', 'n2', 'n3'], 'the valid nodes still get configs');
  t.same(configs.get('n2')!.slots.map((x) => x.id), ['rpc-1'], 'slots that do not fit are not placed');
  t.same(configs.get('n3')!.acl.filter((a) => a.rule === 'rpc-to-db').map((a) => a.ports), [[5432, 5432]], 'the first rule with a duplicated id is kept');
});

t.test('node states: pending and retired get nothing, quarantined is cut off and dropped by others', async (t) => {
  const s = labSnapshot((raw) => {
    raw.nodes[0].state = 'quarantined';
    raw.nodes[2].state = 'retired';
  });
  const { configs } = compile(s);
  t.same([...configs.keys()].sort(), ['n1', 'n2']);
  const q = configs.get('n1')!;
  t.equal(q.mode, 'quarantined');
  t.same([q.peers, q.acl, q.slots], [[], [], []]);
  t.same(configs.get('n2')!.peers, [], 'n2 peers with neither the quarantined nor the retired node');
  t.same(configs.get('n2')!.acl, [], 'and keeps no rule towards their slots');
});

t.test('rules bring cross-DVCI peers, only while they connect slots', async (t) => {
  const s = labSnapshot((raw) => {
    raw.dvcis.push({ id: 'paris', operator: ALICE });
    raw.nodes[2].dvci = 'paris';
  });
  const { configs } = compile(s);
  t.same(configs.get('n1')!.peers.map((p) => p.node), ['n2'], 'n3 is in another DVCI and no rule links n1 and n3');
  t.same(configs.get('n2')!.peers.map((p) => p.node), ['n1', 'n3'], 'rpc-to-db links n2 and n3');
  t.same(configs.get('n3')!.peers.map((p) => p.node), ['n2']);
});

t.test('compile is deterministic: the same snapshot gives byte-identical configs', async (t) => {
  const a = compile(labSnapshot());
  const b = compile(labSnapshot());
  t.equal(canonicalJson(Object.fromEntries(a.configs)), canonicalJson(Object.fromEntries(b.configs)));
});

t.test('updateRules gives exactly what a full compile of the new state gives', async (t) => {
  const base = parseSnapshot(syntheticSnapshot({ nodes: 60, nodesPerDvci: 20, slotsPerNode: 4, rulesPerSlot: 3, seed: 7 })).snapshot;
  const compiler = new Compiler();
  compiler.compile(base);
  const block = { number: 2, hash: `0x${'cd'.repeat(32)}` };
  const changed: AclRule = { ...base.rules[5]!, ports: [{ from: 443, to: 443 }] };
  const added: AclRule = { ...base.rules[0]!, id: 'new-rule', from: { kind: 'group', value: 'g1' }, proto: 'icmp', ports: [] };
  const removed = base.rules[9]!.id;
  const inc = compiler.updateRules(block, [changed, added], [removed]);
  const next: ChainSnapshot = {
    ...base,
    block,
    rules: [...base.rules.filter((r) => r.id !== removed).map((r) => (r.id === changed.id ? changed : r)), added],
  };
  const full = compile(next);
  t.ok(inc.changed.size > 0 && inc.changed.size < full.configs.size, `only some nodes recompiled (${inc.changed.size} of ${full.configs.size})`);
  t.equal(canonicalJson(Object.fromEntries(inc.configs)), canonicalJson(Object.fromEntries(full.configs)), 'same configs');
  t.same(inc.issues, full.issues, 'same issues, in the same order, with the same paths');
});

t.test('updateRules: rule issues keep the paths a full compile gives them, across removals and additions', async (t) => {
  const base = parseSnapshot(syntheticSnapshot({ nodes: 12, nodesPerDvci: 6, slotsPerNode: 2, rulesPerSlot: 1, seed: 3 })).snapshot;
  const r0 = base.rules[0]!;
  const broken = (id: string): AclRule => ({ ...r0, id, to: { kind: 'slot', value: 'no-such-slot' } });
  const empty = (id: string): AclRule => ({ ...r0, id, from: { kind: 'group', value: 'nobody' }, proto: 'icmp', ports: [] });
  // Issues before and after the rules that change, so that their indexes move.
  const start: ChainSnapshot = { ...base, rules: [broken('bad-a'), ...base.rules.slice(0, 6), empty('quiet-b'), ...base.rules.slice(6), broken('bad-c')] };
  const compiler = new Compiler();
  t.same(compiler.compile(start).issues, compile(start).issues);
  let rules = [...start.rules];
  const steps: [AclRule[], string[]][] = [
    [[], [base.rules[2]!.id]], // remove a rule between two with issues
    [[broken('bad-d'), { ...r0, ports: [{ from: 22, to: 22 }] }], ['quiet-b']], // change one, add one with an issue, remove one with an issue
    [[{ ...empty('quiet-b') }], ['bad-a']], // remove the first; a removed id comes back at the end
    [[{ ...base.rules[4]!, to: { kind: 'slot', value: 'gone' } }], []], // an issue appears on a rule in the middle
  ];
  steps.forEach(([upserted, removed], k) => {
    const block = { number: 10 + k, hash: `0x${String(k).repeat(64)}` };
    const inc = compiler.updateRules(block, upserted, removed);
    rules = rules.filter((r) => !removed.includes(r.id));
    for (const u of upserted) {
      const at = rules.findIndex((r) => r.id === u.id);
      if (at >= 0) rules[at] = u;
      else rules.push(u);
    }
    const full = compile({ ...start, block, rules });
    t.equal(canonicalJson(Object.fromEntries(inc.configs)), canonicalJson(Object.fromEntries(full.configs)), `step ${k}: same configs`);
    t.same(inc.issues, full.issues, `step ${k}: same issues`);
  });
});

t.test('updateNodes gives exactly what a full compile gives, across state, endpoint and capacity changes', async (t) => {
  const raw = syntheticSnapshot({ nodes: 30, nodesPerDvci: 10, slotsPerNode: 4, rulesPerSlot: 2, crossDvci: 0.3, seed: 5 }) as Record<string, any>;
  const operator = raw.network.operator as string;
  raw.slots.forEach((s: Record<string, any>, i: number) => (s.groups = [`g${i % 5}`]));
  const tenant = raw.slots[2].owner as string;
  raw.rules.push(
    { id: 'g0-to-g1', owner: operator, from: 'group:g0', to: 'group:g1', proto: 'tcp', ports: ['80', '8000-8080'] },
    { id: 'tenant-all', owner: tenant, from: 'group:g2', to: `owner:${tenant}`, proto: 'any' },
    { id: 'to-s7', owner: operator, from: 'group:g3', to: 'slot:s7', proto: 'udp', ports: ['53'] },
  );
  raw.nodes[4].capacity = { vcpus: 64, memoryMiB: 1 << 20, diskGiB: 10_000 };
  raw.nodes.push({ ...raw.nodes[3], id: 'repeat-of-a-key' }); // refused: its WireGuard key is taken
  let snap = parseSnapshot(raw).snapshot;
  const compiler = new Compiler();
  let last = compiler.compile(snap).configs;
  const rnd = prng(11);
  const pick = <T,>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  let incremental = 0;
  for (let step = 0; step < 60; step++) {
    const block = { number: 100 + step, hash: `0x${(step % 16).toString(16).repeat(64)}` };
    const nodes = [...snap.nodes];
    for (let k = 0, n = 1 + Math.floor(rnd() * 3); k < n; k++) {
      const i = Math.floor(rnd() * nodes.length);
      const node = nodes[i]!;
      const change = pick(['state', 'state', 'state', 'endpoints', 'capacity', 'key'] as const);
      if (change === 'state') nodes[i] = { ...node, state: pick(['active', 'active', 'quarantined', 'pending', 'retired'] as const) };
      else if (change === 'endpoints') nodes[i] = { ...node, endpoints: [`198.51.100.${step}:${51820 + k}`] };
      else if (change === 'capacity') nodes[i] = { ...node, capacity: pick([undefined, { vcpus: 1, memoryMiB: 512, diskGiB: 5 }, { vcpus: 4, memoryMiB: 4096, diskGiB: 100 }]) };
      else nodes[i] = { ...node, wgPublicKey: nodes[(i + 1) % nodes.length]!.wgPublicKey }; // an identity change: full compile
    }
    snap = { ...snap, block, nodes };
    const inc = compiler.updateNodes(snap) ?? { ...compiler.compile(snap), changed: undefined };
    const full = compile(snap);
    t.equal(canonicalJson(Object.fromEntries(inc.configs)), canonicalJson(Object.fromEntries(full.configs)), `step ${step}: same configs`);
    t.same(inc.issues, full.issues, `step ${step}: same issues`);
    if (inc.changed) {
      incremental++;
      for (const [id, c] of inc.configs) if (!inc.changed.has(id)) t.ok(last.has(id) && sameConfigContent(last.get(id)!, c), `step ${step}: ${id} named unchanged is unchanged`);
    }
    // Rules change between node changes too: the table follows both.
    if (step % 7 === 3) {
      const r = { ...pick(snap.rules), proto: 'icmp' as const, ports: [] };
      snap = { ...snap, block: { ...block, number: block.number + 1000 }, rules: snap.rules.map((x) => (x.id === r.id ? r : x)) };
      const up = compiler.updateRules(snap.block, [r], [], snap.rules);
      t.equal(canonicalJson(Object.fromEntries(up.configs)), canonicalJson(Object.fromEntries(compile(snap).configs)), `step ${step}: a rule change after it`);
    }
    const same = compiler.updateNodes(snap);
    t.ok(same && same.changed.size === 0, `step ${step}: an unchanged snapshot is an update that changes nothing`);
    last = same?.configs ?? last;
  }
  t.ok(incremental > 30, `most steps were incremental (${incremental} of 60)`);
});

t.test('factored entries allow exactly the pairs of each rule that touch the node', async (t) => {
  const raw = syntheticSnapshot({ nodes: 24, nodesPerDvci: 8, slotsPerNode: 5, rulesPerSlot: 1, seed: 11 }) as Record<string, any>;
  const operator = raw.network.operator as string;
  raw.slots.forEach((s: Record<string, any>, i: number) => (s.groups = [`g${i % 4}`, ...(i % 7 === 0 ? ['few'] : [])]));
  const tenant = raw.slots[3].owner as string;
  raw.rules = [
    { id: 'g0-to-g1', owner: operator, from: 'group:g0', to: 'group:g1', proto: 'tcp', ports: ['80', '8000-8080'] },
    { id: 'g2-self', owner: operator, from: 'group:g2', to: 'group:g2', proto: 'udp', ports: ['53'] },
    { id: 'tenant', owner: tenant, from: 'group:few', to: 'group:g3', proto: 'any' }, // opens only the tenant's own slots
    { id: 'one-to-few', owner: operator, from: 'slot:s5', to: 'group:few', proto: 'icmp' },
    { id: 'pair', owner: operator, from: 'slot:s1', to: 'slot:s2', proto: 'tcp', ports: ['22'] },
  ];
  const { snapshot, issues } = parseSnapshot(raw);
  t.same(issues, []);
  const { configs } = compile(snapshot);

  // The reference: every (src, dst) pair of distinct slots, filed under both hosts.
  const where = new Map<string, { v4: string; v6: string; node: string }>();
  for (const c of configs.values()) for (const s of c.slots) where.set(s.id, { v4: s.ipv4, v6: s.ipv6, node: c.node });
  const resolve = (sel: { kind: string; value: string }) =>
    snapshot.slots.filter((s) => where.has(s.id) && (sel.kind === 'slot' ? s.id === sel.value : sel.kind === 'group' ? s.groups.includes(sel.value) : s.owner === sel.value));
  const expected = new Map<string, Set<string>>([...configs.keys()].map((n) => [n, new Set()]));
  for (const r of snapshot.rules) {
    const dst = resolve(r.to).filter((d) => r.owner === operator || d.owner === r.owner);
    const ranges = r.ports.length ? r.ports.map((p) => `${p.from}-${p.to}`) : ['0-65535'];
    for (const s of resolve(r.from)) {
      for (const d of dst) {
        if (s.id === d.id) continue;
        const a = where.get(s.id)!;
        const b = where.get(d.id)!;
        for (const p of ranges) {
          for (const k of [`${a.v4}>${b.v4}/${r.proto}:${p} ${r.id}`, `${a.v6}>${b.v6}/${r.proto}:${p} ${r.id}`]) {
            expected.get(a.node)!.add(k);
            expected.get(b.node)!.add(k);
          }
        }
      }
    }
  }
  let pairs = 0;
  for (const [node, c] of configs) {
    const all = tuples(c);
    const isSelf = (k: string) => {
      const [src, dst] = k.split('>') as [string, string];
      return dst.startsWith(`${src}/`);
    };
    const self = all.filter(isSelf);
    const own = new Set(c.slots.flatMap((s) => [s.ipv4, s.ipv6]));
    t.ok(self.every((k) => own.has(k.split('>')[0]!)), `${node}: the only extra tuples are a hosted slot to itself (${self.length})`);
    const rest = all.filter((k) => !self.includes(k));
    t.equal(new Set(rest).size, rest.length, `${node}: no tuple listed twice`);
    t.same(rest, [...expected.get(node)!].sort(), `${node}: exactly the pairs that touch it`);
    pairs += rest.length;
  }
  t.ok(pairs > 1000, `the rules expand to many pairs (${pairs})`);
  const entries = [...configs.values()].reduce((n, c) => n + c.acl.length, 0);
  t.ok(entries < pairs / 10, `in far fewer entries (${entries})`);
});
