// The shared ACL suite against the eBPF driver on a WireGuard (wireguard-go) interface: an L3
// device without a MAC header, so the acl_raw program.
import { readdirSync } from 'node:fs';
import t from 'tap';
import { aclFilters as filters } from './tc-filters.js';
import { aclSuite, tamperEbpf } from './acl-suite.js';

const pinRoot = `/run/sub0-test-${process.pid}/bpf`;

aclSuite(t, {
  prefer: 'ebpf',
  tag: `we${process.pid % 100000}`,
  link: 'wireguard',
  n: 31,
  pinRoot,
  attached: { show: (lab) => filters(lab).then((l) => l.join('\n')), expect: /name acl_raw .*\n.*name acl_raw / },
  tamper: tamperEbpf(pinRoot),
  async leftovers(lab) {
    const pins = readdirSync(pinRoot).filter((d) => d.startsWith('net-')).flatMap((d) => readdirSync(`${pinRoot}/${d}`));
    return [...(await filters(lab)), ...pins].join('\n');
  },
});
