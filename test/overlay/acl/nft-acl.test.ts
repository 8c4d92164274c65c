// The shared ACL suite against the nftables fallback driver (inet table, sets, conntrack).
import t from 'tap';
import { aclSuite, NFT_CHECKS } from './acl-suite.js';

aclSuite(t, {
  prefer: 'nftables',
  tag: `an${process.pid % 100000}`,
  n: 12,
  pinRoot: `/run/sub0-test-${process.pid}/bpf`,
  ...NFT_CHECKS,
});
