/**
 * `sub0 agent plan --dry-run`: what the agent would change, against the live kernel, for the
 * config file given. Verifies the envelope as the agent would, reads the kernel through the same
 * drivers, and prints fabric's plan. Changes nothing: no interface is created, no wireguard-go
 * spawned, no state file written (the ACL driver's idempotent attach() is the one call with
 * write access, and on a running node it finds everything in place).
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACCEPTED_FILE } from './config-gate.js';
import { Sub0Error } from '../../fabric/errors.js';
import { plan, type Op } from '../../fabric/plan.js';
import { verifyConfig } from '../../fabric/signing.js';
import { slotPrefixes } from '../../fabric/address.js';
import { findLink, openRouteSocket } from '../routes/links.js';
import { RtnetlinkRouteDriver } from '../routes/rtnetlink-route-driver.js';
import { openWireguardBackend } from '../wireguard/probe.js';
import { openAclDriver } from './acl-loader.js';
import { ifnameOf, parseAgentConfig, type AgentFlags } from './config.js';
import { desiredDataplane } from './desired.js';
import { observeDataplane } from './reconcile-step.js';

export interface PlanOutput {
  readonly node: string;
  readonly ifname: string;
  readonly revision: number;
  readonly ops: readonly Op[];
  readonly notes: readonly string[];
}

export async function planDryRun(flags: AgentFlags): Promise<PlanOutput> {
  // With only brokers given, plan for the config the agent accepted last (kept in its state dir).
  const config = parseAgentConfig(flags.config || flags.broker ? flags : { ...flags, config: join(flags.stateDir ?? '/var/lib/sub0/agent', ACCEPTED_FILE) });
  const file = config.config ?? join(config.stateDir, ACCEPTED_FILE);
  let wire: Buffer;
  try {
    wire = readFileSync(file);
  } catch (e) {
    throw new Sub0Error('not-found', `cannot read the config: ${(e as Error).message}`, { where: file, cause: e });
  }
  const { config: nodeConfig } = verifyConfig(wire, config.trust.map((k) => hexToBytes(k)));
  if (config.node !== undefined && nodeConfig.node !== config.node) {
    throw new Sub0Error('invalid-input', `config is for node "${nodeConfig.node}", not "${config.node}"`, { where: file });
  }
  const ifname = ifnameOf({ ...config, node: config.node ?? nodeConfig.node });
  const notes: string[] = [];
  const wg = await openWireguardBackend({ prefer: config.wgBackend, ifname, runDir: config.stateDir, socketDir: config.socketDir });
  const routes = new RtnetlinkRouteDriver();
  let acl = (await openAclDriver(config.acl, config.pinDir)).driver;
  try {
    if (acl) {
      // The ACL driver reads its pinned maps once attached. attach() is idempotent: where the
      // agent already runs it finds the pins and the hook in place and changes nothing. Where
      // there is no interface yet, nothing is attached and every ACL tuple shows as an add.
      const nl = openRouteSocket();
      const exists = (await findLink(nl, ifname)) !== undefined;
      nl.close();
      if (exists) {
        try {
          await acl.attach(ifname, slotPrefixes(nodeConfig.network));
        } catch (e) {
          notes.push(`ACL maps not readable (${(e as Error).message}): ACL ops not planned`);
          acl = undefined;
        }
      } else {
        notes.push(`no interface ${ifname} yet: everything shows as added`);
      }
    }
    const desired = await desiredDataplane(nodeConfig);
    const observed = await observeDataplane({ wg, routes, acl }, ifname, desired.acl);
    return { node: nodeConfig.node, ifname, revision: nodeConfig.revision.number, ops: plan(desired, observed), notes };
  } finally {
    await wg.close();
    await routes.close();
  }
}

/** One line per op, `+` adds, `~` changes, `-` removes, like a diff of `wg`/`ip` state. */
export function formatOp(o: Op, ifname: string): string {
  switch (o.op) {
    case 'address-add': return `+ address ${o.cidr} dev ${ifname}`;
    case 'address-remove': return `- address ${o.cidr} dev ${ifname}`;
    case 'listen-port': return `~ listen-port ${o.port}`;
    case 'peer-add': return `+ peer ${o.peer.publicKey} endpoint ${o.peer.endpoints[0] ?? '(none)'} allowed-ips ${o.peer.allowedIps.join(',')} keepalive ${o.peer.keepalive}`;
    case 'peer-update': return `~ peer ${o.peer.publicKey} ${o.changes.join(',')}`;
    case 'peer-remove': return `- peer ${o.publicKey}`;
    case 'route-add': return `+ route ${o.dst} dev ${ifname} proto 83`;
    case 'route-remove': return `- route ${o.dst} dev ${ifname} proto 83`;
    case 'acl-add': return `+ allow ${o.key}`;
    case 'acl-remove': return `- allow ${o.key}`;
  }
}
