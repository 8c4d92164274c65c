import t from 'tap';
import * as z from 'zod';
import { compile } from '../../fabric/compile.js';
import { NodeConfig, parseNodeConfig } from '../../fabric/node-config.js';
import { labSnapshot } from '../helpers/fabric-fixtures.js';

const config = JSON.parse(JSON.stringify(compile(labSnapshot()).configs.get('n2')!)) as Record<string, any>;
const entry = config.acl[0] as Record<string, unknown> & { src: string[]; dst: string[] };

/** Valid and invalid ACL entries: the fast path must agree with the schema on every one. */
const entries: [string, unknown][] = [
  ['valid', entry],
  ['valid, keys in another order', Object.fromEntries(Object.entries(entry).reverse())],
  ['valid, port range', { ...entry, ports: [0, 65535] }],
  ['an extra key', { ...entry, extra: 1 }],
  ['a key missing', (({ rule: _, ...rest }) => rest)(entry)],
  ['rule not an id', { ...entry, rule: 'Web To Rpc' }],
  ['rule a number', { ...entry, rule: 7 }],
  ['valid, many addresses', { ...entry, src: [...entry.src, '100.96.0.9/32', 'fd00:1:2:2::6460:9/128'] }],
  ['src a single string', { ...entry, src: entry.src[0] }],
  ['src empty', { ...entry, src: [] }],
  ['dst missing', (({ dst: _, ...rest }) => rest)(entry)],
  ['src not a host prefix', { ...entry, src: ['100.96.0.0/11'] }],
  ['dst a v4 /128', { ...entry, dst: [...entry.dst, '100.96.0.1/128'] }],
  ['src upper case', { ...entry, src: entry.src.map((c) => c.toUpperCase()) }],
  ['dst holds a number', { ...entry, dst: [entry.dst[0], 7] }],
  ['src an object', { ...entry, src: { 0: entry.src[0], length: 1 } }],
  ['proto unknown', { ...entry, proto: 'sctp' }],
  ['ports one number', { ...entry, ports: [80] }],
  ['ports three numbers', { ...entry, ports: [80, 81, 82] }],
  ['ports not integers', { ...entry, ports: [80.5, 81] }],
  ['ports negative', { ...entry, ports: [-1, 81] }],
  ['ports above 65535', { ...entry, ports: [80, 65536] }],
  ['ports strings', { ...entry, ports: ['80', '81'] }],
  ['ports an object', { ...entry, ports: { 0: 80, 1: 81, length: 2 } }],
  ['ports reversed', { ...entry, ports: [81, 80] }],
  ['icmp with ports', { ...entry, proto: 'icmp', ports: [80, 80] }],
  ['icmp over every port', { ...entry, proto: 'icmp', ports: [0, 65535] }],
  ['any with ports', { ...entry, proto: 'any', ports: [0, 1024] }],
  ['null', null],
  ['an array', [entry]],
  ['a string', 'allow all'],
];

for (const [name, e] of entries) {
  t.test(`parseNodeConfig agrees with the schema: ${name}`, async (t) => {
    const body = { ...config, acl: [entry, e, entry] };
    const fast = parseNodeConfig(body);
    const slow = NodeConfig.safeParse(body);
    t.equal(fast.success, slow.success, slow.success ? 'accepted by both' : 'refused by both');
    if (!fast.success && !slow.success) t.equal(z.prettifyError(fast.error), z.prettifyError(slow.error), 'the same explanation');
    if (fast.success && slow.success) t.same(fast.data, slow.data, 'the same data');
  });
}

const peer = config.peers[0] as Record<string, unknown> & { allowedIps: string[]; endpoints: string[] };
/** Valid and invalid peers: the fast path must agree with the schema on every one. */
const peers: [string, unknown][] = [
  ['valid', peer],
  ['valid, keys in another order', Object.fromEntries(Object.entries(peer).reverse())],
  ['valid, no endpoint', { ...peer, endpoints: [] }],
  ['valid, no allowed IP', { ...peer, allowedIps: [] }],
  ['valid, a DNS endpoint', { ...peer, endpoints: ['node.example.org:51820'] }],
  ['valid, an IPv6 endpoint', { ...peer, endpoints: ['[2001:db8::1]:51820'] }],
  ['an extra key', { ...peer, extra: 1 }],
  ['a key missing', (({ keepalive: _, ...rest }) => rest)(peer)],
  ['node not an id', { ...peer, node: 'N 1' }],
  ['a key not base64 of 32 bytes', { ...peer, publicKey: 'abc=' }],
  ['a key whose last character carries bits', { ...peer, publicKey: `${'A'.repeat(42)}B=` }],
  ['an endpoint without port', { ...peer, endpoints: ['192.0.2.1'] }],
  ['an endpoint port 0', { ...peer, endpoints: ['192.0.2.1:0'] }],
  ['an endpoint octet above 255', { ...peer, endpoints: ['192.0.2.300:51820'] }],
  ['an endpoint not a string', { ...peer, endpoints: [51820] }],
  ['allowed IPs not host prefixes', { ...peer, allowedIps: ['100.96.0.0/11'] }],
  ['an allowed IP with an octet above 255', { ...peer, allowedIps: ['999.1.1.1/32'] }],
  ['an allowed IP with a leading zero', { ...peer, allowedIps: ['100.096.1.2/32'] }],
  ['an allowed IPv6 that is no address', { ...peer, allowedIps: [':/128'] }],
  ['an allowed IPv6 with two ::', { ...peer, allowedIps: ['fd12::1::2/128'] }],
  ['an allowed IPv6 in upper case', { ...peer, allowedIps: ['FD12::1/128'] }],
  ['an IPv6 endpoint that is no address', { ...peer, endpoints: ['[1::2::3]:51820'] }],
  ['allowed IPs a string', { ...peer, allowedIps: peer.allowedIps[0] }],
  ['keepalive negative', { ...peer, keepalive: -1 }],
  ['keepalive not an integer', { ...peer, keepalive: 2.5 }],
  ['keepalive above 65535', { ...peer, keepalive: 70000 }],
  ['null', null],
  ['an array', [peer]],
];

for (const [name, p] of peers) {
  t.test(`parseNodeConfig agrees with the schema on peers: ${name}`, async (t) => {
    const body = { ...config, peers: [peer, p] };
    const fast = parseNodeConfig(body);
    const slow = NodeConfig.safeParse(body);
    t.equal(fast.success, slow.success, slow.success ? 'accepted by both' : 'refused by both');
    if (!fast.success && !slow.success) t.equal(z.prettifyError(fast.error), z.prettifyError(slow.error), 'the same explanation');
    if (fast.success && slow.success) t.same(fast.data, slow.data, 'the same data');
  });
}

t.test('a host prefix is refused with its path and why', async (t) => {
  const r = parseNodeConfig({ ...config, peers: [{ ...peer, allowedIps: ['999.1.1.1/32'] }] });
  t.notOk(r.success);
  if (!r.success) t.match(z.prettifyError(r.error), /valid address[\s\S]*at peers\[0\]\.allowedIps\[0\]/);
});

t.test('parseNodeConfig refuses what the frame refuses', async (t) => {
  t.notOk(parseNodeConfig({ ...config, extra: true }).success, 'an unknown top-level key');
  t.notOk(parseNodeConfig({ ...config, acl: {} }).success, 'acl not an array');
  const { peers: _, ...noPeers } = config;
  t.notOk(parseNodeConfig(noPeers).success, 'peers missing');
  t.ok(parseNodeConfig(config).success, 'the compiled config itself');
});

t.test('ports bind TCP and UDP only, low to high: anything else is refused at the boundary', async (t) => {
  for (const [what, e] of [['reversed', { ...entry, ports: [81, 80] }], ['icmp with ports', { ...entry, proto: 'icmp', ports: [80, 80] }], ['any with ports', { ...entry, proto: 'any', ports: [0, 1024] }]] as const) {
    const r = parseNodeConfig({ ...config, acl: [entry, e] });
    t.notOk(r.success, what);
    if (!r.success) t.match(z.prettifyError(r.error), /lo <= hi, and \[0, 65535\] for icmp and any[\s\S]*at acl\[1\]\.ports/, `${what}: the entry and why`);
  }
  t.ok(parseNodeConfig({ ...config, acl: [{ ...entry, proto: 'icmp', ports: [0, 65535] }] }).success, 'icmp over every port');
});
