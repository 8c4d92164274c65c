/**
 * One suite, two implementations: every AclDriver (eBPF, nftables) must pass it. Real kernel, real
 * packets, between two namespaces joined by a veth pair; the driver runs inside namespace A
 * (through a lab agent) and is attached to A's end. TCP and UDP through node's net/dgram (the lab
 * agents), ICMP through iputils' ping. Packets go only between the test's own namespaces.
 */
import { dirname } from 'node:path';
import { readdirSync, rmSync } from 'node:fs';
import type { Test } from 'tap';
import { aclKey, type AclTuple } from '../../../fabric/dataplane-state.js';
import { plan } from '../../../fabric/plan.js';
import { emptyState } from '../../../fabric/dataplane-state.js';
import type { AclDriver, AclOp } from '../../../overlay/drivers.js';
import { BpfMap, IDENT_KEY_SIZE, IDENT_VAL_SIZE, identKey } from '../../../overlay/acl/bpf-maps.js';
import { run } from '../../../overlay/acl/exec.js';
import { check, libbpf } from '../../../overlay/acl/libbpf.js';
import { tableName, TUPLE_SETS } from '../../../overlay/acl/nft-ruleset.js';
import { locate } from '../../../overlay/acl/rule-set.js';
import { LabAgent } from '../../../lab/acl/lab-agent.js';
import { createLab, inNs, LAB_GUARDED, ping, type Lab } from '../../../lab/acl/netns-lab.js';

export interface SuiteOptions {
  readonly prefer: 'ebpf' | 'nftables';
  /** Distinct per test file: namespace names and addresses. */
  readonly tag: string;
  readonly n: number;
  readonly pinRoot: string;
  /** The device the ACL guards: a veth end, or a wireguard-go tunnel (link type none). */
  readonly link?: 'veth' | 'wireguard';
  /** What the implementation has put in the kernel for lab.a.ifname, as text, and what it must show. */
  readonly attached?: { show(lab: Lab): Promise<string>; expect: RegExp };
  /** What the implementation leaves in the kernel for `ifname`, as text; '' when nothing. */
  leftovers(lab: Lab): Promise<string>;
  /**
   * Takes the tuple out of the kernel behind the driver's back (bpf map entry deleted through the
   * raw map API, nftables sets flushed): the drift a driver's shadow must not hide for ever.
   */
  tamper(lab: Lab, t: AclTuple): Promise<void>;
}

/**
 * SuiteOptions.tamper of the eBPF driver: deletes the identity entry of the tuple's source through
 * the raw map API (the suite holds one tuple then: the address's identity is that tuple's only use).
 */
export function tamperEbpf(pinRoot: string): SuiteOptions['tamper'] {
  return async (lab, x) => {
    const [net] = readdirSync(pinRoot).filter((d) => d.startsWith('net-'));
    const bpf = libbpf();
    const fd = check(bpf.objGet(`${pinRoot}/${net}/${lab.a.ifname}/acl_ident`), 'bpf_obj_get', 'acl_ident');
    try {
      const map = new BpfMap(bpf, fd, 'acl_ident', IDENT_KEY_SIZE, IDENT_VAL_SIZE);
      const k = identKey(locate(x).src);
      if (!map.lookup(k)) throw new Error(`no identity entry for the source of ${aclKey(x)}`);
      map.delete(k);
    } finally {
      bpf.close(fd);
    }
  };
}

/** SuiteOptions.tamper of the nftables driver: flushes every tuple set (the suite holds one tuple then). */
export const tamperNft: SuiteOptions['tamper'] = async (lab) => {
  const table = tableName(lab.a.ifname);
  for (const set of TUPLE_SETS) for (const n of [4, 6]) await inNs(lab.a.ns, 'nft', ['flush', 'set', 'inet', table, `${set}${n}`]);
};

const NO = 400; // ms to wait for something that must not arrive

const adds = (ts: readonly AclTuple[]): AclOp[] => ts.map((e) => ({ op: 'acl-add', key: aclKey(e), entry: e }));
const removes = (ts: readonly AclTuple[]): AclOp[] => ts.map((e) => ({ op: 'acl-remove', key: aclKey(e), entry: e }));

/** What the nftables runs of the suite check: our table hooked in, tampering, nothing left after. */
export const NFT_CHECKS: Pick<SuiteOptions, 'attached' | 'tamper' | 'leftovers'> = {
  attached: {
    show: (lab) => inNs(lab.a.ns, 'nft', ['list', 'ruleset']),
    expect: /table inet sub0_\S+ \{[^]*hook prerouting[^]*hook postrouting/,
  },
  tamper: tamperNft,
  async leftovers(lab) {
    const out = await inNs(lab.a.ns, 'nft', ['list', 'tables']);
    return out.split('\n').filter((l) => l.includes('sub0_')).join('\n');
  },
};

export function aclSuite(t: Test, o: SuiteOptions): void {
  let lab: Lab;
  let a: LabAgent; // in A: holds the driver, and is A's TCP/UDP endpoint
  let b: LabAgent;
  let drv: AclDriver;

  const h4 = (s: string) => `${s}/32`;
  const h6 = (s: string) => `${s}/128`;
  const tup = (src: string, dst: string, proto: AclTuple['proto'], lo = 0, hi = 65535): AclTuple => ({
    src: src.includes(':') ? h6(src) : h4(src),
    dst: dst.includes(':') ? h6(dst) : h4(dst),
    proto,
    ports: [lo, hi],
  });
  /** Replaces the whole ACL with `ts` (observe, plan, apply: what the agent does). */
  const setAcl = async (ts: readonly AclTuple[]) => {
    const desired = { ...emptyState(), acl: new Map(ts.map((x) => [aclKey(x), x])) };
    const observed = { ...emptyState(), acl: await drv.observe() };
    await drv.apply(plan(desired, observed).filter((x): x is AclOp => x.op === 'acl-add' || x.op === 'acl-remove'));
  };

  t.before(async () => {
    rmSync(o.pinRoot, { recursive: true, force: true });
    lab = await createLab(o.tag, o.n, o.link);
    a = LabAgent.spawn(lab.a.ns);
    b = LabAgent.spawn(lab.b.ns);
    for (const x of [a, b]) {
      for (const port of [7000, 7001, 8080, 8082, 9000]) await x.listen(port);
      await x.listenUdp(5353);
    }
    drv = await a.driver({ prefer: o.prefer, pinDir: o.pinRoot });
    // The lab itself must pass traffic before any enforcement: else every drop below proves nothing.
    if (!(await ping(lab.a.ns, lab.b.v4))) throw new Error('the lab drops pings before any ACL is attached');
  });
  /** Every case starts attached (idempotent) and sets the tuples it needs: none relies on the one before. */
  const ready = () => drv.attach(lab.a.ifname, LAB_GUARDED);
  // Runs also when a test failed or threw: namespaces, pins and tables go whatever happened.
  t.teardown(async () => {
    await drv?.destroy().catch(() => {});
    await a?.close();
    await b?.close();
    await lab?.destroy();
    await run('umount', [o.pinRoot]);
    rmSync(dirname(o.pinRoot), { recursive: true, force: true }); // the per-run directory holding the mount
  });

  t.test('the driver in force is the one asked for', async (t) => {
    t.equal(drv.kind, o.prefer);
  });

  t.test('attached with no tuples: guarded traffic drops, unguarded passes', async (t) => {
    const { a: A, b: B } = lab;
    await ready();
    if (o.attached) t.match(await o.attached.show(lab), o.attached.expect, 'the expected enforcement is in place');
    await setAcl([]);
    t.notOk(await ping(A.ns, B.v4, 0.4), 'ping v4 A->B dropped');
    t.notOk(await ping(A.ns, B.v6, 0.4), 'ping v6 A->B dropped');
    t.notOk(await ping(B.ns, A.v4, 0.4), 'ping v4 B->A dropped');
    t.notOk(await a.connect(B.v4, 8080, NO), 'tcp A->B dropped');
    t.notOk(await b.connect(A.v6, 8080, NO), 'tcp v6 B->A dropped');
    t.ok(await ping(A.ns, B.v4Unguarded), 'unguarded ping v4 passes');
    t.ok(await ping(A.ns, B.v6Unguarded), 'unguarded ping v6 passes');
    t.ok(await a.connect(B.v4Unguarded, 8080), 'unguarded tcp passes');
    t.ok(await b.connect(A.v6Unguarded, 8080), 'unguarded tcp v6 inbound passes');
  });

  t.test('a tuple allows exactly its direction, protocol and ports, and its return traffic', async (t) => {
    const { a: A, b: B } = lab;
    await ready();
    await setAcl([
      tup(A.v4, B.v4, 'tcp', 8080, 8081),
      tup(B.v4, A.v4, 'tcp', 9000, 9000),
      tup(A.v4, B.v4, 'icmp'),
      tup(A.v4, B.v4, 'udp', 5353, 5353),
      tup(A.v6, B.v6, 'tcp', 8080, 8080),
      tup(B.v6, A.v6, 'icmp'),
    ]);
    t.ok(await a.connect(B.v4, 8080), 'tcp A->B:8080 allowed (handshake and echo come back)');
    t.notOk(await a.connect(B.v4, 8082, NO), 'tcp A->B:8082 outside the range');
    t.notOk(await b.connect(A.v4, 8080, NO), 'tcp B->A:8080 is the other direction');
    t.ok(await b.connect(A.v4, 9000), 'tcp B->A:9000 allowed inbound');
    t.notOk(await a.connect(B.v4, 9000, NO), 'tcp A->B:9000 not allowed');
    t.ok(await ping(A.ns, B.v4), 'ping v4 A->B allowed, reply returns');
    t.notOk(await ping(B.ns, A.v4, 0.4), 'ping v4 B->A not allowed');
    // An echo request keeps its flow only in the direction that opened it.
    t.ok(await ping(A.ns, B.v4, 1, 4242), 'ping v4 A->B with identifier 4242: allowed, opens a flow');
    t.notOk(await ping(B.ns, A.v4, 0.4, 4242), 'a request B->A with the same identifier does not ride that flow');
    t.ok(await a.udp(B.v4, 5353), 'udp A->B:5353 allowed, reply returns');
    t.notOk(await b.udp(A.v4, 5353, NO), 'udp B->A:5353 not allowed');
    t.ok(await a.connect(B.v6, 8080), 'tcp v6 A->B:8080 allowed');
    t.notOk(await b.connect(A.v6, 8080, NO), 'tcp v6 B->A:8080 not allowed');
    t.notOk(await a.connect(B.v6, 8082, NO), 'tcp v6 A->B:8082 not allowed');
    t.ok(await ping(B.ns, A.v6), 'ping v6 B->A allowed');
    t.notOk(await ping(A.ns, B.v6, 0.4), 'ping v6 A->B not allowed');
    t.notOk(await a.connect(B.v4, 7000, NO), 'tcp v4 A->B:7000 is in no tuple');
  });

  t.test("'any' allows every protocol and port between a pair, one way", async (t) => {
    const { a: A, b: B } = lab;
    await ready();
    await setAcl([tup(A.v4, B.v4, 'any'), tup(B.v6, A.v6, 'any')]);
    t.ok(await a.connect(B.v4, 7000), 'tcp A->B:7000');
    t.ok(await a.udp(B.v4, 5353), 'udp A->B');
    t.ok(await ping(A.ns, B.v4), 'ping A->B');
    t.notOk(await b.connect(A.v4, 7000, NO), 'tcp B->A');
    t.ok(await b.connect(A.v6, 9000), 'tcp v6 B->A:9000');
    t.notOk(await a.connect(B.v6, 9000, NO), 'tcp v6 A->B');
  });

  t.test('observe round-trips: plan against it is empty, applying twice changes nothing', async (t) => {
    const { a: A, b: B } = lab;
    await ready();
    const want = [
      tup(A.v4, B.v4, 'tcp', 80, 90),
      tup(A.v4, B.v4, 'tcp', 85, 95), // same (src, dst, proto): one kernel key, two ranges
      tup(A.v4, B.v4, 'tcp', 443, 443),
      tup(A.v4, B.v4, 'udp', 0, 65535),
      tup(A.v4, B.v4, 'icmp'),
      tup(B.v4, A.v4, 'any'),
      tup(A.v6, B.v6, 'tcp', 22, 22),
      tup(B.v6, A.v6, 'icmp'),
    ];
    await setAcl(want);
    const got = await drv.observe();
    t.same([...got.keys()].sort(), want.map(aclKey).sort(), 'the kernel holds exactly the tuples');
    for (const w of want) t.same(got.get(aclKey(w)), w, `tuple ${aclKey(w)} read back as written`);
    const desired = { ...emptyState(), acl: new Map(want.map((x) => [aclKey(x), x])) };
    t.same(plan(desired, { ...emptyState(), acl: got }), [], 'nothing left to do');
    await drv.apply(adds(want)); // the same plan applied again
    t.same(await drv.observe(), got, 'applying the same adds again is a no-op');
    await drv.apply(removes([tup(A.v4, B.v4, 'tcp', 85, 95)]));
    const after = await drv.observe();
    t.ok(after.has(aclKey(tup(A.v4, B.v4, 'tcp', 80, 90))), 'the overlapping range stays');
    t.notOk(after.has(aclKey(tup(A.v4, B.v4, 'tcp', 85, 95))), 'the removed one is gone');
    await drv.apply(removes([tup(A.v4, B.v4, 'tcp', 85, 95)]));
    t.pass('removing what is gone is not an error');
  });

  t.test('many tuples in one apply (one batch of map updates for eBPF) are all in the kernel', async (t) => {
    const { a: A } = lab;
    await ready();
    const many = Array.from({ length: 150 }, (_, i) => tup(A.v4, `192.0.2.${i}`, i % 2 ? 'udp' : 'tcp', 1000 + i, 1000 + i));
    await setAcl(many);
    t.same([...(await drv.observe({ fresh: true })).keys()].sort(), many.map(aclKey).sort(), 'a fresh read finds every tuple');
    await setAcl([]);
    t.same([...(await drv.observe({ fresh: true })).keys()], [], 'and all removed');
  });

  t.test('drift behind the shadow: a fresh observe sees an entry deleted by hand, and the next plan repairs it', async (t) => {
    const { a: A, b: B } = lab;
    await ready();
    const x = tup(A.v4, B.v4, 'tcp', 8080, 8080);
    await setAcl([x]);
    t.ok(await a.connect(B.v4, 8080), 'allowed');
    await o.tamper(lab, x);
    t.notOk(await a.connect(B.v4, 8080, NO), 'deleted behind the driver: the kernel no longer allows it');
    t.ok((await drv.observe()).has(aclKey(x)), 'a shadow observe still reports what the driver wrote');
    t.same([...(await drv.observe({ fresh: true })).keys()], [], 'a fresh observe reads the kernel: the entry is gone');
    t.same([...(await drv.observe()).keys()], [], 'and the shadow now holds what the kernel holds');
    await setAcl([x]); // the next pass: plan against the observation re-adds it
    t.ok(await a.connect(B.v4, 8080), 'repaired: allowed again');
    t.same([...(await drv.observe({ fresh: true })).keys()], [aclKey(x)], 'the kernel holds it again');
  });

  t.test('a tuple added takes effect; a revoked one cuts its open TCP flows', async (t) => {
    const { a: A, b: B } = lab;
    await ready();
    const out = tup(A.v4, B.v4, 'tcp', 7000, 7000);
    const wide = tup(A.v4, B.v4, 'tcp', 7000, 7010);
    const inb = tup(B.v6, A.v6, 'tcp', 7001, 7001);
    await setAcl([]);
    t.notOk(await a.connect(B.v4, 7000, NO), 'no tuple, no connection');
    await drv.apply(adds([out, inb]));
    t.ok(await a.connect(B.v4, 7000), 'added: the connection opens');
    const c1 = await a.open(B.v4, 7000);
    const c2 = await b.open(A.v6, 7001);
    t.ok(c1 !== null && (await a.echo(c1)), 'outbound flow open');
    t.ok(c2 !== null && (await b.echo(c2)), 'inbound v6 flow open');
    await drv.apply(removes([out, inb]));
    t.notOk(await a.echo(c1!, NO), 'revoked: the open outbound flow is cut');
    t.notOk(await b.echo(c2!, NO), 'revoked: the open inbound flow is cut');
    t.notOk(await a.connect(B.v4, 7000, NO), 'and no new connection opens');

    await drv.apply(adds([out, wide]));
    const c3 = await a.open(B.v4, 7000);
    t.ok(c3 !== null && (await a.echo(c3)), 'flow allowed by two overlapping tuples');
    await drv.apply(removes([out]));
    t.ok(await a.echo(c3!), 'revoking one of them keeps the flow the other still allows');
  });

  t.test('an agent restart finds the state and changes nothing', async (t) => {
    const { a: A, b: B } = lab;
    await ready();
    const want = [tup(A.v4, B.v4, 'tcp', 8080, 8080), tup(A.v6, B.v6, 'icmp')];
    await setAcl(want);
    const before = await drv.observe();
    await a.close(); // no destroy: what a crash or an upgrade leaves
    a = LabAgent.spawn(A.ns);
    await a.listen(7000);
    drv = await a.driver({ prefer: o.prefer, pinDir: o.pinRoot });
    await drv.attach(A.ifname, LAB_GUARDED);
    t.same(await drv.observe(), before, 'the new process reads the same tuples back');
    t.ok(await a.connect(B.v4, 8080), 'allowed traffic still passes');
    t.notOk(await a.connect(B.v4, 8082, NO), 'and the rest is still dropped');
    t.ok(await ping(A.ns, B.v6), 'v6 ping allowed');
  });

  t.test('re-attach after the interface is deleted and re-created', async (t) => {
    const { a: A, b: B } = lab;
    await ready();
    await setAcl([tup(A.v4, B.v4, 'tcp', 8080, 8080)]);
    await lab.recreateLink();
    await drv.attach(A.ifname, LAB_GUARDED); // what the reconcile loop does every round
    t.ok(await a.connect(B.v4, 8080), 'allowed traffic passes on the new interface');
    t.notOk(await a.connect(B.v4, 8082, NO), 'the rest is dropped on the new interface');
    t.notOk(await ping(B.ns, A.v4, 0.4), 'inbound ping dropped on the new interface');
    await drv.attach(A.ifname, LAB_GUARDED);
    t.ok(await a.connect(B.v4, 8080), 'attaching again changes nothing');
  });

  t.test('destroy removes everything the driver created', async (t) => {
    const { a: A, b: B } = lab;
    await ready();
    await drv.destroy();
    t.equal(await o.leftovers(lab), '', 'nothing left in the kernel');
    t.ok(await a.connect(B.v4, 8082), 'traffic is no longer filtered');
    t.ok(await ping(B.ns, A.v4), 'inbound ping passes again');
    drv = await a.driver({ prefer: o.prefer, pinDir: o.pinRoot }); // for any case that runs after
  });
}
