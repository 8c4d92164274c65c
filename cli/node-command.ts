/**
 * `sub0 node register|update|retire` and `sub0 dvci define`: registry writes for machines and
 * the data centres they sit in, as signed extrinsics. The runtime decides who may: the network
 * operator writes entries; a node's owner may retire (withdraw) it; anyone else is refused.
 */
import type { Command } from 'commander';
import { action } from './output.js';
import { chainOptions, collect, intFlag, resourcesFlag, submitChanges, type ChainFlags } from './chain-options.js';

interface NodeFlags extends ChainFlags {
  dvci?: string;
  key?: string;
  identity?: string;
  addr?: string[];
  listenPort?: string;
  state?: string;
  capacity?: string;
  salt?: string;
  owner?: string;
}

export function registerNode(program: Command): void {
  const node = program.command('node').description('register and retire hypervisor nodes in the chain registry');

  chainOptions(node.command('register'), { write: true })
    .description('register a node (signed by the network operator; --owner is the machine owner)')
    .argument('<id>', 'node id (a-z 0-9 . _ -, up to 32)')
    .requiredOption('--dvci <id>', 'the DVCI (data centre) the node belongs to')
    .requiredOption('--key <wg-public-key>', 'the node\'s WireGuard public key (base64)')
    .option('--identity <hex>', 'the node\'s ed25519 identity public key (hex; `sub0 agent keys` prints it): its broker login and status signatures')
    .option('--addr <host:port>', 'an endpoint peers reach the node at (repeatable)', collect)
    .option('--listen-port <port>', 'WireGuard listen port (default 51820)')
    .option('--state <state>', 'pending | active | quarantined | retired', 'active')
    .option('--capacity <v/m/d>', 'what the machine offers: VCPUS/MEMORY_MIB/DISK_GIB')
    .option('--salt <n>', 'address salt 0-255')
    .option('--owner <account>', 'the node\'s owner (default: the signer)')
    .action(
      action(async (id: string, o: NodeFlags) => {
        const fields = nodeFields(o);
        await submitChanges(o, [{ op: 'create', kind: 'node', fields: { id, ...fields }, ...(o.owner ? { owner: o.owner } : {}) }], `node ${id} registered`);
      }),
    );

  chainOptions(node.command('update'), { write: true })
    .description('change some fields of a node (the runtime lets only the operator)')
    .argument('<id>', 'node id')
    .option('--dvci <id>', 'move to another DVCI')
    .option('--key <wg-public-key>', 'a new WireGuard public key')
    .option('--identity <hex>', 'a new identity public key (hex)')
    .option('--addr <host:port>', 'replace the endpoints (repeatable)', collect)
    .option('--listen-port <port>', 'WireGuard listen port')
    .option('--state <state>', 'pending | active | quarantined | retired')
    .option('--capacity <v/m/d>', 'VCPUS/MEMORY_MIB/DISK_GIB')
    .action(
      action(async (id: string, o: NodeFlags) => {
        await submitChanges(o, [{ op: 'update', kind: 'node', id, fields: nodeFields(o) }], `node ${id} updated`);
      }),
    );

  chainOptions(node.command('retire'), { write: true })
    .description('retire a node: the operator marks it retired; its owner withdraws it from the registry')
    .argument('<id>', 'node id')
    .action(
      action(async (id: string, o: ChainFlags) => {
        await submitChanges(o, [{ op: 'retire', kind: 'node', id }], `node ${id} retired`);
      }),
    );

  for (const [verb, state, what] of [
    ['quarantine', 'quarantined', 'cut a node off the mesh: its peers drop it and it loses broker access (the gatekeeper does this itself)'],
    ['readmit', 'active', 'take a quarantined node back into the mesh'],
  ] as const) {
    chainOptions(node.command(verb), { write: true, proxy: true })
      .description(`${what}; signed by the operator, or by its gatekeeper with --proxy-for OPERATOR`)
      .argument('<id>', 'node id')
      .action(
        action(async (id: string, o: ChainFlags) => {
          await submitChanges(o, [{ op: 'update', kind: 'node', id, fields: { state } }], `node ${id} ${state === 'active' ? 'readmitted' : 'quarantined'}`);
        }),
      );
  }

  const dvci = program.command('dvci').description('data centres (DVCIs) in the chain registry');
  dvciOptions(chainOptions(dvci.command('define'), { write: true }), 'a controller key allowed to sign its nodes\' configs (repeatable; `sub0 controller key` prints it)')
    .description('define a DVCI (signed by the network operator; --owner is its operator)')
    .option('--owner <account>', 'the DVCI\'s operator (default: the signer)')
    .action(
      action(async (id: string, o: DvciFlags & { owner?: string }) => {
        await submitChanges(o, [{ op: 'create', kind: 'dvci', fields: { id, ...dvciFields(o) }, ...(o.owner ? { owner: o.owner } : {}) }], `dvci ${id} defined`);
      }),
    );
  dvciOptions(chainOptions(dvci.command('update'), { write: true }), 'the controller keys allowed to sign its nodes\' configs (repeatable; replaces the set)')
    .description('change a DVCI: its name, region, or the controller keys it authorizes (the set given replaces the old one)')
    .option('--no-controllers', 'authorize no controller keys (nodes keep the keys they were installed with)')
    .action(
      action(async (id: string, o: DvciFlags) => {
        await submitChanges(o, [{ op: 'update', kind: 'dvci', id, fields: dvciFields(o) }], `dvci ${id} updated`);
      }),
    );
}

function dvciOptions(cmd: Command, controller: string): Command {
  return cmd.argument('<id>', 'DVCI id').option('--name <text>', 'display name').option('--region <text>', 'region').option('--controller <hex>', controller, collect);
}

interface DvciFlags extends ChainFlags {
  name?: string;
  region?: string;
  controller?: string[];
  /** false with --no-controllers */
  controllers?: boolean;
}

function dvciFields(o: DvciFlags): Record<string, unknown> {
  return {
    ...(o.name ? { name: o.name } : {}),
    ...(o.region ? { region: o.region } : {}),
    ...(o.controller ? { controllers: o.controller.map((k) => k.toLowerCase()) } : o.controllers === false ? { controllers: [] } : {}),
  };
}

/** The node fields the flags set; absent flags are left out (an update keeps those fields). */
function nodeFields(o: NodeFlags): Record<string, unknown> {
  return {
    dvci: o.dvci,
    wgPublicKey: o.key,
    identityKey: o.identity?.toLowerCase(),
    endpoints: o.addr,
    listenPort: intFlag(o.listenPort, 'listen-port'),
    state: o.state,
    capacity: resourcesFlag(o.capacity, 'capacity'),
    salt: intFlag(o.salt, 'salt'),
  };
}
