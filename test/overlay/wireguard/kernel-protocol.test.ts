/**
 * The genetlink encoding, checked without a kernel: structure (header, NLA_F_NESTED, elements
 * numbered 0 as the kernel numbers them), splitting of large sets, and a round trip through the
 * dump parser (a GET_DEVICE reply has the SET_DEVICE layout).
 */
import t from 'tap';
import { parseAttrs } from '../../../overlay/netlink/attrs.js';
import {
  WG_CMD_GET_DEVICE,
  WG_CMD_SET_DEVICE,
  encodeGetDevice,
  encodeSetDevice,
  parseDeviceDump,
  parseSockaddr,
  sockaddr,
} from '../../../overlay/wireguard/kernel-protocol.js';
import { generatePrivateKey, keyToBase64, publicKeyOf } from '../../../overlay/wireguard/keys.js';

const key = () => keyToBase64(publicKeyOf(generatePrivateKey()));
const cat = (parts: Buffer[]) => Buffer.concat(parts);

t.test('commands are numbered from 0, as in linux/wireguard.h', async (t) => {
  t.equal(WG_CMD_GET_DEVICE, 0);
  t.equal(WG_CMD_SET_DEVICE, 1);
  const get = cat(encodeGetDevice('s0-n1'));
  t.same([...get.subarray(0, 4)], [0, 1, 0, 0], 'genl header: cmd 0, version 1');
  const [name] = parseAttrs(get.subarray(4));
  t.equal(name!.type, 2, 'WGDEVICE_A_IFNAME');
  t.equal(name!.data.toString(), 's0-n1\0');
});

t.test('a set round-trips through the dump parser, nested flags and 0-numbered elements', async (t) => {
  const priv = keyToBase64(generatePrivateKey());
  const p1 = { publicKey: key(), endpoints: ['192.0.2.1:51820'], allowedIps: ['100.65.0.1/32', 'fd00::1/128'], keepalive: 25 };
  const p2 = { publicKey: key(), endpoints: ['[fd00::9]:51821'], allowedIps: ['100.96.0.7/32'], keepalive: 0 };
  const msgs = encodeSetDevice('s0-n1', { privateKey: priv, listenPort: 51820 }, [
    { op: 'peer-add', peer: p1 },
    { op: 'peer-add', peer: p2 },
  ]);
  t.equal(msgs.length, 1);
  const body = cat(msgs[0]!);
  t.equal(body[0], WG_CMD_SET_DEVICE);
  const attrs = body.subarray(4);
  // Find WGDEVICE_A_PEERS with its raw type to check NLA_F_NESTED.
  let off = 0;
  let nestedFlag = 0;
  while (off < attrs.length) {
    const len = attrs.readUInt16LE(off);
    const type = attrs.readUInt16LE(off + 2);
    if ((type & 0x3fff) === 8) nestedFlag = type & 0x8000;
    off += (len + 3) & ~3;
  }
  t.equal(nestedFlag, 0x8000, 'WGDEVICE_A_PEERS carries NLA_F_NESTED');
  const peers = parseAttrs(parseAttrs(attrs).find((a) => a.type === 8)!.data);
  t.same(peers.map((p) => p.type), [0, 0], 'peer elements are numbered 0');

  const dev = parseDeviceDump([body]);
  t.equal(dev.privateKey, priv);
  t.equal(dev.listenPort, 51820);
  t.same(dev.peers.map((p) => [p.publicKey, p.endpoint, p.allowedIps, p.keepalive]), [
    [p1.publicKey, '192.0.2.1:51820', ['100.65.0.1/32', 'fd00::1/128'], 25],
    [p2.publicKey, '[fd00::9]:51821', ['100.96.0.7/32'], 0],
  ]);
});

t.test('1,000 peers split into several messages; a huge peer is split and merged back', async (t) => {
  const ops = Array.from({ length: 1000 }, (_, i) => ({
    op: 'peer-add' as const,
    peer: { publicKey: key(), endpoints: [`10.1.${i >> 8}.${i & 255}:51820`], allowedIps: [`100.65.${i >> 8}.${i & 255}/32`], keepalive: 25 },
  }));
  const msgs = encodeSetDevice('s0-n1', {}, ops);
  t.ok(msgs.length > 1, `${msgs.length} messages`);
  for (const m of msgs) t.ok(cat(m).length <= 17 * 1024, 'each message within budget');
  const dev = parseDeviceDump(msgs.map(cat));
  t.equal(dev.peers.length, 1000);

  const ips = Array.from({ length: 600 }, (_, i) => `100.96.${i >> 8}.${i & 255}/32`);
  const big = encodeSetDevice('s0-n1', {}, [{ op: 'peer-add', peer: { publicKey: key(), endpoints: [], allowedIps: ips, keepalive: 0 } }]);
  const merged = parseDeviceDump(big.map(cat));
  t.equal(merged.peers.length, 1, 'fragments of one peer merge');
  t.equal(merged.peers[0]!.allowedIps.length, 600);
});

t.test('remove and partial updates', async (t) => {
  const pk = key();
  const [m] = encodeSetDevice('x', {}, [
    { op: 'peer-remove', publicKey: pk },
    { op: 'peer-update', peer: { publicKey: pk, endpoints: ['192.0.2.1:1'], allowedIps: ['100.65.0.1/32'], keepalive: 5 }, changes: ['keepalive'] },
  ]);
  const peers = parseAttrs(parseAttrs(cat(m!).subarray(4)).find((a) => a.type === 8)!.data).map((p) => new Map(parseAttrs(p.data).map((a) => [a.type, a.data])));
  t.equal(peers[0]!.get(3)!.readUInt32LE(0), 1, 'WGPEER_F_REMOVE_ME');
  t.notOk(peers[1]!.has(4), 'no endpoint when it did not change');
  t.notOk(peers[1]!.has(9), 'allowed IPs untouched');
  t.equal(peers[1]!.get(5)!.readUInt16LE(0), 5, 'keepalive');
});

t.test('sockaddr', async (t) => {
  t.equal(parseSockaddr(sockaddr('192.0.2.1:51820')), '192.0.2.1:51820');
  t.equal(parseSockaddr(sockaddr('[fd00::1]:1')), '[fd00::1]:1');
  t.equal(sockaddr('192.0.2.1:51820').readUInt16BE(2), 51820, 'port in network order');
});
