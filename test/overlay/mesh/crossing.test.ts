/**
 * No one-way links: two agents that add each other at once (both configs written in one go) get a
 * link that carries traffic both ways at once, 50 times in a row. With both ends sending a
 * keepalive as soon as the peer is added, their handshake initiations cross, and Debian 12's
 * wireguard-go can end such a crossing with keys that work one way only until the next rekey (up
 * to two minutes); one initiating end per link (overlay/agent/initiator.ts) prevents it. And the
 * case that holding back one end must not slow: the initiating end applied first.
 */
import t from 'tap';
import { ping } from '../../../lab/traffic.js';
import { useMesh } from '../../helpers/netns-lab.js';

const RUNS = Number(process.env.CROSSING_RUNS ?? 50);
const mesh = useMesh(t, { nodes: ['n1', 'n2'], tag: 'cx' });
let block = 10;

t.test(`two agents added to each other at once, ${RUNS} times: every link carries traffic both ways within one handshake`, async (t) => {
  const first = mesh.publish({ block: block++ });
  for (const n of ['n1', 'n2']) mesh.startAgent(n, { acl: 'off', resyncMs: 2000 });
  await mesh.waitAll(first, 30_000);
  const addr = (n: string) => first.get(n)!.interface.addresses.find((a) => !a.includes(':'))!.split('/')[0]!;
  const [a1, a2] = [addr('n1'), addr('n2')];
  const oneWay: string[] = [];
  for (let k = 0; k < RUNS; k++) {
    // Apart: n1 quarantined, so each drops the other.
    const apart = mesh.publish({ block: block++, nodeState: { n1: 'quarantined' } });
    await mesh.waitAll(apart);
    // Together again, both configs written at once: each agent adds the other as it reads its own.
    const together = mesh.prepare({ block: block++ });
    mesh.write(together);
    await mesh.waitAll(together.configs);
    // Both directions at once, each given one handshake's time (a one-way link stays so for minutes).
    const [there, back] = await Promise.all([ping(mesh.lab, 'n1', a1, a2, 5), ping(mesh.lab, 'n2', a2, a1, 5)]);
    if (!there || !back) oneWay.push(`run ${k + 1}: ${there ? '' : 'n1 -> n2 '}${back ? '' : 'n2 -> n1'}`.trim());
  }
  t.same(oneWay, [], `every one of ${RUNS} links carried traffic both ways`);
});

t.test('the initiating end applies first (its first handshake finds no peer): the link still answers within a second', async (t) => {
  const key = (n: string) => mesh.status(n)!.publicKey;
  const [low, high] = key('n1') < key('n2') ? ['n1', 'n2'] : ['n2', 'n1'];
  const addr = (configs: ReturnType<typeof mesh.publish>, n: string) => configs.get(n)!.interface.addresses.find((a) => !a.includes(':'))!.split('/')[0]!;
  for (let k = 0; k < 5; k++) {
    const apart = mesh.publish({ block: block++, nodeState: { n1: 'quarantined' } });
    await mesh.waitAll(apart);
    const together = mesh.prepare({ block: block++ });
    // The lower key's end first: its first initiation reaches a node that does not know it yet
    // (wireguard-go retries only after 5 s); the other end, once it has the peer, starts one itself.
    mesh.write({ envelopes: new Map([[low, together.envelopes.get(low)!]]) });
    await mesh.waitConverged(low, together.configs.get(low)!);
    mesh.write({ envelopes: new Map([[high, together.envelopes.get(high)!]]) });
    await mesh.waitConverged(high, together.configs.get(high)!);
    t.ok(await ping(mesh.lab, low, addr(together.configs, low), addr(together.configs, high), 1), `run ${k + 1}: ${low} (initiator) reaches ${high} within a second`);
  }
});
