// The shared ACL suite against the nftables fallback driver on a WireGuard (wireguard-go) interface.
import t from 'tap';
import { aclSuite, NFT_CHECKS } from './acl-suite.js';

aclSuite(t, {
  prefer: 'nftables',
  tag: `wn${process.pid % 100000}`,
  link: 'wireguard',
  n: 32,
  pinRoot: `/run/sub0-test-${process.pid}/bpf`,
  ...NFT_CHECKS,
});
