// The shared ACL suite against the eBPF driver (tc clsact program + maps, attached via libbpf).
import { readdirSync } from 'node:fs';
import t from 'tap';
import { inNs } from '../../../overlay/acl/netns-lab.js';
import { aclSuite } from './acl-suite.js';

const pinRoot = `/run/sub0-test-${process.pid}/bpf`;

aclSuite(t, {
  prefer: 'ebpf',
  tag: `ae${process.pid % 100000}`,
  n: 11,
  pinRoot,
  async leftovers(lab) {
    const filters = [];
    for (const dir of ['ingress', 'egress']) {
      const out = await inNs(lab.a.ns, 'tc', ['filter', 'show', 'dev', lab.a.ifname, dir]);
      filters.push(...out.split('\n').filter((l) => l.includes('acl_')));
    }
    const pins = readdirSync(pinRoot).filter((d) => d.startsWith('net-')).flatMap((d) => readdirSync(`${pinRoot}/${d}`));
    return [...filters, ...pins].join('\n');
  },
});
