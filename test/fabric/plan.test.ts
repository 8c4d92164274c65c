import t from 'tap';
import { compile } from '../../fabric/compile.js';
import { aclKey, desiredState, emptyState, type DataplaneState, type PeerState } from '../../fabric/dataplane-state.js';
import { applyOps, plan, type Op } from '../../fabric/plan.js';
import { labSnapshot } from '../helpers/fabric-fixtures.js';

const K1 = 'QHdyV3zo+356fIKWBX8dTFmg4j6BXqZR5nOFpLPhR3c=';
const K2 = '09zhIHXQYpsQdQBejk/ZELUlzf2p0Qq+xqP+Pw9SaGU=';
const peer = (publicKey: string, over: Partial<PeerState> = {}): PeerState => ({
  publicKey,
  endpoints: ['192.0.2.1:51820'],
  allowedIps: ['100.65.0.1/32'],
  keepalive: 25,
  ...over,
});
const state = (over: Partial<{ addresses: string[]; listenPort: number; peers: PeerState[]; routes: string[]; acl: string[] }> = {}): DataplaneState => {
  const acl = new Map<string, { src: string; dst: string; proto: 'tcp'; ports: [number, number] }>();
  for (const a of over.acl ?? []) {
    const [src, dst, port] = a.split(' ');
    const tuple = { src: src!, dst: dst!, proto: 'tcp' as const, ports: [Number(port), Number(port)] as [number, number] };
    acl.set(aclKey(tuple), tuple);
  }
  return {
    addresses: new Set(over.addresses ?? []),
    listenPort: over.listenPort ?? 51820,
    peers: new Map((over.peers ?? []).map((p) => [p.publicKey, p])),
    routes: new Set(over.routes ?? []),
    acl,
  };
};
const summary = (ops: Op[]) => ops.map((o) => `${o.op}${'changes' in o ? `(${o.changes.join(',')})` : ''}`);

const cases: { name: string; desired: DataplaneState; observed: DataplaneState; ops: string[] }[] = [
  { name: 'nothing to do', desired: state({ peers: [peer(K1)] }), observed: state({ peers: [peer(K1)] }), ops: [] },
  { name: 'fresh interface', desired: state({ addresses: ['100.65.0.2/32'], peers: [peer(K1)], routes: ['100.65.0.1/32'], acl: ['a b 80'] }), observed: state({ listenPort: 0 }), ops: ['address-add', 'listen-port', 'peer-add', 'route-add', 'acl-add'] },
  { name: 'peer removed, routes and rules go with it, after the adds', desired: state({ peers: [peer(K2)], routes: ['r2'], acl: ['x y 1'] }), observed: state({ peers: [peer(K1)], routes: ['r1'], acl: ['a b 80'] }), ops: ['peer-add', 'route-add', 'acl-add', 'acl-remove', 'route-remove', 'peer-remove'] },
  { name: 'allowed ips changed', desired: state({ peers: [peer(K1, { allowedIps: ['100.65.0.1/32', '100.96.0.9/32'] })] }), observed: state({ peers: [peer(K1)] }), ops: ['peer-update(allowed-ips)'] },
  { name: 'allowed ips in another order is no change', desired: state({ peers: [peer(K1, { allowedIps: ['b', 'a'] })] }), observed: state({ peers: [peer(K1, { allowedIps: ['a', 'b'] })] }), ops: [] },
  { name: 'peer roamed to another acceptable endpoint: left alone', desired: state({ peers: [peer(K1, { endpoints: ['192.0.2.1:51820', '198.51.100.1:51820'] })] }), observed: state({ peers: [peer(K1, { endpoints: ['198.51.100.1:51820'] })] }), ops: [] },
  { name: 'peer at an endpoint it should not use', desired: state({ peers: [peer(K1)] }), observed: state({ peers: [peer(K1, { endpoints: ['203.0.113.9:4444'] })] }), ops: ['peer-update(endpoint)'] },
  { name: 'peer without endpoint we know: roaming in is fine', desired: state({ peers: [peer(K1, { endpoints: [] })] }), observed: state({ peers: [peer(K1, { endpoints: ['203.0.113.9:4444'] })] }), ops: [] },
  { name: 'keepalive and address change', desired: state({ addresses: ['b/32'], peers: [peer(K1, { keepalive: 0 })] }), observed: state({ addresses: ['a/32'], peers: [peer(K1)] }), ops: ['address-add', 'peer-update(keepalive)', 'address-remove'] },
  { name: 'a rule revoked', desired: state({ acl: ['a b 80'] }), observed: state({ acl: ['a b 80', 'a b 443'] }), ops: ['acl-remove'] },
];

for (const c of cases) {
  t.test(`plan: ${c.name}`, async (t) => {
    const ops = plan(c.desired, c.observed);
    t.same(summary(ops), c.ops);
    const reached = applyOps(c.observed, ops);
    t.same(plan(c.desired, reached), [], 'planning again after applying yields nothing');
  });
}

t.test('plan against a real compiled config: from empty, to itself, and after a rule change', async (t) => {
  const desired = desiredState(compile(labSnapshot()).configs.get('n2')!);
  const first = plan(desired, emptyState());
  t.ok(first.length > 0);
  const firstRemove = first.findIndex((o) => o.op.endsWith('-remove'));
  t.equal(firstRemove, -1, 'from empty, nothing to remove');
  const reached = applyOps(emptyState(), first);
  t.same(plan(desired, reached), [], 'idempotent');
  t.same(plan(desired, applyOps(reached, first)), [], 'applying the same plan twice changes nothing');
  const revoked = desiredState(compile(labSnapshot((raw) => raw.rules.splice(0, 1))).configs.get('n2')!);
  const ops = plan(revoked, reached);
  t.ok(ops.length > 0 && ops.every((o) => o.op === 'acl-remove'), 'revoking web-to-rpc only removes ACL entries on n2');
  t.equal(ops.length, 4, '2 port ranges x 2 families');
});

t.test('quarantine empties everything but the interface', async (t) => {
  const active = desiredState(compile(labSnapshot()).configs.get('n1')!);
  const q = desiredState(compile(labSnapshot((raw) => (raw.nodes[0].state = 'quarantined'))).configs.get('n1')!);
  const ops = plan(q, active);
  t.ok(ops.every((o) => ['peer-remove', 'route-remove', 'acl-remove'].includes(o.op)), 'only removals');
  t.equal(ops.filter((o) => o.op === 'peer-remove').length, active.peers.size);
  t.same(q.addresses, active.addresses, 'the interface keeps its addresses');
});

t.test('desiredState keys every ACL tuple by aclKey()', async (t) => {
  for (const n of ['n1', 'n2']) {
    const s = desiredState(compile(labSnapshot()).configs.get(n)!);
    t.ok(s.acl.size > 0, `${n} has ACL tuples`);
    for (const [k, v] of s.acl) t.equal(k, aclKey(v));
  }
});
