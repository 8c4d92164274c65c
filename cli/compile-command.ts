/**
 * `sub0 compile`: the offline compiler. Prints what each node would receive from a snapshot file,
 * and every issue found in it (a policy check: exit 3 when there are errors).
 */
import type { Command } from 'commander';
import { compile } from '../fabric/compile.js';
import { configHash } from '../fabric/encoding.js';
import { formatIssue } from '../fabric/issues.js';
import type { NodeConfig } from '../fabric/node-config.js';
import { parseSnapshot } from '../fabric/parse-snapshot.js';
import { Sub0Error } from '../fabric/errors.js';
import { action, printJson, printTable } from './output.js';
import { readJsonFile } from './read-json-file.js';

export function registerCompile(program: Command): void {
  program
    .command('compile')
    .description('compile a chain snapshot file into per-node configs and report its issues (offline)')
    .requiredOption('-s, --snapshot <file>', 'snapshot JSON (see fabric/examples/)')
    .option('-n, --node <id>', 'print only this node')
    .option('--json', 'machine-readable output')
    .action(
      action((opts: { snapshot: string; node?: string; json?: boolean }) => {
        const parsed = parseSnapshot(readJsonFile(opts.snapshot), opts.snapshot);
        const result = compile(parsed.snapshot);
        const issues = [...parsed.issues, ...result.issues];
        let configs = [...result.configs.values()];
        if (opts.node !== undefined) {
          configs = configs.filter((c) => c.node === opts.node);
          if (configs.length === 0) throw new Sub0Error('not-found', `node "${opts.node}" gets no config (unknown, pending, retired or invalid)`);
        }
        if (opts.json) printJson({ block: parsed.snapshot.block, configs: configs.map((c) => ({ hash: configHash(c), config: c })), issues });
        else printHuman(configs, issues.map(formatIssue));
        if (issues.some((i) => i.severity === 'error')) process.exitCode = 3;
      }),
    );
}

/** A slot's two addresses in full; a longer list shortened (--json has it all). */
function addresses(list: readonly string[]): string {
  return list.length <= 2 ? list.join(' ') : `${list.slice(0, 2).join(' ')} +${list.length - 2} more`;
}

function printHuman(configs: readonly NodeConfig[], issues: readonly string[]): void {
  for (const c of configs) {
    process.stdout.write(`node ${c.node} (${c.mode}, dvci ${c.dvci}) at block #${c.revision.number}  hash ${configHash(c).slice(0, 16)}\n`);
    process.stdout.write(`  interface ${c.interface.addresses.join(' ')} listen ${c.interface.listenPort}\n`);
    if (c.peers.length) printTable(c.peers.map((p) => ['  peer', p.node, p.publicKey, p.endpoints.join(',') || '-', `${p.allowedIps.length} allowed ips`]));
    if (c.slots.length) printTable(c.slots.map((s) => ['  slot', s.id, s.ipv4, `${s.vcpus} vCPU ${s.memoryMiB} MiB ${s.diskGiB} GiB`, s.image]));
    if (c.acl.length) printTable(c.acl.map((a) => ['  allow', addresses(a.src), '->', addresses(a.dst), a.proto, a.proto === 'tcp' || a.proto === 'udp' ? `${a.ports[0]}-${a.ports[1]}` : '*', `(${a.rule})`]));
    process.stdout.write('\n');
  }
  process.stdout.write(issues.length ? `${issues.length} issue(s):\n${issues.map((i) => `  ${i}`).join('\n')}\n` : 'no issues\n');
}
