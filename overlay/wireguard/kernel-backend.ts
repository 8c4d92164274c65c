/**
 * WireguardBackend for the kernel module, over the `wireguard` generic netlink family: the link is
 * created with rtnetlink (kind "wireguard"), then configured with WG_CMD_SET_DEVICE, and read
 * back with WG_CMD_GET_DEVICE dumps. A plan's peer ops go out as one batch of messages, split
 * where wg(8) would split them (see kernel-protocol.ts).
 */
import { Protocol } from 'netlink';
import { Sub0Error } from '../../fabric/errors.js';
import type { PeerState } from '../../fabric/dataplane-state.js';
import type { PeerOp, WireguardBackend, WireguardObserved } from '../drivers.js';
import { NetlinkError, NlSocket } from '../netlink/nl-socket.js';
import { createLink, deleteLink, findLink, openRouteSocket, setLinkUp } from '../routes/links.js';
import {
  GENL_ID_CTRL,
  WG_GENL_NAME,
  encodeGetDevice,
  encodeGetFamily,
  encodeSetDevice,
  parseDeviceDump,
  parseFamilyId,
  type DeviceSettings,
  type KernelDevice,
} from './kernel-protocol.js';

const ENODEV = 19;
const ENOENT = 2;

/** The id of the `wireguard` genl family, or undefined when the kernel has none (no module). */
export async function wireguardFamilyId(genl: NlSocket): Promise<number | undefined> {
  try {
    const [m] = await genl.request({ type: GENL_ID_CTRL, body: encodeGetFamily(WG_GENL_NAME) }, 'resolve the wireguard genl family');
    return m ? parseFamilyId(m.data) : undefined;
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === ENOENT) return undefined;
    throw e;
  }
}

export class KernelBackend implements WireguardBackend {
  readonly kind = 'kernel' as const;
  private readonly rtnl: NlSocket = openRouteSocket();

  private constructor(
    private readonly genl: NlSocket,
    private readonly family: number,
  ) {}

  /** Opens the backend; throws Sub0Error 'unsupported' when the family is missing. */
  static async open(): Promise<KernelBackend> {
    const genl = new NlSocket(Protocol.GENERIC);
    const family = await wireguardFamilyId(genl);
    if (family === undefined) {
      genl.close();
      throw new Sub0Error('unsupported', 'the kernel has no "wireguard" generic netlink family (module not loaded or not built)');
    }
    return new KernelBackend(genl, family);
  }

  async ensureInterface(ifname: string, privateKey: string, listenPort: number): Promise<void> {
    if (!(await findLink(this.rtnl, ifname))) await createLink(this.rtnl, ifname, 'wireguard');
    const dev = await this.device(ifname);
    if (!dev) throw new Sub0Error('driver', `"${ifname}" exists but is not a WireGuard interface`, { where: ifname });
    const settings: DeviceSettings = {
      ...(dev.privateKey !== privateKey ? { privateKey } : {}),
      ...(dev.listenPort !== listenPort ? { listenPort } : {}),
    };
    if (Object.keys(settings).length > 0) await this.send(ifname, encodeSetDevice(ifname, settings, []));
    const link = await findLink(this.rtnl, ifname);
    if (link && !link.up) await setLinkUp(this.rtnl, link.index, ifname);
  }

  /** The device as the kernel reports it; undefined when there is no such WireGuard interface. */
  async device(ifname: string): Promise<KernelDevice | undefined> {
    try {
      const parts = await this.genl.dump({ type: this.family, body: encodeGetDevice(ifname) }, `get ${ifname}`);
      return parseDeviceDump(parts.map((p) => p.data));
    } catch (e) {
      if (e instanceof NetlinkError && (e.errno === ENODEV || e.errno === 95 /* EOPNOTSUPP: not wireguard */)) return undefined;
      throw new Sub0Error('driver', `WG_CMD_GET_DEVICE failed: ${(e as Error).message}`, { cause: e, where: ifname });
    }
  }

  async observe(ifname: string): Promise<WireguardObserved> {
    const dev = await this.device(ifname);
    const peers = new Map<string, PeerState>();
    for (const p of dev?.peers ?? []) {
      peers.set(p.publicKey, { publicKey: p.publicKey, endpoints: p.endpoint ? [p.endpoint] : [], allowedIps: p.allowedIps, keepalive: p.keepalive, lastHandshake: p.lastHandshake });
    }
    return { listenPort: dev?.listenPort ?? 0, peers };
  }

  async handshakes(ifname: string): Promise<ReadonlyMap<string, number>> {
    return new Map((await this.device(ifname))?.peers.map((p) => [p.publicKey, p.lastHandshake]) ?? []);
  }

  async apply(ifname: string, ops: readonly PeerOp[]): Promise<void> {
    if (ops.length > 0) await this.send(ifname, encodeSetDevice(ifname, {}, ops));
  }

  async deleteInterface(ifname: string): Promise<void> {
    await deleteLink(this.rtnl, ifname);
  }

  async close(): Promise<void> {
    this.genl.close();
    this.rtnl.close();
  }

  private async send(ifname: string, bodies: Buffer[][]): Promise<void> {
    const results = await this.genl.batch(bodies.map((body) => ({ type: this.family, body })), `set ${ifname}`);
    const failed = results.filter((e) => e !== undefined);
    if (failed.length > 0) {
      throw new Sub0Error('driver', `WG_CMD_SET_DEVICE: ${failed.length} of ${bodies.length} messages failed: ${failed[0]!.message}`, { where: ifname });
    }
  }
}
