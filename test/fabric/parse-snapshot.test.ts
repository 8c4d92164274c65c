import t from 'tap';
import { compile } from '../../fabric/compile.js';
import { isSub0Error } from '../../fabric/errors.js';
import { parseSnapshot } from '../../fabric/parse-snapshot.js';
import { labRaw } from '../helpers/fabric-fixtures.js';

// One malformed entry among good ones: it alone is refused, with an issue naming it.
const cases: { name: string; list: 'nodes' | 'slots' | 'rules' | 'dvcis'; index: number; patch: Record<string, unknown>; code: string; path: string }[] = [
  { name: 'bad WireGuard key', list: 'nodes', index: 1, patch: { wgPublicKey: 'not-a-key' }, code: 'bad-key', path: 'nodes[1].wgPublicKey' },
  { name: 'key of 31 bytes', list: 'nodes', index: 0, patch: { wgPublicKey: 'QHdyV3zo+356fIKWBX8dTFmg4j6BXqZR5nOFpLPhRw==' }, code: 'bad-key', path: 'nodes[0].wgPublicKey' },
  { name: 'endpoint port out of range', list: 'nodes', index: 2, patch: { endpoints: ['192.0.2.1:70000'] }, code: 'invalid-entry', path: 'nodes[2].endpoints[0]' },
  { name: 'endpoint octet out of range', list: 'nodes', index: 2, patch: { endpoints: ['192.0.2.300:51820'] }, code: 'invalid-entry', path: 'nodes[2].endpoints[0]' },
  { name: 'unknown node state', list: 'nodes', index: 0, patch: { state: 'online' }, code: 'invalid-entry', path: 'nodes[0].state' },
  { name: 'zero vCPUs', list: 'slots', index: 0, patch: { vcpus: 0 }, code: 'impossible-resources', path: 'slots[0].vcpus' },
  { name: 'memory below 64 MiB', list: 'slots', index: 1, patch: { memoryMiB: 16 }, code: 'impossible-resources', path: 'slots[1].memoryMiB' },
  { name: 'assigned without node', list: 'slots', index: 2, patch: { node: null }, code: 'invalid-entry', path: 'slots[2].node' },
  { name: 'id with capitals', list: 'slots', index: 0, patch: { id: 'Web-1' }, code: 'invalid-entry', path: 'slots[0].id' },
  { name: 'overlapping ports', list: 'rules', index: 0, patch: { ports: ['9944', '9000-9999'] }, code: 'overlapping-ports', path: 'rules[0].ports' },
  { name: 'reversed port range', list: 'rules', index: 1, patch: { ports: ['6000-5000'] }, code: 'invalid-entry', path: 'rules[1].ports[0]' },
  { name: 'tcp without ports', list: 'rules', index: 1, patch: { ports: [] }, code: 'invalid-entry', path: 'rules[1].ports' },
  { name: 'icmp with ports', list: 'rules', index: 2, patch: { ports: ['80'] }, code: 'invalid-entry', path: 'rules[2].ports' },
  { name: 'owner as a destination', list: 'rules', index: 0, patch: { to: `owner:${'5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty'}` }, code: 'invalid-entry', path: 'rules[0].to' },
  { name: 'garbage selector', list: 'rules', index: 0, patch: { from: 'everyone' }, code: 'invalid-entry', path: 'rules[0].from' },
  { name: 'bad operator account', list: 'dvcis', index: 0, patch: { operator: '0xabc' }, code: 'invalid-entry', path: 'dvcis[0].operator' },
];

for (const c of cases) {
  t.test(`malformed entry: ${c.name}`, async (t) => {
    const raw = labRaw();
    const entry = raw[c.list][c.index];
    Object.assign(entry, c.patch);
    const { snapshot, issues } = parseSnapshot(raw);
    t.ok(issues.length >= 1, 'reported');
    t.ok(issues.every((i) => i.path.startsWith(`${c.list}[${c.index}]`)), `every issue is about ${c.list}[${c.index}]: ${issues.map((i) => i.path)}`);
    const hit = issues.find((i) => i.code === c.code);
    t.ok(hit, `has a ${c.code} issue (got ${issues.map((i) => i.code)})`);
    t.match(hit?.path, c.path.startsWith(`${c.list}`) ? c.path : '', 'path names the field');
    t.equal(hit?.entryId, String(entry.id), 'names the entry id');
    t.equal(snapshot[c.list].length, raw[c.list].length - 1, 'only that entry is dropped');
    // The rest of the network still compiles into configs.
    const compiled = compile(snapshot);
    if (c.list === 'dvcis') t.ok(compiled.issues.some((i) => i.code === 'unknown-dvci'), 'its nodes are refused in turn, by name');
    else t.ok(compiled.configs.size >= 1, 'the rest still compiles');
  });
}

t.test('a snapshot whose frame is unreadable is refused whole, naming the source', async (t) => {
  const caught = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (e) {
      return e;
    }
    return undefined;
  };
  const e1 = caught(() => parseSnapshot({ network: { id: 'lab' } }, 'x.json'));
  t.ok(isSub0Error(e1, 'invalid-input'), 'invalid-input');
  t.match((e1 as Error).message, /^x\.json: .*block/s, 'names the file and the missing field');
  t.ok(isSub0Error(caught(() => parseSnapshot(null)), 'invalid-input'));
});

t.test('an entry that is not an object is reported by index, without an id', async (t) => {
  const raw = labRaw();
  raw.slots.splice(1, 0, 'slot-7');
  const { snapshot, issues } = parseSnapshot(raw);
  t.equal(issues.length, 1);
  t.equal(issues[0]!.path, 'slots[1]');
  t.equal(issues[0]!.entryId, undefined);
  t.equal(snapshot.slots.length, 3);
});

t.test('the shipped example parses clean', async (t) => {
  const { snapshot, issues } = parseSnapshot(labRaw());
  t.same(issues, []);
  t.equal(snapshot.nodes.length, 3);
  t.same(snapshot.rules[0]!.ports, [{ from: 9944, to: 9944 }, { from: 30333, to: 30334 }]);
  t.same(snapshot.rules[0]!.from, { kind: 'group', value: 'web' });
});
