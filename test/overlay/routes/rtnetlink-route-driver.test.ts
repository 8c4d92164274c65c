/**
 * The rtnetlink RouteDriver in a namespace of the test's own, on a veth (the driver only needs a
 * link; which kind does not matter, and this kernel has no dummy module). Cross-checked with `ip`.
 */
import { execFileSync } from 'node:child_process';
import t from 'tap';
import type { RouteOp } from '../../../overlay/drivers.js';
import { RTPROT_SUB0, RtnetlinkRouteDriver } from '../../../overlay/routes/rtnetlink-route-driver.js';
import { useOwnNetns } from '../../helpers/netns-lab.js';

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const IF = 's0rt0';

await useOwnNetns(t, 'rt');
ip('link', 'add', IF, 'type', 'veth', 'peer', 'name', `${IF}p`);
ip('link', 'set', `${IF}p`, 'up');
ip('link', 'set', IF, 'up');
const drv = new RtnetlinkRouteDriver();
t.teardown(() => drv.close());

t.test('addresses and routes are added, read back canonical, and visible to ip', async (t) => {
  await drv.apply(IF, [
    { op: 'address-add', cidr: '100.65.1.1/32' },
    { op: 'address-add', cidr: 'fd12:3456:789a:1::6441:101/128' },
    { op: 'route-add', dst: '100.96.0.5/32' },
    { op: 'route-add', dst: 'FD12:3456:789A:2:0:0:6460:5/128' },
  ]);
  const seen = await drv.observe(IF);
  t.same([...seen.addresses].sort(), ['100.65.1.1/32', 'fd12:3456:789a:1::6441:101/128']);
  t.same([...seen.routes].sort(), ['100.96.0.5/32', 'fd12:3456:789a:2::6460:5/128']);
  t.match(ip('route', 'show', 'proto', String(RTPROT_SUB0)), /100\.96\.0\.5 dev s0rt0 .*scope link/);
  t.match(ip('-6', 'route', 'show', 'proto', String(RTPROT_SUB0)), /fd12:3456:789a:2::6460:5 dev s0rt0/);
  t.match(ip('-6', 'addr', 'show', IF), /fd12:3456:789a:1::6441:101\/128 scope global nodad noprefixroute\s*\n/, 'no DAD wait, no prefix route');
});

t.test('routes the agent did not create are neither reported nor touched, even on our prefixes', async (t) => {
  ip('route', 'add', '100.96.0.9/32', 'dev', IF, 'proto', 'static');
  ip('route', 'add', '100.96.0.5/32', 'dev', IF, 'proto', 'static', 'metric', '50'); // same prefix as ours
  ip('route', 'add', '192.0.2.0/24', 'dev', IF);
  const seen = await drv.observe(IF);
  t.same([...seen.routes].sort(), ['100.96.0.5/32', 'fd12:3456:789a:2::6460:5/128'], 'only ours');
  await drv.apply(IF, [{ op: 'route-remove', dst: '100.96.0.5/32' }, { op: 'route-remove', dst: '100.96.0.9/32' }]);
  const left = ip('route', 'show', 'dev', IF);
  t.match(left, /100\.96\.0\.5 proto static .*metric 50/, 'the foreign route to our prefix survives');
  t.match(left, /100\.96\.0\.9 proto static/, 'removing a route we do not own is a no-op');
  t.notMatch(left, /100\.96\.0\.5 proto 83/, 'ours is gone');
});

t.test('a foreign route in the way of ours is reported as such', async (t) => {
  ip('route', 'add', '100.96.0.10/32', 'dev', IF, 'proto', 'static');
  await t.rejects(drv.apply(IF, [{ op: 'route-add', dst: '100.96.0.10/32' }]), /did not create is in the way/);
  t.match(ip('route', 'show', '100.96.0.10'), /proto static/, 'and left alone');
});

t.test('removing what is gone is no error; adding twice is no error for addresses', async (t) => {
  const ops: RouteOp[] = [
    { op: 'route-remove', dst: '100.96.7.7/32' },
    { op: 'address-remove', cidr: '100.65.7.7/32' },
    { op: 'address-add', cidr: '100.65.1.1/32' },
  ];
  await drv.apply(IF, ops);
  t.pass('no error');
});

t.test('2,000 routes go out as one batch, fast, and come back exactly', async (t) => {
  const dsts = Array.from({ length: 1000 }, (_, i) => [`100.97.${i >> 8}.${i & 255}/32`, `fd00:97::${i.toString(16)}/128`]).flat();
  const t0 = performance.now();
  await drv.apply(IF, dsts.map((dst) => ({ op: 'route-add' as const, dst })));
  const addMs = performance.now() - t0;
  const t1 = performance.now();
  const seen = await drv.observe(IF);
  const obsMs = performance.now() - t1;
  t.ok(addMs < 1000, `added 2,000 routes in ${addMs.toFixed(0)} ms`);
  t.ok(obsMs < 1000, `observed in ${obsMs.toFixed(0)} ms`);
  t.equal(dsts.filter((d) => seen.routes.has(d.replace('::0/', '::/'))).length, 2000);
  await drv.apply(IF, [...seen.routes].filter((r) => r.startsWith('100.97.') || r.startsWith('fd00:97:')).map((dst) => ({ op: 'route-remove' as const, dst })));
  t.equal([...(await drv.observe(IF)).routes].filter((r) => r.startsWith('100.97.')).length, 0, 'and removed as one batch');
});

t.test('a missing interface: observe is empty, apply says which interface', async (t) => {
  const seen = await drv.observe('s0nothere');
  t.equal(seen.routes.size + seen.addresses.size, 0);
  await t.rejects(drv.apply('s0nothere', [{ op: 'route-add', dst: '100.96.0.1/32' }]), /s0nothere: the interface does not exist/);
});
