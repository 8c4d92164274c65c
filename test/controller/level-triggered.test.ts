/**
 * The controller is level-triggered on the real runtime: a controller started after 20 changing
 * blocks compiles once, at the head; blocks that arrive while a pass runs become one pass at the
 * newest head; a stalled chain read fails its pass, and the next one (a full read) recovers; the
 * periodic full read catches an incremental state that went wrong.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { LogosRegistry, RegistryChange } from '../../controller/chain/registry.js';
import { DirectorySink } from '../../controller/publish/directory-sink.js';
import { compile } from '../../fabric/compile.js';
import { contentHash } from '../../fabric/encoding.js';
import type { NodeId } from '../../fabric/schema.js';
import { verifyConfig } from '../../fabric/signing.js';
import { loadOrCreateSigningKey } from '../../overlay/signing-key-file.js';
import { startTestChain } from './chain/chain-fixture.js';
import { compareWithFullRead, controllerDirs, startController } from './controller-fixture.js';

const c = await startTestChain(t);
const wg = (n: number) => Buffer.alloc(32, n).toString('base64');
const bob = c.account(c.keys.bob);
const submit = async (changes: RegistryChange[]) => (await c.registry.submit(changes, c.operator)).block;

await submit([
  { op: 'create', kind: 'dvci', fields: { id: 'lyon' } },
  ...[1, 2, 3].map((n): RegistryChange => ({ op: 'create', kind: 'node', fields: { id: `n${n}`, dvci: 'lyon', wgPublicKey: wg(n), endpoints: [`192.0.2.${n}:51820`], state: 'active' } })),
  ...[1, 2, 3].map((n): RegistryChange => ({ op: 'create', kind: 'slot', owner: bob, fields: { id: `s${n}`, node: `n${n}`, state: 'assigned', vcpus: 1, memoryMiB: 512, diskGiB: 5, image: 'debian-12', groups: ['web'] } })),
]);

/** The signed configs in a directory, as content hashes by node. */
function published(out: string): Map<NodeId, string> {
  const { key } = loadOrCreateSigningKey(join(out, '..', 'signing.key'));
  return new Map(readdirSync(out).filter((f) => f.endsWith('.signed')).map((f) => [f.slice(0, -7), contentHash(verifyConfig(readFileSync(join(out, f)), [key.publicKey]).config)]));
}

t.test('started after 20 changing blocks, a controller compiles once, at the head', async (t) => {
  const dirs = controllerDirs(c, 'downtime');
  const first = await startController(c, dirs);
  await first.ctl.reached((await c.client.finalizedHead()).number);
  t.equal(first.passes.length, 1);
  await first.stop();

  let last = 0;
  for (let i = 0; i < 20; i++) {
    const change: RegistryChange =
      i % 2 === 0
        ? { op: 'update', kind: 'node', id: `n${1 + (i % 3)}`, fields: { endpoints: [`198.51.100.${i}:51820`] } }
        : { op: 'create', kind: 'rule', owner: bob, fields: { id: `r${i}`, from: 'group:web', to: `slot:s${1 + (i % 3)}`, proto: 'tcp', ports: [String(1000 + i)] } };
    last = (await submit([change])).number;
  }

  const second = await startController(c, dirs);
  await second.ctl.reached(last);
  t.ok(second.ctl.cursor!.number >= last, 'the follower walked every block');
  t.equal(second.ctl.stats.passes, 1, 'one pass, not 20');
  t.same(second.ctl.stats.byKind, { 'full-read': 1, rules: 0, nodes: 0, compile: 0 });
  t.ok(second.passes[0]!.block.number >= last, 'at the head');
  t.equal(await compareWithFullRead(c, second.ctl), undefined, 'it holds what a full read gives');
  const want = compile((await c.registry.readSnapshot(second.passes[0]!.block.hash)).snapshot).configs;
  t.same(published(dirs.out), new Map([...want].map(([n, cfg]) => [n, contentHash(cfg)])), 'and published the final state');
  t.equal(second.passes[0]!.published, 3, 'every node changed while it was down');
  await second.stop();
});

/** A real directory sink whose writes wait while the gate is closed. */
class GatedSink extends DirectorySink {
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  waiting = false;

  close(): void {
    this.gate = new Promise((r) => (this.openGate = r));
  }

  open(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  override async publish(node: NodeId, wire: Uint8Array): Promise<void> {
    if (this.gate) {
      this.waiting = true;
      await this.gate;
      this.waiting = false;
    }
    return super.publish(node, wire);
  }
}

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 600 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

t.test('blocks that arrive while a pass runs become one pass at the newest head', async (t) => {
  const dirs = controllerDirs(c, 'collapse');
  const sink = new GatedSink(dirs.out);
  const ctl = await startController(c, dirs, { sink });
  await ctl.ctl.reached((await c.client.finalizedHead()).number);
  const before = ctl.passes.length;

  sink.close();
  const b1 = await submit([{ op: 'update', kind: 'node', id: 'n1', fields: { endpoints: ['203.0.113.1:51820'] } }]);
  await until(() => sink.waiting, 'the pass to block in the sink');
  const later = [];
  later.push(await submit([{ op: 'create', kind: 'rule', owner: bob, fields: { id: 'c1', from: 'slot:s1', to: 'slot:s2', proto: 'udp', ports: ['53'] } }]));
  later.push(await submit([{ op: 'update', kind: 'node', id: 'n2', fields: { endpoints: ['203.0.113.2:51820'] } }]));
  later.push(await submit([{ op: 'create', kind: 'rule', owner: bob, fields: { id: 'c2', from: 'slot:s3', to: 'slot:s2', proto: 'udp', ports: ['54'] } }]));
  const newest = later.at(-1)!;
  await until(() => ctl.ctl.cursor!.number >= newest.number, 'the follower to walk the new blocks');
  t.equal(ctl.passes.length, before, 'the pass is still running');
  sink.open();
  await ctl.ctl.reached(newest.number);

  const passes = ctl.passes.slice(before);
  t.same(passes.map((p) => p.block.number), [b1.number, newest.number], 'the running pass, then one pass at the newest head');
  // n2, the rules c1 and c2, and the rule collection's `next` counter, bumped by each creation.
  t.equal(passes[1]!.touches, 5, 'with the touches of the three blocks');
  t.equal(passes[1]!.kind, 'compile', 'a node changed: compiled in memory, not read in full');
  t.equal(await compareWithFullRead(c, ctl.ctl), undefined);
  await ctl.stop();
});

t.test('a stalled chain read fails its pass; the retry reads in full and recovers', async (t) => {
  const dirs = controllerDirs(c, 'stall');
  let stall = false;
  const wrap = (r: LogosRegistry): LogosRegistry => ({
    locator: r.locator,
    readSnapshot: (h) => r.readSnapshot(h),
    touchedBy: (b) => r.touchedBy(b),
    submit: (ch, s) => r.submit(ch, s),
    // A node that never answers: the RPC is sent, its reply never comes.
    readItems: (h, items) => (stall ? new Promise(() => undefined) : r.readItems(h, items)),
  });
  const ctl = await startController(c, dirs, { wrap, readTimeoutMs: 300 });
  await ctl.ctl.reached((await c.client.finalizedHead()).number);
  stall = true;
  const b = await submit([{ op: 'update', kind: 'node', id: 'n3', fields: { endpoints: ['203.0.113.3:51820'] } }]);
  await until(() => ctl.ctl.stats.failed >= 1, 'the pass to fail');
  stall = false;
  await ctl.ctl.reached(b.number);
  t.equal(ctl.ctl.stats.failed, 1);
  t.equal(ctl.passes.at(-1)!.kind, 'full-read', 'the retry read in full');
  t.equal(await compareWithFullRead(c, ctl.ctl), undefined);
  t.ok(published(dirs.out).size === 3);
  await ctl.stop();
});

t.test('the periodic full read catches an incremental state gone wrong, and adopts the full read', async (t) => {
  const dirs = controllerDirs(c, 'verify');
  let lie = false;
  // A registry that loses the items of one read: the held state misses that change.
  const wrap = (r: LogosRegistry): LogosRegistry => ({
    locator: r.locator,
    readSnapshot: (h) => r.readSnapshot(h),
    touchedBy: (b) => r.touchedBy(b),
    submit: (ch, s) => r.submit(ch, s),
    readItems: async (h, items) => ({ ...(await r.readItems(h, items)), items: lie ? [] : (await r.readItems(h, items)).items }),
  });
  const ctl = await startController(c, dirs, { wrap, fullReadMs: 1_500 });
  await ctl.ctl.reached((await c.client.finalizedHead()).number);
  lie = true;
  const b = await submit([{ op: 'update', kind: 'node', id: 'n2', fields: { endpoints: ['203.0.113.22:51820'] } }]);
  await ctl.ctl.reached(b.number);
  lie = false;
  await until(() => ctl.ctl.stats.mismatches >= 1, 'the periodic full read');
  const check = ctl.passes.find((p) => p.verified && p.verified.length > 0)!;
  t.equal(check.kind, 'full-read');
  t.same(check.verified, ['n1', 'n3'], 'the nodes that peer with n2 differed');
  t.equal(await compareWithFullRead(c, ctl.ctl), undefined, 'the full read was adopted');
  await ctl.stop();
});
