/**
 * `sub0 slot define|assign|retire`: the VM slots of the registry, as signed extrinsics. The
 * runtime decides who may: the network operator writes slots; a slot's owner may retire
 * (withdraw) it; anyone else is refused.
 * On a node: `sub0 slot status` (the slots its agent runs, from its status.json) and
 * `sub0 slot image-add FILE` (an image into the node's store, by content).
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { Sub0Error } from '../fabric/errors.js';
import { readAgentStatus } from '../overlay/agent/status.js';
import { ImageStore } from '../overlay/slots/image-store.js';
import { action, printJson, printTable } from './output.js';
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

  chainOptions(slot.command('resize'), { write: true })
    .description('change a slot\'s vCPUs, memory or disk: its node restarts the VM with them (a disk only grows)')
    .argument('<id>', 'slot id')
    .option('--vcpus <n>', 'virtual CPUs')
    .option('--memory <MiB>', 'memory in MiB')
    .option('--disk <GiB>', 'disk in GiB')
    .action(
      action(async (id: string, o: ChainFlags & { vcpus?: string; memory?: string; disk?: string }) => {
        const fields = {
          ...(o.vcpus !== undefined ? { vcpus: intFlag(o.vcpus, 'vcpus') } : {}),
          ...(o.memory !== undefined ? { memoryMiB: intFlag(o.memory, 'memory') } : {}),
          ...(o.disk !== undefined ? { diskGiB: intFlag(o.disk, 'disk') } : {}),
        };
        if (Object.keys(fields).length === 0) throw new Sub0Error('invalid-input', 'give at least one of --vcpus, --memory, --disk');
        await submitChanges(o, [{ op: 'update', kind: 'slot', id, fields }], `slot ${id} resized`);
      }),
    );

  slot
    .command('status')
    .description('the slots this node\'s agent runs (from its status.json): phase, uptime, restarts, last error')
    .option('--state-dir <dir>', 'the agent\'s state directory', '/var/lib/sub0/agent')
    .option('--json', 'print JSON')
    .action(
      action((o: { stateDir: string; json?: boolean }) => {
        const st = readAgentStatus(o.stateDir);
        if (!st) throw new Sub0Error('not-found', `no agent status in ${o.stateDir} (is the agent running there, with --slots?)`);
        const slots = st.slots ?? [];
        if (o.json) return printJson(slots);
        if (slots.length === 0) return void process.stdout.write(`no slots run here (${st.node ?? 'node unknown'})\n`);
        const now = Date.now();
        const age = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : ms < 7_200_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`);
        printTable(
          slots.map((x) => [x.id, x.phase, x.startedAt ? age(now - x.startedAt) : '-', String(x.restarts), `${x.vcpus} vCPU, ${x.memoryMiB} MiB, ${x.diskGiB} GiB`, x.image.slice(0, 19), x.lastError ? `${x.lastError.code}: ${x.lastError.message}` : '']),
          ['SLOT', 'PHASE', 'UP', 'RESTARTS', 'RESOURCES', 'IMAGE', 'LAST ERROR'],
        );
      }),
    );

  slot
    .command('image-add')
    .description('put a slot image (a tar of vmlinuz and initrd.img) into this node\'s store; prints the ref slots name it by')
    .argument('<file>', 'the image file')
    .option('--state-dir <dir>', 'the agent\'s state directory', '/var/lib/sub0/agent')
    .action(
      action(async (file: string, o: { stateDir: string }) => {
        const store = new ImageStore(join(o.stateDir, 'images'));
        const ref = await store.add(file);
        await store.boot(ref); // unpacked and checked now: a bad file is refused here, not at a slot's start
        process.stdout.write(`${ref}\n`);
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
