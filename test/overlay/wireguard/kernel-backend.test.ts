/**
 * The shared backend suite against the kernel's WireGuard (generic netlink). Where the kernel has
 * no "wireguard" family (no module: this machine, CI), the suite is skipped and says why.
 */
import { Protocol } from 'netlink';
import t from 'tap';
import { NlSocket } from '../../../overlay/netlink/nl-socket.js';
import { KernelBackend, wireguardFamilyId } from '../../../overlay/wireguard/kernel-backend.js';
import { useOwnNetns } from '../../helpers/netns-lab.js';
import { backendSuite } from './backend-suite.js';

const probe = new NlSocket(Protocol.GENERIC);
const family = await wireguardFamilyId(probe);
probe.close();

if (family === undefined) {
  t.test('kernel WireGuard backend (generic netlink)', { skip: 'the kernel has no "wireguard" generic netlink family (module absent): the kernel backend cannot run here' }, () => undefined);
} else {
  await useOwnNetns(t, 'wgk');
  backendSuite(t, { ifname: `s0k${process.pid.toString(36)}`, open: () => KernelBackend.open() });
}
