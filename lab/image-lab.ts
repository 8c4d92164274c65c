/**
 * A booted sub0 image as a node of a namespace lab: a tap device on the lab's bridge (its
 * underlay, where the broker answers at the data center's address) and the settings that make
 * the image join this lab with a static address (the underlay has no DHCP server).
 */
import { spawnSync } from 'node:child_process';
import type { NetworkSettings } from '../bootimage/settings.js';
import { LAB_DVCI, LAB_NETWORK, type ControlLab } from './control-lab.js';
import { ipIn } from './netns.js';

/** A tap on the lab's bridge; returns what removes it. */
export function labTap(cl: ControlLab, ifname: string): () => void {
  const br = cl.lab.bridgeNs;
  ipIn(br, 'tuntap', 'add', 'dev', ifname, 'mode', 'tap');
  ipIn(br, 'link', 'set', ifname, 'master', 'br0', 'up');
  return () => void spawnSync('ip', ['-n', br, 'link', 'del', ifname]);
}

/** Settings for an image that joins this lab as `node` at `address` (an unused 10.77.0.x). */
export function labImageSettings(cl: ControlLab, node: string, address: string): NetworkSettings {
  return { network: LAB_NETWORK, dvci: LAB_DVCI, brokers: [cl.nodeBrokerUrl], controllers: cl.controllerKeys, node, listenPort: 51820, static: { interface: 'eth0', address: `${address}/24`, dns: [] } };
}
