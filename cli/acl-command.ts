/**
 * `sub0 acl allow|revoke`: ACL rules in the registry, as signed extrinsics. Where the rules are
 * governed by a multisig of the operator's governance accounts, each signatory runs the same
 * command with `--multisig T:A,B,C`; the change runs at the T-th approval.
 */
import type { Command } from 'commander';
import { action } from './output.js';
import { chainOptions, submitChanges, type ChainFlags } from './chain-options.js';

export function registerAcl(program: Command): void {
  const acl = program.command('acl').description('allow and revoke traffic between slots (deny by default)');

  chainOptions(acl.command('allow'), { write: true, multisig: true })
    .description('add a rule: FROM may reach TO over PROTO on PORTS')
    .argument('<id>', 'rule id')
    .requiredOption('--from <selector>', 'slot:ID, group:NAME or owner:ACCOUNT')
    .requiredOption('--to <selector>', 'slot:ID or group:NAME (slots the rule\'s owner owns)')
    .requiredOption('--proto <proto>', 'tcp | udp | icmp | any')
    .option('--ports <list>', 'tcp/udp ports, e.g. 80,8000-8100')
    .option('--owner <account>', 'the rule\'s owner (default: the signer, or the multisig)')
    .action(
      action(async (id: string, o: ChainFlags & { from: string; to: string; proto: string; ports?: string; owner?: string }) => {
        const ports = o.ports === undefined ? [] : o.ports.split(',').map((p) => p.trim()).filter(Boolean);
        const fields = { id, from: o.from, to: o.to, proto: o.proto, ports };
        await submitChanges(o, [{ op: 'create', kind: 'rule', fields, ...(o.owner ? { owner: o.owner } : {}) }], `rule ${id} allowed`);
      }),
    );

  chainOptions(acl.command('revoke'), { write: true, multisig: true })
    .description('remove a rule (its owner or the operator)')
    .argument('<id>', 'rule id')
    .action(
      action(async (id: string, o: ChainFlags) => {
        await submitChanges(o, [{ op: 'remove', kind: 'rule', id }], `rule ${id} revoked`);
      }),
    );
}
