/**
 * The RouteDriver over rtnetlink: the node's overlay addresses on the WireGuard interface, and
 * host routes into it. Every route the agent creates carries protocol RTPROT_SUB0, and observe()
 * reports only those (plus the interface's global addresses, which only the agent puts there):
 * routes that anyone else added, even to the same prefixes, are neither reported nor touched. The
 * kernel itself matches the protocol on delete, so a foreign route with our prefix survives too.
 * apply() sends all its messages as one netlink batch.
 */
import { AttrStream, rt } from 'netlink';
import { Sub0Error } from '../../fabric/errors.js';
import type { RouteDriver, RouteOp } from '../drivers.js';
import { formatCidr, parseCidr } from '../../fabric/ip.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, type NetlinkError, type NlMessage, type NlSocket } from '../netlink/nl-socket.js';
import { findLink, openRouteSocket } from './links.js';

/** rtm_protocol of sub0's routes (`ip route show proto 83`). Unassigned in /etc/iproute2/rt_protos. */
export const RTPROT_SUB0 = 0x53;
/** The package's enum has no member for private protocol numbers; the wire value is what counts. */
const PROTO_ENUM = RTPROT_SUB0 as unknown as rt.RouteProtocol;

const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const RTM_GETROUTE = 26;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const RT_SCOPE_UNIVERSE = 0;
const EEXIST = 17;
/** What deleting something that is not there answers: not an error (driver contract). */
const GONE = new Set([2 /* ENOENT */, 3 /* ESRCH */, 19 /* ENODEV */, 99 /* EADDRNOTAVAIL */]);

export class RtnetlinkRouteDriver implements RouteDriver {
  constructor(private readonly nl: NlSocket = openRouteSocket()) {}

  async observe(ifname: string): Promise<{ addresses: ReadonlySet<string>; routes: ReadonlySet<string> }> {
    const addresses = new Set<string>();
    const routes = new Set<string>();
    const link = await findLink(this.nl, ifname);
    if (!link) return { addresses, routes };
    for (const m of await this.nl.dump({ type: RTM_GETADDR, body: addrBody({ family: 0 }) }, 'dump addresses')) {
      const a = rt.parseAddressMessage(m.data);
      // Link-local and host-scope addresses are the kernel's, not ours.
      if (a.data.index !== link.index || (a.data.scope ?? 0) !== RT_SCOPE_UNIVERSE) continue;
      const ip = a.attrs.local ?? a.attrs.address;
      if (ip) addresses.add(formatCidr({ addr: ip, bits: a.data.prefixlen ?? 0 }));
    }
    for (const family of [AF_INET, AF_INET6]) {
      for (const m of await this.nl.dump({ type: RTM_GETROUTE, body: routeBody({ family }) }, 'dump routes')) {
        const r = parseRoute(m.data);
        if (r.protocol === RTPROT_SUB0 && r.table === RT_TABLE_MAIN && r.oif === link.index) routes.add(r.dst);
      }
    }
    return { addresses, routes };
  }

  /**
   * Applies address and route ops in the order given, in one batch. Adds overwrite (REPLACE),
   * removing what is gone is not an error. Throws one Sub0Error 'driver' listing every op that
   * failed, after trying them all.
   */
  async apply(ifname: string, ops: readonly RouteOp[]): Promise<void> {
    if (ops.length === 0) return;
    const link = await findLink(this.nl, ifname);
    if (!link) throw new Sub0Error('driver', 'the interface does not exist', { where: ifname });
    const msgs: NlMessage[] = ops.map((o) => toMessage(o, link.index));
    const results = await this.nl.batch(msgs, `routes on ${ifname}`);
    const failed: string[] = [];
    results.forEach((e: NetlinkError | undefined, i) => {
      if (!e) return;
      const o = ops[i]!;
      if ((o.op === 'route-remove' || o.op === 'address-remove') && GONE.has(e.errno)) return;
      const what = `${o.op} ${'cidr' in o ? o.cidr : o.dst}`;
      if (o.op === 'route-add' && e.errno === EEXIST) failed.push(`${what}: a route that sub0 did not create is in the way`);
      else failed.push(`${what}: ${e.message}`);
    });
    if (failed.length > 0) {
      const more = failed.length > 5 ? ` (and ${failed.length - 5} more)` : '';
      throw new Sub0Error('driver', `${failed.length} of ${ops.length} route ops failed: ${failed.slice(0, 5).join('; ')}${more}`, { where: ifname });
    }
  }

  async close(): Promise<void> {
    this.nl.close();
  }
}

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_TABLE = 15;

/**
 * The few fields of an rtmsg that observe() needs. Hand-parsed: a full dump holds every route of
 * the machine, and the generated parser costs ~30 µs per route.
 */
function parseRoute(b: Buffer): { protocol: number; table: number; oif: number; dst: string } {
  const family = b[0]!;
  const dstLen = b[1]!;
  let table = b[4]!;
  const protocol = b[5]!;
  let oif = 0;
  let dst: Uint8Array = new Uint8Array(family === AF_INET ? 4 : 16);
  let off = 12;
  while (off + 4 <= b.length) {
    const len = b.readUInt16LE(off);
    const type = b.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4) break;
    if (type === RTA_DST) dst = b.subarray(off + 4, off + len);
    else if (type === RTA_OIF) oif = b.readUInt32LE(off + 4);
    else if (type === RTA_TABLE) table = b.readUInt32LE(off + 4);
    off += (len + 3) & ~3;
  }
  return { protocol, table, oif, dst: formatCidr({ addr: dst, bits: dstLen }) };
}

function addrBody(data: rt.Address, attrs: rt.AddressAttrs = {}): Uint8Array[] {
  const s = new AttrStream();
  rt.formatAddressMessage({ kind: 'address', data, attrs }, s);
  return s.bufs;
}

function routeBody(data: rt.Route, attrs: rt.RouteAttrs = {}): Uint8Array[] {
  const s = new AttrStream();
  rt.formatRouteMessage({ kind: 'route', data, attrs }, s);
  return s.bufs;
}

function toMessage(o: RouteOp, index: number): NlMessage {
  switch (o.op) {
    case 'address-add':
    case 'address-remove': {
      const c = parseCidr(o.cidr);
      const ip = Buffer.from(c.addr);
      // NODAD: an overlay /128 has no neighbours to collide with, and DAD would delay it.
      // NOPREFIXROUTE: the routes into the interface are ours to add, each with RTPROT_SUB0.
      const body = addrBody(
        { family: c.family === 4 ? AF_INET : AF_INET6, prefixlen: c.bits, scope: RT_SCOPE_UNIVERSE, index, flags: { nodad: true } },
        { local: ip, address: ip, flags: { nodad: true, noprefixroute: true } },
      );
      return o.op === 'address-add'
        ? { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_REPLACE, body }
        : { type: RTM_DELADDR, body };
    }
    case 'route-add':
    case 'route-remove': {
      const c = parseCidr(o.dst);
      const body = routeBody(
        { family: c.family === 4 ? AF_INET : AF_INET6, dstLen: c.bits, table: RT_TABLE_MAIN, protocol: PROTO_ENUM, scope: 'LINK', type: 'UNICAST' },
        { dst: Buffer.from(c.addr), oif: index },
      );
      // EXCL, not REPLACE: replacing would take over a route someone else added to the same prefix.
      return o.op === 'route-add'
        ? { type: RTM_NEWROUTE, flags: NLM_F_CREATE | NLM_F_EXCL, body }
        : { type: RTM_DELROUTE, body };
    }
  }
}
