// The shared ACL suite against the nftables fallback driver (inet table, sets, conntrack).
import t from 'tap';
import { inNs } from '../../../overlay/acl/netns-lab.js';
import { aclSuite, tamperNft } from './acl-suite.js';

aclSuite(t, {
  prefer: 'nftables',
  tag: `an${process.pid % 100000}`,
  n: 12,
  pinRoot: `/run/sub0-test-${process.pid}/bpf`,
  attached: {
    show: (lab) => inNs(lab.a.ns, 'nft', ['list', 'ruleset']),
    expect: /table inet sub0_\S+ \{[^]*hook prerouting[^]*hook postrouting/,
  },
  tamper: tamperNft,
  async leftovers(lab) {
    const out = await inNs(lab.a.ns, 'nft', ['list', 'tables']);
    return out.split('\n').filter((l) => l.includes('sub0_')).join('\n');
  },
});
