/**
 * The nftables fallback's table, as `nft -f` text. Pure. One table per interface,
 * `inet sub0_<ifname>`, holding per family:
 *   tuplesN  the tuples exactly as given (src . dst . proto . lo . hi): the record observe() reads
 *            back. Never matched against; the protocol is stored as an inet_service (a plain
 *            16-bit number) because nft prints inet_proto values as names ("ip" for 0).
 *   portsN   (src . dst . proto . port-interval) for TCP and UDP, each group's ranges merged:
 *            an interval set rejects overlapping elements, and two rules may overlap.
 *   icmpN    (src . dst . proto) for 'icmp' tuples;  anyN  (src . dst) for 'any' tuples.
 *   groupsN  (src . dst . proto) of every group: lets ICMP errors about an allowed flow through.
 *   guardN   the guarded prefixes.
 * An apply changes the elements of the groups it touched, in one transaction (renderDelta).
 * Chains: `ingress` (prerouting, iifname) and `egress` (postrouting, oifname) send packets that
 * touch a guarded prefix to `check`, which accepts a flow whose original direction is still in the
 * sets (conntrack's `ct original` tuple), or a packet a set allows, and drops the rest. Because
 * flows are judged against the sets on every packet, removing a tuple cuts its flows at once: no
 * conntrack entry needs deleting.
 */
import { formatAddr, isMappedV4, parsePrefix } from './addr.js';
import { IPPROTO, mergeRanges, type RuleGroup } from './rule-set.js';

export function tableName(ifname: string): string {
  return `sub0_${ifname.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

const FAMILIES = [
  { n: 4, addr: 'ipv4_addr', ip: 'ip', icmp: 'icmp' },
  { n: 6, addr: 'ipv6_addr', ip: 'ip6', icmp: 'icmpv6' },
] as const;

/** The sets holding tuples: flushed and refilled by every apply. */
export const TUPLE_SETS = ['tuples', 'ports', 'icmp', 'any', 'groups'] as const;

/** Creates or refreshes the table, its sets (keeping their elements) and its chains; idempotent. */
export function renderTable(ifname: string, guarded: readonly string[]): string {
  const t = `inet ${tableName(ifname)}`;
  const q = JSON.stringify(ifname);
  const lines = [`add table ${t}`];
  for (const f of FAMILIES) {
    const a = f.addr;
    lines.push(
      `add set ${t} tuples${f.n} { type ${a} . ${a} . inet_service . inet_service . inet_service; }`,
      `add set ${t} ports${f.n} { type ${a} . ${a} . inet_proto . inet_service; flags interval; }`,
      `add set ${t} icmp${f.n} { type ${a} . ${a} . inet_proto; }`,
      `add set ${t} any${f.n} { type ${a} . ${a}; }`,
      `add set ${t} groups${f.n} { type ${a} . ${a} . inet_proto; }`,
      `add set ${t} guard${f.n} { type ${a}; flags interval; auto-merge; }`,
      `flush set ${t} guard${f.n}`,
    );
    const prefixes = guarded.filter((g) => parsePrefix(g).family === f.n);
    if (prefixes.length > 0) lines.push(`add element ${t} guard${f.n} { ${prefixes.join(', ')} }`);
  }
  lines.push(`add chain ${t} check`, `flush chain ${t} check`);
  const rule = (r: string) => lines.push(`add rule ${t} check ${r}`);
  rule('icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } accept');
  for (const f of FAMILIES) {
    const orig = `ct original ${f.ip} saddr . ct original ${f.ip} daddr`;
    // `meta l4proto` first: nft needs it to know the type of `ct original proto-dst`.
    rule(`meta l4proto { tcp, udp } ct state established ${orig} . ct original protocol . ct original proto-dst @ports${f.n} accept`);
    rule(`ct state established ${orig} . ct original protocol @icmp${f.n} accept`);
    rule(`ct state established,related ${orig} @any${f.n} accept`);
    rule(`ct state related ${orig} . ct original protocol @groups${f.n} accept`);
    const pkt = `${f.ip} saddr . ${f.ip} daddr`;
    rule(`${pkt} . meta l4proto . th dport @ports${f.n} accept`);
    rule(`${pkt} . meta l4proto @icmp${f.n} accept`);
    rule(`${pkt} @any${f.n} accept`);
  }
  rule('drop');
  for (const [chain, hook, dev] of [['ingress', 'prerouting', 'iifname'], ['egress', 'postrouting', 'oifname']] as const) {
    lines.push(`add chain ${t} ${chain} { type filter hook ${hook} priority filter; policy accept; }`, `flush chain ${t} ${chain}`);
    for (const f of FAMILIES) {
      for (const side of ['saddr', 'daddr']) lines.push(`add rule ${t} ${chain} ${dev} ${q} ${f.ip} ${side} @guard${f.n} goto check`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The set elements one group stands for, by set name (tuples4, ports4, ...). */
function elementsOf(g: RuleGroup): [string, string][] {
  const out: [string, string][] = [];
  const n = isMappedV4(g.src) ? 4 : 6;
  const pair = `${formatAddr(g.src)} . ${formatAddr(g.dst)}`;
  for (const [lo, hi] of g.ranges) out.push([`tuples${n}`, `${pair} . ${g.proto} . ${lo} . ${hi}`]);
  if (g.ranges.length === 0) return out;
  if (g.proto === IPPROTO.any) {
    out.push([`any${n}`, pair]);
    return out;
  }
  out.push([`groups${n}`, `${pair} . ${g.proto}`]);
  if (g.proto === IPPROTO.tcp || g.proto === IPPROTO.udp) {
    for (const [lo, hi] of mergeRanges(g.ranges)) out.push([`ports${n}`, `${pair} . ${g.proto} . ${lo}-${hi}`]);
  } else {
    out.push([`icmp${n}`, `${pair} . ${g.proto}`]);
  }
  return out;
}

/**
 * One transaction that takes the tuple sets from the groups `before` to the groups `after`, for
 * the groups that changed (undefined: absent): the elements only one side has are deleted or
 * added, so a change costs its own size, not the sets' (refilling an interval set of 100,000
 * elements in one transaction took minutes). Atomic for packets.
 */
export function renderDelta(ifname: string, changes: Iterable<readonly [RuleGroup | undefined, RuleGroup | undefined]>): string {
  const t = `inet ${tableName(ifname)}`;
  const del = new Map<string, string[]>();
  const add = new Map<string, string[]>();
  const put = (m: Map<string, string[]>, set: string, e: string) => {
    const list = m.get(set);
    if (list) list.push(e);
    else m.set(set, [e]);
  };
  for (const [before, after] of changes) {
    const old = new Set((before ? elementsOf(before) : []).map(([set, e]) => `${set}\0${e}`));
    const now = new Set((after ? elementsOf(after) : []).map(([set, e]) => `${set}\0${e}`));
    for (const x of old) if (!now.has(x)) put(del, ...(x.split('\0') as [string, string]));
    for (const x of now) if (!old.has(x)) put(add, ...(x.split('\0') as [string, string]));
  }
  const lines: string[] = [];
  for (const [verb, m] of [['delete', del], ['add', add]] as const) {
    for (const [set, list] of m) {
      // Chunks keep each command line within what nft's parser handles comfortably.
      for (let i = 0; i < list.length; i += 1000) lines.push(`${verb} element ${t} ${set} { ${list.slice(i, i + 1000).join(', ')} }`);
    }
  }
  return lines.join('\n') + '\n';
}
