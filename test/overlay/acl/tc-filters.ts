/** Our tc filter lines on node A's ingress then egress, as `tc filter show` prints them. */
import { inNs, type Lab } from '../../../lab/acl/netns-lab.js';

export async function aclFilters(lab: Lab): Promise<string[]> {
  const lines = [];
  for (const dir of ['ingress', 'egress']) {
    const out = await inNs(lab.a.ns, 'tc', ['filter', 'show', 'dev', lab.a.ifname, dir]);
    lines.push(...out.split('\n').filter((l) => l.includes('acl_')));
  }
  return lines;
}
