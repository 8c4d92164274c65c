/**
 * A large registry for the benches, loaded as Uniques storage through dev_setStorage and sealed
 * in a block (160,000 extrinsics would take minutes of runtime execution; the tests cover the
 * extrinsic path): `nodes` nodes in DVCIs of 100, `slots` slots spread over them, in 100 groups.
 * Rules, `rules` of them, each into one slot: from a whole group (shape 'groups', bench:chain's)
 * or from one other slot, four in five of the same DVCI (shape 'pairs', the shape of
 * fabric/examples/synthetic.ts that `npm run bench` compiles). Every node has its own WireGuard
 * key and, when asked, an identity key from benchIdentity(i), so simulated agents can log in.
 */
import { createHash } from 'node:crypto';
import { bytesToHex } from '@noble/hashes/utils.js';
import { signingKeyFromSecret, type SigningKey } from '../../fabric/envelope.js';
import { AclRule, Dvci, Node, Slot, type BlockRef } from '../../fabric/schema.js';
import type { ChainClient } from '../../controller/chain/client.js';
import { keyFromSuri } from '../../controller/chain/keys.js';
import { uniquesFixtureStorage } from '../../controller/chain/uniques-registry.js';

export interface FixtureOptions {
  readonly nodes: number;
  readonly slots: number;
  readonly rules: number;
  readonly owners?: number;
  /** Register identity keys (benchIdentity) with the nodes. */
  readonly identities?: boolean;
  readonly shape?: 'groups' | 'pairs';
}

const sha = (s: string) => createHash('sha256').update(s).digest();

/** Node i's identity key, the same in every process that asks. */
export function benchIdentity(i: number): SigningKey {
  return signingKeyFromSecret(sha(`sub0-bench-identity-${i}`).toString('hex'));
}

export const benchNodeId = (i: number) => `node-${i}`;

export async function loadRegistryFixture(client: ChainClient, locator: string, o: FixtureOptions): Promise<BlockRef> {
  const ownerCount = o.owners ?? 50;
  const owners = await Promise.all(Array.from({ length: ownerCount }, (_, i) => keyFromSuri(`//Alice//owner/${i}`, { lab: true }).then((p) => p.address)));
  const operator = (await keyFromSuri('//Alice', { lab: true })).address;
  const dvciCount = Math.max(1, Math.ceil(o.nodes / 100));
  const dvcis = Array.from({ length: dvciCount }, (_, i) => Dvci.parse({ id: `dc-${i}`, operator, name: `data centre ${i}` }));
  const nodes = Array.from({ length: o.nodes }, (_, i) =>
    Node.parse({
      id: benchNodeId(i),
      owner: owners[i % ownerCount],
      dvci: `dc-${i % dvciCount}`,
      wgPublicKey: sha(`sub0-bench-wg-${i}`).toString('base64'),
      ...(o.identities ? { identityKey: bytesToHex(benchIdentity(i).publicKey) } : {}),
      endpoints: [`10.${i >> 8}.${i & 255}.1:51820`],
      state: 'active',
      capacity: { vcpus: 64, memoryMiB: 262144, diskGiB: 4000 },
    }),
  );
  const slots = Array.from({ length: o.slots }, (_, i) =>
    Slot.parse({ id: `slot-${i}`, owner: owners[i % ownerCount], node: benchNodeId(i % o.nodes), vcpus: 2, memoryMiB: 2048, diskGiB: 20, image: 'debian-12', state: 'assigned', groups: [`g${i % 100}`, 'all'] }),
  );
  // Deterministic: every run builds the same registry.
  let seed = 0x5eed;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const sourceOf = (i: number): string => {
    if (o.shape !== 'pairs') return `group:g${(i * 7) % 100}`;
    const dst = i % o.slots;
    const dvci = (dst % o.nodes) % dvciCount;
    // A slot s runs on node s % nodes, in DVCI (s % nodes) % dvciCount.
    for (;;) {
      const s = Math.floor(rand() * o.slots);
      if (s !== dst && (rand() < 0.2 || (s % o.nodes) % dvciCount === dvci)) return `slot:slot-${s}`;
    }
  };
  const rules = Array.from({ length: o.rules }, (_, i) =>
    AclRule.parse({ id: `rule-${i}`, owner: owners[i % ownerCount], from: sourceOf(i), to: `slot:slot-${i % o.slots}`, proto: 'tcp', ports: ['443', `${8000 + (i % 100)}-${8100 + (i % 100)}`] }),
  );
  const pairs = await uniquesFixtureStorage(client, locator, { dvci: dvcis, node: nodes, slot: slots, rule: rules });
  for (let i = 0; i < pairs.length; i += 20_000) await client.rpc('dev_setStorage', [pairs.slice(i, i + 20_000)]);
  await client.rpc('dev_newBlock', [{}]);
  return client.finalizedHead();
}
