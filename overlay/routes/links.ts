/**
 * Network links over rtnetlink: look one up by name, bring it up, create and delete it.
 * Used by the route driver and by both WireGuard backends (the kernel one creates its link here;
 * wireguard-go creates its own TUN, which still has to be brought up).
 */
import { AttrStream, Protocol, rt } from 'netlink';
import { Sub0Error } from '../../fabric/errors.js';
import { attr, nested, str } from '../netlink/attrs.js';
import { NLM_F_CREATE, NLM_F_EXCL, NetlinkError, NlSocket } from '../netlink/nl-socket.js';

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const ENODEV = 19;

export function openRouteSocket(): NlSocket {
  return new NlSocket(Protocol.ROUTE);
}

function linkBody(data: rt.Link, attrs: Record<string, unknown> = {}): Uint8Array[] {
  const s = new AttrStream();
  rt.formatLinkMessage({ kind: 'link', data, attrs }, s);
  return s.bufs;
}

export interface LinkInfo {
  readonly index: number;
  readonly up: boolean;
  /** ARPHRD_*, as the netlink package names it (ETHER, NONE, ...) or its number. */
  readonly type: rt.Link['type'];
}

/** The link named `ifname` in this socket's namespace, or undefined when there is none. */
export async function findLink(nl: NlSocket, ifname: string): Promise<LinkInfo | undefined> {
  try {
    const [m] = await nl.request({ type: RTM_GETLINK, body: [...linkBody({}), str(IFLA_IFNAME, ifname)] }, `get link ${ifname}`);
    if (!m) return undefined;
    const link = rt.parseLinkMessage(m.data);
    return { index: link.data.index ?? 0, up: link.data.flags?.up === true, type: link.data.type };
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === ENODEV) return undefined;
    throw new Sub0Error('driver', `cannot look up link: ${(e as Error).message}`, { cause: e, where: ifname });
  }
}

export async function setLinkUp(nl: NlSocket, index: number, ifname: string): Promise<void> {
  try {
    await nl.request({ type: RTM_NEWLINK, body: linkBody({ index, flags: { up: true }, change: { up: true } }) }, `set ${ifname} up`);
  } catch (e) {
    throw new Sub0Error('driver', `cannot bring the link up: ${(e as Error).message}`, { cause: e, where: ifname });
  }
}

/** Creates a link of the given kind (`wireguard`, `dummy`); EEXIST is left to the caller. */
export async function createLink(nl: NlSocket, ifname: string, kind: string): Promise<void> {
  const body = [...linkBody({}), str(IFLA_IFNAME, ifname), nested(IFLA_LINKINFO, [attr(IFLA_INFO_KIND, Buffer.from(kind))])];
  try {
    await nl.request({ type: RTM_NEWLINK, flags: NLM_F_CREATE | NLM_F_EXCL, body }, `create ${kind} link ${ifname}`);
  } catch (e) {
    throw new Sub0Error('driver', `cannot create a ${kind} link: ${(e as Error).message}`, { cause: e, where: ifname });
  }
}

/** Deletes the link; a link that is already gone is not an error. */
export async function deleteLink(nl: NlSocket, ifname: string): Promise<void> {
  const link = await findLink(nl, ifname);
  if (!link) return;
  try {
    await nl.request({ type: RTM_DELLINK, body: linkBody({ index: link.index }) }, `delete link ${ifname}`);
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === ENODEV) return;
    throw new Sub0Error('driver', `cannot delete the link: ${(e as Error).message}`, { cause: e, where: ifname });
  }
}
