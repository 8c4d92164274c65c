/**
 * One suite, every WireguardBackend (uapi: wireguard-go; kernel: genetlink). Runs in a namespace
 * of the test's own, against a real device, and cross-checks what the backend reports with what
 * `wg show … dump` (wireguard-tools) reads from the same device.
 */
import { execFileSync } from 'node:child_process';
import type { Test } from 'tap';
import { emptyState, type PeerState } from '../../../fabric/dataplane-state.js';
import { plan } from '../../../fabric/plan.js';
import type { PeerOp, WireguardBackend } from '../../../overlay/drivers.js';
import { canonicalCidr } from '../../../fabric/ip.js';
import { generatePrivateKey, keyToBase64, publicKeyOf } from '../../../overlay/wireguard/keys.js';

export interface BackendSuiteOptions {
  readonly ifname: string;
  readonly open: () => Promise<WireguardBackend>;
}

interface DumpPeer {
  endpoint: string;
  allowedIps: string[];
  keepalive: number;
}

/** `wg show IF dump`, parsed. */
export function wgDump(ifname: string): { publicKey: string; listenPort: number; peers: Map<string, DumpPeer> } {
  const lines = execFileSync('wg', ['show', ifname, 'dump'], { encoding: 'utf8' }).trim().split('\n');
  const [, publicKey, port] = lines[0]!.split('\t');
  const peers = new Map<string, DumpPeer>();
  for (const l of lines.slice(1)) {
    const f = l.split('\t');
    peers.set(f[0]!, { endpoint: f[2]!, allowedIps: f[3] === '(none)' ? [] : f[3]!.split(','), keepalive: f[7] === 'off' ? 0 : Number(f[7]) });
  }
  return { publicKey: publicKey!, listenPort: Number(port), peers };
}

const newKey = () => keyToBase64(publicKeyOf(generatePrivateKey()));

export function backendSuite(t: Test, o: BackendSuiteOptions): void {
  const { ifname } = o;
  let wg: WireguardBackend;
  const priv = keyToBase64(generatePrivateKey());
  const pub = keyToBase64(publicKeyOf(Buffer.from(priv, 'base64')));

  t.before(async () => {
    wg = await o.open();
  });
  t.teardown(async () => {
    await wg?.deleteInterface(ifname).catch(() => undefined);
    await wg?.close();
  });

  const peerState = (i: number, key = newKey()): PeerState => ({
    publicKey: key,
    endpoints: [`192.0.2.${i}:${51000 + i}`],
    allowedIps: [`100.65.0.${i}/32`, `fd00::${i.toString(16)}/128`],
    keepalive: 25,
  });
  const desiredPeers = (ps: PeerState[]) => ({ ...emptyState(51820), peers: new Map(ps.map((p) => [p.publicKey, p])) });

  t.test('ensureInterface creates the device with the key and port, and is idempotent', async (t) => {
    await wg.ensureInterface(ifname, priv, 51820);
    const d = wgDump(ifname);
    t.equal(d.publicKey, pub, 'the device holds our key');
    t.equal(d.listenPort, 51820);
    const linkBefore = execFileSync('ip', ['-o', 'link', 'show', ifname], { encoding: 'utf8' });
    t.match(linkBefore, /[<,]UP[,>]/, 'the link is up');
    await wg.ensureInterface(ifname, priv, 51820);
    const linkAfter = execFileSync('ip', ['-o', 'link', 'show', ifname], { encoding: 'utf8' });
    t.equal(linkAfter.split(':')[0], linkBefore.split(':')[0], 'same ifindex: not re-created');
    t.same((await wg.observe(ifname)).listenPort, 51820);
  });

  t.test('peers added in one transaction read back exactly (plan is empty), as wg sees them', async (t) => {
    const peers = [peerState(1), peerState(2)];
    const ops = plan(desiredPeers(peers), { ...emptyState(51820), peers: new Map() }) as PeerOp[];
    await wg.apply(ifname, ops);
    const seen = await wg.observe(ifname);
    t.same(plan(desiredPeers(peers), { ...emptyState(51820), peers: seen.peers }), [], 'nothing left to do');
    const dump = wgDump(ifname);
    for (const p of peers) {
      const d = dump.peers.get(p.publicKey);
      t.ok(d, 'wg shows the peer');
      t.equal(d?.endpoint, p.endpoints[0]);
      t.same(d?.allowedIps.sort(), [...p.allowedIps].sort());
      t.equal(d?.keepalive, 25);
    }
  });

  t.test('updates touch only what changed; removes; removing a missing peer is no error', async (t) => {
    const seen = await wg.observe(ifname);
    const [a, b] = [...seen.peers.values()];
    const a2 = { ...a!, endpoints: ['192.0.2.77:7777'], allowedIps: ['100.65.0.77/32'] };
    await wg.apply(ifname, [{ op: 'peer-update', peer: a2, changes: ['endpoint', 'allowed-ips'] }]);
    const d = wgDump(ifname).peers.get(a!.publicKey)!;
    t.equal(d.endpoint, '192.0.2.77:7777');
    t.same(d.allowedIps, ['100.65.0.77/32'], 'allowed IPs replaced, not appended');
    t.equal(d.keepalive, 25, 'keepalive kept');
    await wg.apply(ifname, [{ op: 'peer-remove', publicKey: b!.publicKey }, { op: 'peer-remove', publicKey: newKey() }]);
    t.same([...(await wg.observe(ifname)).peers.keys()], [a!.publicKey]);
    t.same([...wgDump(ifname).peers.keys()], [a!.publicKey], 'wg agrees');
  });

  t.test('1,000 peers with 2,000 allowed IPs apply in one call', async (t) => {
    const peers = Array.from({ length: 1000 }, (_, i) => ({ ...peerState(1), endpoints: [`198.18.${i >> 8}.${i & 255}:51820`], allowedIps: [`100.66.${i >> 8}.${i & 255}/32`, canonicalCidr(`fd00:1::${i.toString(16)}/128`)] }));
    const before = await wg.observe(ifname);
    const ops = plan(desiredPeers(peers), { ...emptyState(51820), peers: before.peers }) as PeerOp[];
    await wg.apply(ifname, ops);
    const seen = await wg.observe(ifname);
    t.equal(seen.peers.size, 1000);
    t.same(plan(desiredPeers(peers), { ...emptyState(51820), peers: seen.peers }), []);
    t.equal(wgDump(ifname).peers.size, 1000, 'wg agrees');
  });

  t.test('a changed listen port is applied; deleteInterface removes the device', async (t) => {
    await wg.apply(ifname, [{ op: 'listen-port', port: 51999 }]);
    t.equal(wgDump(ifname).listenPort, 51999);
    await wg.deleteInterface(ifname);
    t.throws(() => execFileSync('ip', ['link', 'show', ifname], { stdio: 'pipe' }), 'the link is gone');
    t.same((await wg.observe(ifname)).peers.size, 0, 'observe of a missing device is empty');
    await wg.deleteInterface(ifname);
    t.pass('deleting again is no error');
  });
}
