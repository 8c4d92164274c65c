import t from 'tap';
import { bytesToHex } from '@noble/hashes/utils.js';
import { CONTROLLER_LOGIN, expectedBrokerPassword, nodeBrokerPassword } from '../../fabric/broker-login.js';
import { generateSigningKey, signingKeyFromSecret } from '../../fabric/envelope.js';
import { ID_PATTERN } from '../../fabric/schema.js';

const node = signingKeyFromSecret('21'.repeat(32));
const controller = signingKeyFromSecret('42'.repeat(32));
const hex = (k: { publicKey: Uint8Array }) => bytesToHex(k.publicKey);

t.test('the node and the controller derive the same password, and nobody else can', async (t) => {
  const mine = nodeBrokerPassword(node, hex(controller), 'lab', 'n1');
  t.match(mine, /^[0-9a-f]{64}$/);
  t.equal(expectedBrokerPassword(controller, hex(node), 'lab', 'n1'), mine, 'controller side agrees');
  const other = generateSigningKey();
  t.not(nodeBrokerPassword(other, hex(controller), 'lab', 'n1'), mine, 'another identity key gets another password');
  t.not(expectedBrokerPassword(generateSigningKey(), hex(node), 'lab', 'n1'), mine, 'another controller expects another password');
  t.not(nodeBrokerPassword(node, hex(controller), 'lab', 'n2'), mine, 'bound to the node id');
  t.not(nodeBrokerPassword(node, hex(controller), 'prod', 'n1'), mine, 'bound to the network');
  t.equal(nodeBrokerPassword(node, hex(controller), 'lab', 'n1'), mine, 'deterministic');
});

t.test('an identity key that is no curve point is refused with a clear error', async (t) => {
  // y = 2 has no x on edwards25519: not a point.
  const bad = '02' + '00'.repeat(31);
  t.throws(() => expectedBrokerPassword(controller, bad, 'lab', 'n1'), { name: 'Sub0Error', code: 'invalid-input', message: /identity key of node "n1"/ });
});

t.test("the controller's login can never be a node id", async (t) => {
  t.notOk(ID_PATTERN.test(CONTROLLER_LOGIN));
});
