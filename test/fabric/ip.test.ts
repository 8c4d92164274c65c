import t from 'tap';
import { canonicalCidr, formatIp, joinHostPort, parseIp, splitHostPort } from '../../fabric/ip.js';

t.test('IPv6 text is canonical (RFC 5952), as Go and the kernel print it', async (t) => {
  const cases: [string, string][] = [
    ['FD12:3456:789A:0002:0000:0000:6460:0102', 'fd12:3456:789a:2::6460:102'],
    ['fd00:0:0:2:0:0:0:1', 'fd00:0:0:2::1'], // the longer run is compressed
    ['fd00:0:0:2:0:0:1:1', 'fd00::2:0:0:1:1'], // equal runs: the first one
    ['fd00:1:2:3:4:5:6:0', 'fd00:1:2:3:4:5:6:0'], // a single zero stays
    ['::', '::'],
    ['::1', '::1'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
  ];
  for (const [input, want] of cases) t.equal(formatIp(parseIp(input)), want, input);
});

t.test('CIDRs and endpoints', async (t) => {
  t.equal(canonicalCidr('100.96.1.2/32'), '100.96.1.2/32');
  t.equal(canonicalCidr('FD00::0001/128'), 'fd00::1/128');
  t.throws(() => canonicalCidr('100.96.1.2/33'), /prefix length/);
  t.throws(() => parseIp('100.96.1'), /not an IP/);
  t.same(splitHostPort('[fd00::1]:51820'), { host: 'fd00::1', port: 51820 });
  t.same(splitHostPort('node.example.org:1'), { host: 'node.example.org', port: 1 });
  t.equal(joinHostPort('FD00:0::1', 51820), '[fd00::1]:51820');
  t.equal(joinHostPort('10.0.0.1', 51820), '10.0.0.1:51820');
});
