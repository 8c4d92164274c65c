/** The stick's network settings: what is refused says where, and the registration line is exact. */
import t from 'tap';
import { defaultNodeId, parseSettings, registerLine } from '../../bootimage/settings.js';

const KEY = 'ffe0d4294bd442407f0c2cdc3f8c9c3519b26cfea44b967422b46cca6171ab3c';
const good = { network: 'lab', dvci: 'lyon', brokers: ['mqtt://10.77.0.1:1883'], controllers: [KEY] };

t.test('valid settings parse, with defaults', async (t) => {
  const s = parseSettings(JSON.stringify(good), 'net.json');
  t.equal(s.listenPort, 51820);
  t.equal(s.static, undefined);
  const st = parseSettings(JSON.stringify({ ...good, static: { address: '192.0.2.10/24', gateway: '192.0.2.1' } }), 'net.json');
  t.same(st.static, { interface: 'eth0', address: '192.0.2.10/24', gateway: '192.0.2.1', dns: [] });
});

t.test('each mistake is named with its field and the file', async (t) => {
  const bad = (v: unknown, re: RegExp, what: string) => t.throws(() => parseSettings(typeof v === 'string' ? v : JSON.stringify(v), 'net.json'), re, what);
  bad('{ nope', /^net\.json: not JSON/, 'not JSON');
  bad({ ...good, brokers: [] }, /brokers: at least one broker URL/, 'no broker');
  bad({ ...good, brokers: ['http://x'] }, /brokers\.0: must be mqtt:\/\/host:port/, 'a broker that is not MQTT');
  bad({ ...good, controllers: ['00'.repeat(31) + '01'] }, /controllers\.0: is not an ed25519 public key/, 'a key that is no curve point');
  bad({ ...good, controllers: ['XYZ'] }, /controllers\.0:/, 'a key that is not hex');
  bad({ ...good, static: { address: '999.1.1.1/24' } }, /static\.address: must be an IPv4 address with its prefix length/, 'a bad static address');
  bad({ ...good, static: { address: '192.0.2.1/24', gateway: '192.0.2.999' } }, /static\.gateway: must be an IPv4 address/, 'a bad gateway');
  bad({ ...good, dvci: 'Lyon!' }, /dvci:/, 'a bad DVCI id');
  bad({ ...good, secret: 'x' }, /Unrecognized key.*secret|secret/, 'an unknown field (a typo must not pass silently)');
});

t.test('the registration line is the command an operator runs', async (t) => {
  const s = parseSettings(JSON.stringify(good), 'net.json');
  t.equal(defaultNodeId(KEY), 'node-ffe0d429');
  t.equal(registerLine(s, 'node-ffe0d429', 'WG=', KEY, '10.0.2.15'), `sub0 node register node-ffe0d429 --dvci lyon --key WG= --identity ${KEY} --addr 10.0.2.15:51820`);
  const other = parseSettings(JSON.stringify({ ...good, listenPort: 51999 }), 'net.json');
  t.match(registerLine(other, 'n1', 'WG=', KEY, undefined), /--addr <host>:51999 --listen-port 51999$/);
});
