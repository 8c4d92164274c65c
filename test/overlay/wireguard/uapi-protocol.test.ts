import t from 'tap';
import { encodeSet, parseErrno, parseGet } from '../../../overlay/wireguard/uapi-protocol.js';

const A = 'QHdyV3zo+356fIKWBX8dTFmg4j6BXqZR5nOFpLPhR3c=';
const B = '09zhIHXQYpsQdQBejk/ZELUlzf2p0Qq+xqP+Pw9SaGU=';
const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');
const peer = { publicKey: A, endpoints: ['192.0.2.1:51820', '192.0.2.9:51820'], allowedIps: ['100.65.0.1/32', 'fd00::1/128'], keepalive: 25 };

t.test('a plan becomes one set transaction, keys in hex, adds before removes', async (t) => {
  const text = encodeSet({ listenPort: 51821 }, [
    { op: 'peer-add', peer },
    { op: 'peer-update', peer: { ...peer, publicKey: B }, changes: ['endpoint'] },
    { op: 'peer-remove', publicKey: A },
  ]);
  t.equal(
    text,
    [
      'set=1',
      'listen_port=51821',
      `public_key=${hex(A)}`,
      'endpoint=192.0.2.1:51820',
      'persistent_keepalive_interval=25',
      'replace_allowed_ips=true',
      'allowed_ip=100.65.0.1/32',
      'allowed_ip=fd00::1/128',
      `public_key=${hex(B)}`,
      'endpoint=192.0.2.1:51820',
      `public_key=${hex(A)}`,
      'remove=true',
      '',
      '',
    ].join('\n'),
  );
});

t.test('an update sends only what changed', async (t) => {
  const text = encodeSet({}, [{ op: 'peer-update', peer, changes: ['allowed-ips', 'keepalive'] }]);
  t.notMatch(text, /endpoint=/);
  t.match(text, /persistent_keepalive_interval=25\nreplace_allowed_ips=true\nallowed_ip=100.65.0.1\/32\nallowed_ip=fd00::1\/128\n\n$/);
});

t.test('a get reply parses into device and peers; counters and unknown keys are tolerated', async (t) => {
  const reply = [
    `private_key=${'11'.repeat(32)}`,
    'listen_port=51820',
    'fwmark=0',
    `public_key=${hex(A)}`,
    'preshared_key=' + '00'.repeat(32),
    'protocol_version=1',
    'endpoint=[FD00::0002]:51820',
    'last_handshake_time_sec=1700000000',
    'last_handshake_time_nsec=5',
    'tx_bytes=10',
    'rx_bytes=20',
    'persistent_keepalive_interval=25',
    'allowed_ip=100.65.0.1/32',
    'allowed_ip=FD00:0::1/128',
    'some_future_key=1',
    `public_key=${hex(B)}`,
    'errno=0',
    '',
    '',
  ].join('\n');
  const dev = parseGet(reply);
  t.equal(dev.privateKey, '11'.repeat(32));
  t.equal(dev.listenPort, 51820);
  t.equal(dev.peers.length, 2);
  t.same(dev.peers[0], { publicKey: A, endpoint: '[fd00::2]:51820', allowedIps: ['100.65.0.1/32', 'fd00::1/128'], keepalive: 25, lastHandshake: 1700000000, rxBytes: 20, txBytes: 10 });
  t.same(dev.peers[1]!.allowedIps, []);
});

t.test('errno replies', async (t) => {
  t.equal(parseErrno('errno=0\n\n'), 0);
  t.equal(parseErrno('errno=-22\n\n'), -22);
  t.throws(() => parseErrno('listen_port=1\n'), /without errno/);
  t.throws(() => parseGet('errno=-5\n\n'), /errno=-5/);
});
