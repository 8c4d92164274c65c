/**
 * Whether two NodeConfigs ask a node for the same thing (revision aside), by walking them rather
 * than encoding and hashing both: a controller that recompiled the whole network after a node
 * changed (its state, its endpoint) finds the few configs that changed in milliseconds, and
 * publishes only those. Exact: it answers as contentHash(a) === contentHash(b) does (the tests
 * check both on every pair they compile). Pure.
 */
import type { AclEntry, HostedSlot, NodeConfig, Peer } from './node-config.js';
import { sameList } from './same-list.js';

/** Every member of a NodeConfig this compares (the tests check it is every member there is). */
export const COMPARED_MEMBERS = ['version', 'network', 'node', 'dvci', 'controllers', 'revision', 'mode', 'interface', 'peers', 'slots', 'acl'] as const;


const samePeer = (a: Peer, b: Peer): boolean =>
  a === b || (a.node === b.node && a.publicKey === b.publicKey && a.keepalive === b.keepalive && sameList(a.endpoints, b.endpoints) && sameList(a.allowedIps, b.allowedIps));

const sameAcl = (a: AclEntry, b: AclEntry): boolean =>
  a === b || (a.rule === b.rule && a.proto === b.proto && a.ports[0] === b.ports[0] && a.ports[1] === b.ports[1] && sameList(a.src, b.src) && sameList(a.dst, b.dst));

const sameSlot = (a: HostedSlot, b: HostedSlot): boolean =>
  a === b || (a.id === b.id && a.ipv4 === b.ipv4 && a.ipv6 === b.ipv6 && a.vcpus === b.vcpus && a.memoryMiB === b.memoryMiB && a.diskGiB === b.diskGiB && a.image === b.image);

function sameEach<T>(a: readonly T[], b: readonly T[], same: (x: T, y: T) => boolean): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!same(a[i]!, b[i]!)) return false;
  return true;
}

/** True when `a` and `b` differ at most in their revision. */
export function sameConfigContent(a: NodeConfig, b: NodeConfig): boolean {
  return (
    a.version === b.version &&
    a.network === b.network &&
    a.node === b.node &&
    a.dvci === b.dvci &&
    a.mode === b.mode &&
    sameList(a.controllers, b.controllers) &&
    a.interface.listenPort === b.interface.listenPort &&
    sameList(a.interface.addresses, b.interface.addresses) &&
    sameEach(a.peers, b.peers, samePeer) &&
    sameEach(a.slots, b.slots, sameSlot) &&
    sameEach(a.acl, b.acl, sameAcl)
  );
}
