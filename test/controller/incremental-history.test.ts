/**
 * The incremental path equals the full one on a randomized history, on the real runtime: a seeded
 * generator makes ~35 blocks of registry changes (nodes, slots, rules with slot, group and owner
 * selectors, several changes in one block, withdrawals by owners, and, written raw through
 * Uniques, duplicate rule ids, malformed attributes, changed ids, re-minted items); after every
 * block, what the controller holds must be byte for byte what compile(readSnapshot(that block))
 * gives, issues included. SUB0_SEED=<n> replays a history (the seed is in the test's name);
 * SUB0_HISTORY_BLOCKS=<n> makes it longer.
 */
import t from 'tap';
import { prng } from '../../fabric/examples/synthetic.js';
import { txFn } from '../../controller/chain/pallets.js';
import type { ItemRead, RegistryChange, Signer } from '../../controller/chain/registry.js';
import { submitCall, type Call } from '../../controller/chain/submit.js';
import type { BlockRef, ChainSnapshot } from '../../fabric/schema.js';
import { startTestChain } from './chain/chain-fixture.js';
import { compareWithFullRead, controllerDirs, startController } from './controller-fixture.js';

const BLOCKS = Number(process.env.SUB0_HISTORY_BLOCKS ?? 36);
const seed = Number(process.env.SUB0_SEED ?? Math.floor(Math.random() * 2 ** 31));


const c = await startTestChain(t);
const root = Number(c.chain.registry);
const COL = { dvci: root, node: root + 1, slot: root + 2, rule: root + 3 } as const;
const rnd = prng(seed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const chance = (p: number) => rnd() < p;
const accounts = { alice: c.account(c.keys.alice), bob: c.account(c.keys.bob), charlie: c.account(c.keys.charlie) };
const GROUPS = ['web', 'db', 'api'];
const wg = (n: number) => Buffer.alloc(32, n).toString('base64');
let counter = 0;
const fresh = (p: string) => `${p}${++counter}`;

interface State {
  readonly snap: ChainSnapshot;
  readonly items: readonly ItemRead[];
}

/** One step: registry changes by one signer, or raw Uniques calls by the operator. */
type Step = { readonly what: string; readonly changes: RegistryChange[]; readonly signer?: Signer } | { readonly what: string; readonly raw: Call[] };

const hex = (s: string | Uint8Array) => `0x${Buffer.from(s).toString('hex')}`;
const uniques = (name: string) => txFn(c.client.api, 'uniques', name);
const setAttr = (col: number, item: number, key: string, value: string | Uint8Array) => uniques('setAttribute')(col, item, hex(key), hex(value));
const mint = (col: number, item: number) => uniques('mint')(col, item, accounts.alice);

function selector(s: State, side: 'from' | 'to'): string {
  const r = rnd();
  if (r < 0.4 && s.snap.slots.length > 0) return `slot:${pick(s.snap.slots).id}`;
  if (side === 'from' && r > 0.85) return `owner:${pick([accounts.bob, accounts.charlie])}`;
  return `group:${pick(GROUPS)}`;
}

function ruleFields(s: State, id: string): Record<string, unknown> {
  const proto = pick(['tcp', 'udp', 'icmp', 'any'] as const);
  const port = 1 + Math.floor(rnd() * 9000);
  const ports = proto === 'tcp' || proto === 'udp' ? (chance(0.3) ? [String(port), `${port + 10}-${port + 20}`] : [String(port)]) : [];
  return { id, from: selector(s, 'from'), to: selector(s, 'to'), proto, ports };
}

/** The generators, weighted; each returns undefined when the state offers nothing to do it on. */
const GENERATORS: [number, (s: State) => Step | undefined][] = [
  [3, (s) => {
    const id = fresh('n');
    const state = pick(['active', 'active', 'active', 'pending', 'quarantined']);
    const fields = { id, dvci: pick(s.snap.dvcis).id, wgPublicKey: wg(counter), endpoints: [`192.0.2.${counter % 250}:51820`], state, ...(chance(0.5) ? { capacity: { vcpus: 4, memoryMiB: 4096, diskGiB: 50 } } : {}) };
    return { what: `create node ${id}`, changes: [{ op: 'create', kind: 'node', fields, ...(chance(0.3) ? { owner: accounts.bob } : {}) }] };
  }],
  [3, (s) => {
    if (s.snap.nodes.length === 0) return undefined;
    const n = pick(s.snap.nodes);
    const fields = chance(0.5) ? { state: pick(['active', 'quarantined', 'pending']) } : { endpoints: [`198.51.100.${counter++ % 250}:51820`], listenPort: 51820 + (counter % 3) };
    return { what: `update node ${n.id} ${JSON.stringify(fields)}`, changes: [{ op: 'update', kind: 'node', id: n.id, fields }] };
  }],
  [1, (s) => {
    const n = s.snap.nodes.find((x) => x.state !== 'retired' && chance(0.5));
    return n && { what: `retire node ${n.id}`, changes: [{ op: 'retire', kind: 'node', id: n.id }] };
  }],
  [1, (s) => {
    const n = s.snap.nodes.find((x) => x.owner === accounts.bob);
    return n && { what: `node ${n.id} withdrawn by its owner (burned)`, changes: [{ op: 'retire', kind: 'node', id: n.id }], signer: { pair: c.keys.bob } };
  }],
  [4, (s) => {
    const id = fresh('s');
    const host = chance(0.7) && s.snap.nodes.length > 0 ? pick(s.snap.nodes).id : null;
    const fields = { id, vcpus: 1 + Math.floor(rnd() * 3), memoryMiB: 512, diskGiB: 5, image: 'debian-12', groups: GROUPS.filter(() => chance(0.4)), state: host ? 'assigned' : 'defined', node: host };
    return { what: `create slot ${id} on ${host}`, changes: [{ op: 'create', kind: 'slot', owner: pick([accounts.bob, accounts.charlie]), fields }] };
  }],
  [3, (s) => {
    if (s.snap.slots.length === 0 || s.snap.nodes.length === 0) return undefined;
    const slot = pick(s.snap.slots);
    const node = pick(s.snap.nodes).id;
    return { what: `assign slot ${slot.id} to ${node}`, changes: [{ op: 'update', kind: 'slot', id: slot.id, fields: { node, state: 'assigned', groups: GROUPS.filter(() => chance(0.4)) } }] };
  }],
  [1, (s) => {
    if (s.snap.slots.length === 0) return undefined;
    const slot = pick(s.snap.slots);
    return chance(0.5) ? { what: `retire slot ${slot.id}`, changes: [{ op: 'retire', kind: 'slot', id: slot.id }] } : { what: `remove slot ${slot.id}`, changes: [{ op: 'remove', kind: 'slot', id: slot.id }] };
  }],
  [6, (s) => {
    const id = fresh('r');
    return { what: `create rule ${id}`, changes: [{ op: 'create', kind: 'rule', owner: pick([accounts.alice, accounts.bob, accounts.charlie]), fields: ruleFields(s, id) }] };
  }],
  [3, (s) => {
    if (s.snap.rules.length === 0) return undefined;
    const r = pick(s.snap.rules);
    const { id: _id, ...fields } = ruleFields(s, r.id);
    return { what: `update rule ${r.id}`, changes: [{ op: 'update', kind: 'rule', id: r.id, fields }] };
  }],
  [2, (s) => {
    if (s.snap.rules.length === 0) return undefined;
    const r = pick(s.snap.rules);
    return { what: `remove rule ${r.id}`, changes: [{ op: 'remove', kind: 'rule', id: r.id }] };
  }],
  // Several changes in one block.
  [3, (s) => {
    const steps = [0, 1, 2].map(() => pick(GENERATORS.slice(0, 10))[1](s)).filter((x): x is Extract<Step, { changes: unknown }> => !!x && 'changes' in x && !x.signer);
    const ids = new Set<string>();
    // One change per entry: a later one could be built on a state the earlier one changed.
    const changes = steps.flatMap((x) => x.changes).filter((ch) => {
      const key = `${ch.kind}/${ch.op === 'create' ? String(ch.fields.id) : ch.id}`;
      return !ids.has(key) && !!ids.add(key);
    });
    return changes.length > 1 ? { what: `batch: ${steps.map((x) => x.what).join('; ')}`, changes } : undefined;
  }],
  // Raw: a second rule with an id already taken (the first wins; the second is reported).
  [2, (s) => {
    if (s.snap.rules.length === 0) return undefined;
    const taken = pick(s.snap.rules).id;
    const item = nextItem(s, 'rule');
    return { what: `raw: duplicate rule id ${taken} (item ${item})`, raw: [mint(COL.rule, item), setAttr(COL.rule, item, 'id', taken), setAttr(COL.rule, item, 'from', 'group:web'), setAttr(COL.rule, item, 'to', 'group:db'), setAttr(COL.rule, item, 'proto', 'icmp')] };
  }],
  // Raw: a malformed attribute on a live item.
  [2, (s) => {
    const live = s.items.filter((it) => it.kind !== 'dvci' && it.entry);
    if (live.length === 0) return undefined;
    const it = pick(live);
    const bad = { node: ['key', `0x${'ab'.repeat(31)}`], slot: ['res', '2/x/100'], rule: ['proto', 'smtp'] } as const;
    const [key, value] = bad[it.kind as 'node' | 'slot' | 'rule'];
    return { what: `raw: malformed ${key} on ${it.kind} item ${it.item}`, raw: [setAttr(COL[it.kind], it.item, key, value.startsWith('0x') ? Buffer.from(value.slice(2), 'hex') : value)] };
  }],
  // Raw: a refused rule made valid again, or burned.
  [2, (s) => {
    const refused = s.items.filter((it) => it.kind === 'rule' && !it.entry);
    if (refused.length === 0) return undefined;
    const it = pick(refused);
    return chance(0.5)
      ? { what: `raw: rule item ${it.item} repaired`, raw: [setAttr(COL.rule, it.item, 'proto', 'icmp'), uniques('clearAttribute')(COL.rule, it.item, hex('ports'))] }
      : { what: `raw: rule item ${it.item} burned`, raw: [uniques('burn')(COL.rule, it.item, null)] };
  }],
  // Raw: a rule's id changed in place.
  [1, (s) => {
    const rules = s.items.filter((it) => it.kind === 'rule' && it.entry);
    if (rules.length === 0) return undefined;
    const it = pick(rules);
    const id = fresh('renamed');
    return { what: `raw: rule item ${it.item} renamed ${it.entry!.id} -> ${id}`, raw: [setAttr(COL.rule, it.item, 'id', id)] };
  }],
  // Raw: a rule minted at a free item number below the newest (burned, or skipped by a raw mint).
  [1, (s) => {
    const live = new Set(s.items.filter((it) => it.kind === 'rule').map((it) => it.item));
    const top = Math.max(-1, ...live);
    const gaps = Array.from({ length: top }, (_, i) => i).filter((i) => !live.has(i));
    if (gaps.length === 0) return undefined;
    const item = pick(gaps);
    const id = fresh('again');
    return { what: `raw: rule item ${item} minted below the newest as ${id}`, raw: [mint(COL.rule, item), setAttr(COL.rule, item, 'id', id), setAttr(COL.rule, item, 'from', `group:${pick(GROUPS)}`), setAttr(COL.rule, item, 'to', `group:${pick(GROUPS)}`), setAttr(COL.rule, item, 'proto', 'any')] };
  }],
  // A new DVCI: the root's counter changes, a 'network' touch (read in full).
  [0.5, () => {
    const id = fresh('d');
    return { what: `create dvci ${id}`, changes: [{ op: 'create', kind: 'dvci', fields: { id } }] };
  }],
];

function nextItem(s: State, kind: 'rule'): number {
  return 1 + Math.max(-1, ...s.items.filter((it) => it.kind === kind).map((it) => it.item), 200 + counter++);
}

function weighted(): (s: State) => Step | undefined {
  const total = GENERATORS.reduce((a, [w]) => a + w, 0);
  let r = rnd() * total;
  for (const [w, g] of GENERATORS) if ((r -= w) < 0) return g;
  return GENERATORS[0]![1];
}

async function run(step: Step): Promise<BlockRef> {
  if ('raw' in step) return (await submitCall(c.client, txFn(c.client.api, 'utility', 'batchAll')(step.raw), c.operator)).block;
  return (await c.registry.submit(step.changes, step.signer ?? c.operator)).block;
}

t.test(`randomized history of ${BLOCKS} blocks (seed ${seed}): after every block the incremental state equals a full read and compile`, async (t) => {
  const setup = await c.registry.submit(
    [
      { op: 'create', kind: 'dvci', fields: { id: 'lyon' } },
      { op: 'create', kind: 'dvci', fields: { id: 'paris' } },
      ...['a', 'b', 'c'].map((n, i): RegistryChange => ({ op: 'create', kind: 'node', fields: { id: `n-${n}`, dvci: i < 2 ? 'lyon' : 'paris', wgPublicKey: wg(200 + i), endpoints: [`192.0.2.${200 + i}:51820`], state: 'active', capacity: { vcpus: 8, memoryMiB: 8192, diskGiB: 100 } } })),
      ...[0, 1, 2, 3].map((i): RegistryChange => ({ op: 'create', kind: 'slot', owner: i % 2 ? accounts.bob : accounts.charlie, fields: { id: `s-${i}`, node: `n-${'abc'[i % 3]}`, state: 'assigned', vcpus: 1, memoryMiB: 512, diskGiB: 5, image: 'debian-12', groups: [GROUPS[i % 3]!] } })),
    ],
    c.operator,
  );
  const dirs = controllerDirs(c, 'history');
  const ctl = await startController(c, dirs, { fullReadMs: 8_000 });
  await ctl.ctl.reached(setup.block.number);
  t.equal(await compareWithFullRead(c, ctl.ctl), undefined, 'at start');

  const history: string[] = [];
  for (let b = 0; b < BLOCKS; b++) {
    const head = await c.client.finalizedHead();
    const s: State = await c.registry.readSnapshot(head.hash).then((r) => ({ snap: r.snapshot, items: r.items }));
    let block: BlockRef | undefined;
    for (let attempt = 0; attempt < 20 && !block; attempt++) {
      const step = weighted()(s);
      if (!step) continue;
      try {
        block = await run(step);
        history.push(`#${block.number} ${step.what}`);
      } catch (e) {
        // The registry refuses what it cannot build (e.g. an update of an entry made invalid raw): draw again.
        // A raw batch the runtime refuses (code `chain`) changes nothing either.
        if (!(e instanceof Error && 'code' in e && ['invalid-input', 'not-found', 'chain'].includes((e as { code: string }).code))) throw e;
      }
    }
    if (!block) throw new Error(`no change could be made at step ${b}`);
    await ctl.ctl.reached(block.number);
    const mismatch = await compareWithFullRead(c, ctl.ctl);
    if (mismatch) {
      t.fail(`block #${block.number}: the incremental state differs from a full read (seed ${seed})`, { mismatch, history: history.slice(-8), last: ctl.passes.at(-1) });
      break;
    }
  }
  t.pass(`${history.length} blocks, each compared:\n${history.join('\n')}`);
  const { byKind, failed, mismatches, verified } = ctl.ctl.stats;
  t.equal(failed, 0, 'no pass failed');
  t.equal(mismatches, 0, 'every periodic full read agreed with the incremental state');
  t.ok(byKind.rules > 0 && byKind.compile > 0, `both incremental paths ran (${JSON.stringify(byKind)}, ${verified} verified)`);
  t.ok(ctl.passes.every((p) => p.kind === 'full-read' || p.ms.read < 2_000), 'incremental reads are quick');
  await ctl.stop();
});
