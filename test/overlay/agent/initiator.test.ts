/**
 * One initiating end per link (overlay/agent/initiator.ts), pure: the lower key keeps its
 * keepalive; the higher one holds it at 0 until a handshake with that peer was seen or its wait
 * ran out, and then keeps it for as long as it wants the peer.
 */
import t from 'tap';
import type { DataplaneState, PeerState } from '../../../fabric/dataplane-state.js';
import { InitiatorPolicy } from '../../../overlay/agent/initiator.js';

const peer = (publicKey: string, lastHandshake?: number): PeerState => ({ publicKey, endpoints: ['192.0.2.1:51820'], allowedIps: ['100.65.0.1/32'], keepalive: 25, ...(lastHandshake !== undefined ? { lastHandshake } : {}) });
const state = (...peers: PeerState[]): DataplaneState => ({ listenPort: 51820, peers: new Map(peers.map((p) => [p.publicKey, p])), addresses: new Set(), routes: new Set(), acl: new Map() });
const keepalives = (s: DataplaneState) => Object.fromEntries([...s.peers].map(([k, p]) => [k, p.keepalive]));

t.test('the lower key initiates; the higher one waits for a handshake', async (t) => {
  const own = 'M';
  const p = new InitiatorPolicy(own, 15_000);
  const want = state(peer('Z'), peer('A'));
  const first = p.apply(want, undefined, 1_000);
  t.same(keepalives(first), { Z: 25, A: 0 }, 'M < Z: M initiates to Z; A < M: M waits for A');
  t.equal(p.nextRelease(), 16_000, 'and a pass is due when the wait ends');
  const heldA = (lastHandshake: number) => state({ ...peer('A', lastHandshake), keepalive: 0 });
  t.same(keepalives(p.apply(want, heldA(0), 5_000)), { Z: 25, A: 0 }, 'no handshake yet: still held');
  t.same(keepalives(p.apply(want, heldA(1_700_000_000), 6_000)), { Z: 25, A: 25 }, 'A shook hands: released');
  t.equal(p.nextRelease(), undefined, 'nothing left to wait for');
  t.same(keepalives(p.apply(want, undefined, 7_000)), { Z: 25, A: 25 }, 'and it stays released');
  t.equal(p.apply(state(peer('Z')), undefined, 8_000).peers.size, 1);
  t.same(keepalives(p.apply(want, undefined, 9_000)), { Z: 25, A: 0 }, 'a peer dropped and added again waits again');
});

t.test('a peer that never shakes hands is released when the wait runs out', async (t) => {
  const p = new InitiatorPolicy('M', 15_000);
  const want = state(peer('A'));
  t.same(keepalives(p.apply(want, undefined, 0)), { A: 0 });
  t.same(keepalives(p.apply(want, undefined, 14_999)), { A: 0 });
  t.same(keepalives(p.apply(want, undefined, 15_000)), { A: 25 }, 'after 15 s it sends keepalives itself (the lower end may be behind a NAT)');
});

t.test('both ends agree on who initiates, and a peer without keepalive is left as it is', async (t) => {
  const a = new InitiatorPolicy('AAAA');
  const b = new InitiatorPolicy('BBBB');
  t.ok(a.initiates('BBBB') !== b.initiates('AAAA'), 'exactly one end of the pair initiates');
  const none = state({ ...peer('A'), keepalive: 0 });
  t.equal(new InitiatorPolicy('M').apply(none, undefined, 0), none, 'nothing held: the same object');
});

t.test('a peer the kernel already holds with its keepalive (an agent restarted) is released at once: no flap', async (t) => {
  const p = new InitiatorPolicy('M', 15_000);
  const want = state(peer('A'));
  t.same(keepalives(p.apply(want, state(peer('A')), 0)), { A: 25 }, 'observed with keepalive 25 and no handshake time: kept at 25');
  t.equal(p.nextRelease(), undefined);
});
