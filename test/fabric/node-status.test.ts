import t from 'tap';
import { bytesToHex } from '@noble/hashes/utils.js';
import { seal, signingKeyFromSecret } from '../../fabric/envelope.js';
import { signStatus, verifyStatus, type NodeStatus } from '../../fabric/node-status.js';
import { CONFIG_MAGIC } from '../../fabric/signing.js';
import { allConfigs, configTopic, nodeOfTopic, statusTopic } from '../../fabric/topics.js';

const id = signingKeyFromSecret('31'.repeat(32));
const idHex = bytesToHex(id.publicKey);
const status: NodeStatus = {
  version: 1,
  network: 'lab',
  node: 'n1',
  at: 1_700_000_000_000,
  state: 'running',
  accepted: { revision: { number: 7, hash: `0x${'ab'.repeat(32)}` }, hash: 'cd'.repeat(32) },
  applied: { revision: { number: 7, hash: `0x${'ab'.repeat(32)}` }, hash: 'cd'.repeat(32) },
  reconcile: { status: 'changed', at: 1_700_000_000_000, errors: [] },
  counts: { peers: 2, routes: 2, aclEntries: 3, aclTuples: 6 },
  handshakes: [{ node: 'n2', ageS: 4 }, { node: 'n3', ageS: null }],
  rejected: null,
  backends: { wireguard: 'uapi', acl: 'ebpf' },
};

const refused = (code: string, message: RegExp) => ({ name: 'Sub0Error', code, message });

t.test('a status signed by the identity key opens with that key only', async (t) => {
  const wire = signStatus(status, id);
  t.same(verifyStatus(wire, idHex, 'n1'), status);
  t.throws(() => verifyStatus(wire, 'ee'.repeat(32), 'n1'), refused('bad-signature', /untrusted key/), 'another identity key');
  t.throws(() => verifyStatus(wire, idHex, 'n2'), refused('invalid-input', /about node "n1" on the topic of "n2"/), 'on another node\'s topic');
  const bad = wire.slice();
  bad[bad.length - 3]! ^= 1;
  t.throws(() => verifyStatus(bad, idHex, 'n1'), refused('bad-signature', /does not match/), 'a flipped byte');
});

t.test('a signature over one kind cannot be passed off as another', async (t) => {
  const asConfig = seal(CONFIG_MAGIC, new TextEncoder().encode(JSON.stringify(status)), id);
  t.throws(() => verifyStatus(asConfig, idHex, 'n1'), refused('invalid-input', /not a signed node status/));
  // Same payload and key, header relabelled: the signature covers the kind.
  const relabelled = Buffer.from(Buffer.from(asConfig).toString('latin1').replace(CONFIG_MAGIC, 'sub0/node-status/v1'), 'latin1');
  t.throws(() => verifyStatus(relabelled, idHex, 'n1'), refused('bad-signature', /does not match/));
});

t.test('a status that breaks the schema is refused naming the field', async (t) => {
  const wire = signStatus({ ...status, counts: { ...status.counts, peers: -1 } } as NodeStatus, id);
  t.throws(() => verifyStatus(wire, idHex, 'n1'), refused('invalid-input', /counts\.peers/));
});

t.test('topics: one per node and kind, parsed back', async (t) => {
  t.equal(configTopic('lab', 'n1'), 'sub0/lab/node/n1/config');
  t.equal(statusTopic('lab', 'n1'), 'sub0/lab/node/n1/status');
  t.equal(allConfigs('lab'), 'sub0/lab/node/+/config');
  t.same(nodeOfTopic('lab', 'sub0/lab/node/n1/status'), { node: 'n1', kind: 'status' });
  t.equal(nodeOfTopic('lab', 'sub0/lab/node/n1/status/x'), undefined);
  t.equal(nodeOfTopic('other', 'sub0/lab/node/n1/config'), undefined);
});
