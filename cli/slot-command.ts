/**
 * `sub0 slot define|assign|retire`: the VM slots of the registry, as signed extrinsics. The
 * runtime decides who may: the network operator writes slots; a slot's owner may retire
 * (withdraw) it; anyone else is refused.
 */
import type { Command } from 'commander';
import { action } from './output.js';
import { chainOptions, collect, intFlag, submitChanges, type ChainFlags } from './chain-options.js';

export function registerSlot(program: Command): void {
  const slot = program.command('slot').description('define, place and retire VM slots in the chain registry');

  chainOptions(slot.command('define'), { write: true })
    .description('define a slot, not yet placed on a node (signed by the operator; --owner is the tenant)')
    .argument('<id>', 'slot id')
    .requiredOption('--vcpus <n>', 'virtual CPUs')
    .requiredOption('--memory <MiB>', 'memory in MiB')
    .requiredOption('--disk <GiB>', 'disk in GiB')
    .requiredOption('--image <name>', 'the image the slot boots')
    .option('--group <name>', 'a group the slot is in, for ACL selectors (repeatable)', collect)
    .option('--node <id>', 'place it at once on this node')
    .option('--owner <account>', 'the slot\'s owner (default: the signer)')
    .action(
      action(async (id: string, o: ChainFlags & { vcpus: string; memory: string; disk: string; image: string; group?: string[]; node?: string; owner?: string }) => {
        const fields = {
          id,
          vcpus: intFlag(o.vcpus, 'vcpus'),
          memoryMiB: intFlag(o.memory, 'memory'),
          diskGiB: intFlag(o.disk, 'disk'),
          image: o.image,
          groups: o.group ?? [],
          node: o.node ?? null,
          state: o.node ? 'assigned' : 'defined',
        };
        await submitChanges(o, [{ op: 'create', kind: 'slot', fields, ...(o.owner ? { owner: o.owner } : {}) }], `slot ${id} defined`);
      }),
    );

  chainOptions(slot.command('assign'), { write: true })
    .description('place a slot on a node')
    .argument('<id>', 'slot id')
    .requiredOption('--node <id>', 'the node that hosts it')
    .action(
      action(async (id: string, o: ChainFlags & { node: string }) => {
        await submitChanges(o, [{ op: 'update', kind: 'slot', id, fields: { node: o.node, state: 'assigned' } }], `slot ${id} assigned to ${o.node}`);
      }),
    );

  chainOptions(slot.command('retire'), { write: true })
    .description('retire a slot: the operator marks it retired; its owner withdraws it from the registry')
    .argument('<id>', 'slot id')
    .action(
      action(async (id: string, o: ChainFlags) => {
        await submitChanges(o, [{ op: 'retire', kind: 'slot', id }], `slot ${id} retired`);
      }),
    );
}
