/** sameConfigContent answers exactly as comparing content hashes does, on configs that differ in every way a block can change them. */
import t from 'tap';
import { compile } from '../../fabric/compile.js';
import { COMPARED_MEMBERS, sameConfigContent } from '../../fabric/config-equal.js';
import { contentHash } from '../../fabric/encoding.js';
import { parseSnapshot } from '../../fabric/parse-snapshot.js';
import { syntheticSnapshot } from '../../fabric/examples/synthetic.js';

type Raw = Record<string, any>;
const base = (): Raw => syntheticSnapshot({ nodes: 30, slotsPerNode: 3, rulesPerSlot: 2, nodesPerDvci: 10, seed: 7 }) as Raw;
const variants: [string, (raw: Raw) => void][] = [
  ['the same network at a later block', (r) => (r.block = { ...r.block, number: r.block.number + 1 })],
  ['a node quarantined', (r) => (r.nodes[3].state = 'quarantined')],
  ['a node retired', (r) => (r.nodes[4].state = 'retired')],
  ['an endpoint moved', (r) => (r.nodes[5].endpoints = ['192.0.2.250:51820'])],
  ['a listen port changed', (r) => (r.nodes[6].listenPort = 51999)],
  ['a slot resized', (r) => (r.slots[2].vcpus = r.slots[2].vcpus + 1)],
  ['a slot re-imaged', (r) => (r.slots[2].image = 'other-image')],
  ['a slot moved', (r) => (r.slots[7].node = r.nodes[0].id)],
  ['a rule dropped', (r) => r.rules.splice(1, 1)],
  ['a rule port changed', (r) => {
    const rule = r.rules.find((x: Raw) => x.proto === 'tcp' || x.proto === 'udp');
    rule.ports = ['1-2'];
  }],
  ['a DVCI names controller keys', (r) => (r.dvcis[0].controllers = ['ab'.repeat(32)])],
  ['a new node', (r) => r.nodes.push({ ...r.nodes[0], id: 'zz-new', wgPublicKey: `${'Z'.repeat(42)}A=`, seq: 9999 })],
];

t.test('agrees with the content hash, node by node', async (t) => {
  const a = compile(parseSnapshot(base()).snapshot).configs;
  let same = 0;
  let differ = 0;
  for (const [name, mutate] of variants) {
    const raw = base();
    mutate(raw);
    const b = compile(parseSnapshot(raw).snapshot).configs;
    for (const [node, cb] of b) {
      const ca = a.get(node);
      if (!ca) continue;
      const byHash = contentHash(ca) === contentHash(cb);
      if (sameConfigContent(ca, cb) !== byHash) t.fail(`${name}: node ${node}: sameConfigContent says ${!byHash}, the hashes ${byHash}`);
      if (byHash) same++;
      else differ++;
    }
  }
  t.ok(same > 0 && differ > 0, `both answers checked (${same} same, ${differ} different)`);
});

t.test('compares every member a config has', async (t) => {
  const c = [...compile(parseSnapshot(base()).snapshot).configs.values()][0]!;
  t.same([...COMPARED_MEMBERS].sort(), Object.keys(c).sort(), 'a member added to NodeConfig must be compared too');
});
