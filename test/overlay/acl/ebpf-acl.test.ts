// The shared ACL suite against the eBPF driver (tc clsact program + maps, attached via libbpf).
import { readdirSync } from 'node:fs';
import t from 'tap';
import { aclFilters as filters } from './tc-filters.js';
import { aclSuite, tamperEbpf } from './acl-suite.js';

const pinRoot = `/run/sub0-test-${process.pid}/bpf`;

aclSuite(t, {
  prefer: 'ebpf',
  tag: `ae${process.pid % 100000}`,
  n: 11,
  pinRoot,
  attached: { show: (lab) => filters(lab).then((l) => l.join('\n')), expect: /name acl_eth .*\n.*name acl_eth / },
  tamper: tamperEbpf(pinRoot),
  async leftovers(lab) {
    const pins = readdirSync(pinRoot).filter((d) => d.startsWith('net-')).flatMap((d) => readdirSync(`${pinRoot}/${d}`));
    return [...(await filters(lab)), ...pins].join('\n');
  },
});
