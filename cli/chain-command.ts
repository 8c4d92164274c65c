/**
 * `sub0 chain …`: run the local lab chain, create a registry on any chain, and read it back.
 *   up        the local chain (chopsticks, in-process), until Ctrl-C
 *   init      create a registry's collections on the chain --endpoint names
 *   status    where the registry is and what it holds
 *   snapshot  the ChainSnapshot at the finalized head (what `sub0 compile --snapshot` reads)
 *   follow    the finalized blocks that change the registry, resuming from a cursor
 *   import    write the entries of a snapshot file as the signer's extrinsics
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { createLogger, logFormat } from '../overlay/logger.js';
import { formatIssue } from '../fabric/issues.js';
import { parseSnapshot } from '../fabric/parse-snapshot.js';
import { Sub0Error } from '../fabric/errors.js';
import { connect } from '../controller/chain/client.js';
import { Follower } from '../controller/chain/follower.js';
import { chainDir, sub0Home } from '../controller/chain/home.js';
import { importSnapshot } from '../controller/chain/import-snapshot.js';
import { keyFromSuri } from '../controller/chain/keys.js';
import { governanceSigners, startLocalChain } from '../controller/chain/local-chain.js';
import { openRegistry } from '../controller/chain/open-registry.js';
import { snapshotToInput } from '../controller/chain/snapshot-input.js';
import { createUniquesRegistry } from '../controller/chain/uniques-registry.js';
import { chainOptions, intFlag, openChain, signerFrom, type ChainFlags } from './chain-options.js';
import { action, printJson, printTable } from './output.js';
import { readJsonFile } from './read-json-file.js';

export function registerChain(program: Command): void {
  const chain = program.command('chain').description('the chain that holds the Logos registry');

  chain
    .command('up')
    .description('run the local lab chain (a real Substrate runtime, offline) until Ctrl-C; state persists in $SUB0_HOME/chain')
    .option('--port <port>', 'WebSocket port (0 picks a free one)', '9944')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--network <id>', 'network id of a new registry', 'lab')
    .option('--name <text>', 'network name of a new registry')
    .option('--fresh', 'forget the stored chain and start from genesis')
    .option('--seed <snapshot>', 'on a new chain, register the entries of this snapshot file (e.g. fabric/examples/lab.json)')
    .option('--rule-governance', 'on a new chain, have ACL rules owned by a 2-of-3 multisig of //Alice, //Bob, //Charlie')
    .option('--log-level <level>', 'pino level', 'info')
    .option('--log-format <format>', 'text | json (default: text on a terminal)')
    .action(
      action(async (o: { port: string; host: string; network: string; name?: string; fresh?: boolean; seed?: string; ruleGovernance?: boolean; logLevel: string; logFormat?: string }) => {
        const log = createLogger({ name: 'sub0-chain', level: o.logLevel, format: logFormat(o.logFormat) });
        const seed = o.seed === undefined ? undefined : parseSnapshot(readJsonFile(o.seed), o.seed);
        const lc = await startLocalChain({
          home: sub0Home(),
          port: intFlag(o.port, 'port')!,
          host: o.host,
          network: o.network,
          ...(o.name ? { networkName: o.name } : {}),
          fresh: o.fresh ?? false,
          ruleGovernance: o.ruleGovernance ?? false,
          log,
        });
        try {
          if (seed && lc.created) await seedChain(lc.endpoint, lc.registry, seed.snapshot, o.ruleGovernance ?? false, log);
          else if (seed) log.info('the chain already existed: --seed ignored (use --fresh to start over)');
          log.info({ endpoint: lc.endpoint, registry: lc.registry, network: lc.network }, 'serving; Ctrl-C stops and keeps the state');
          await untilSignal(log);
        } finally {
          await lc.close();
        }
      }),
    );

  chainOptions(chain.command('init'), { write: true })
    .description('create the collections of a new registry on the chain (the signer becomes the network operator)')
    .requiredOption('--network <id>', 'network id')
    .option('--name <text>', 'network name')
    .requiredOption('--collections <n>', 'first of four free collection numbers (root/DVCIs, nodes, slots, rules)')
    .action(
      action(async (o: ChainFlags & { network: string; name?: string; collections: string }) => {
        const chainAt = await openEndpoint(o);
        try {
          const operator = await signerFrom(o, chainAt.lab);
          const r = await createUniquesRegistry(chainAt.client, {
            network: o.network,
            ...(o.name ? { name: o.name } : {}),
            firstCollection: intFlag(o.collections, 'collections')!,
            operator,
          });
          if (o.json) printJson({ registry: r.locator, block: r.block });
          else process.stdout.write(`registry ${r.locator} created in block #${r.block.number} ${r.block.hash}\n  use --registry ${r.locator}\n`);
        } finally {
          await chainAt.client.close();
        }
      }),
    );

  chainOptions(chain.command('status'))
    .description('the registry: network, operator, finalized block, entry counts')
    .action(
      action(async (o: ChainFlags) => {
        const c = await openChain(o);
        try {
          const head = await c.client.finalizedHead();
          const { snapshot: s, issues } = await c.registry.readSnapshot(head.hash);
          const status = {
            endpoint: c.client.endpoint,
            registry: c.registry.locator,
            network: s.network,
            finalized: head,
            entries: { dvcis: s.dvcis.length, nodes: s.nodes.length, slots: s.slots.length, rules: s.rules.length },
            issues: issues.length,
          };
          if (o.json) printJson(status);
          else
            printTable([
              ['endpoint', status.endpoint],
              ['registry', status.registry],
              ['network', `${s.network.id}${s.network.name ? ` (${s.network.name})` : ''}`],
              ['operator', s.network.operator ?? '-'],
              ['finalized', `#${head.number} ${head.hash}`],
              ['entries', `${s.dvcis.length} dvcis, ${s.nodes.length} nodes, ${s.slots.length} slots, ${s.rules.length} rules`],
              ['issues', String(issues.length)],
            ]);
        } finally {
          await c.close();
        }
      }),
    );

  chainOptions(chain.command('snapshot'))
    .description('read the registry at the finalized head (or --at) as a snapshot: `--json > s.json; sub0 compile --snapshot s.json`')
    .option('--at <block-hash>', 'a finalized block to read at')
    .action(
      action(async (o: ChainFlags & { at?: string }) => {
        const c = await openChain(o);
        try {
          const at = o.at ?? (await c.client.finalizedHead()).hash;
          const { snapshot: s, issues } = await c.registry.readSnapshot(at);
          if (o.json) printJson({ ...snapshotToInput(s), issues });
          else {
            process.stdout.write(`network ${s.network.id} at block #${s.block.number} ${s.block.hash}\n`);
            if (s.dvcis.length) printTable(s.dvcis.map((d) => ['dvci', d.id, d.operator, d.name ?? '']));
            if (s.nodes.length) printTable(s.nodes.map((n) => ['node', n.id, `item ${n.seq}`, n.state, n.dvci, n.wgPublicKey, n.endpoints.join(',') || '-', n.owner]));
            if (s.slots.length) printTable(s.slots.map((x) => ['slot', x.id, `item ${x.seq}`, x.state, x.node ?? '-', `${x.vcpus}/${x.memoryMiB}/${x.diskGiB}`, x.image, x.groups.join(',') || '-', x.owner]));
            if (s.rules.length) printTable(s.rules.map((r) => ['rule', r.id, `${r.from.kind}:${r.from.value}`, '->', `${r.to.kind}:${r.to.value}`, r.proto, r.ports.map((p) => `${p.from}-${p.to}`).join(',') || '*', r.owner]));
            process.stdout.write(issues.length ? `${issues.length} issue(s):\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}\n` : 'no issues\n');
          }
          if (issues.some((i) => i.severity === 'error')) process.exitCode = 3;
        } finally {
          await c.close();
        }
      }),
    );

  chainOptions(chain.command('follow'))
    .description('print each finalized block that changes the registry, once, in order; resumes after the stored cursor')
    .option('--cursor <file>', 'cursor file (default: $SUB0_HOME/chain/follow-<registry>.json)')
    .option('--once', 'stop after catching up with the finalized head')
    .action(
      action(async (o: ChainFlags & { cursor?: string; once?: boolean }) => {
        const c = await openChain(o);
        const log = createLogger({ name: 'sub0-follow', level: 'info', fd: 2 });
        try {
          const start = await c.client.finalizedHead();
          let done: () => void = () => undefined;
          const finished = new Promise<void>((r) => (done = r));
          const f = await Follower.start({
            client: c.client,
            registry: c.registry,
            cursorFile: o.cursor ?? join(chainDir(sub0Home()), `follow-${c.registry.locator}.json`),
            log,
            onBlock: ({ block, touches }) => {
              if (o.json) process.stdout.write(`${JSON.stringify({ block, touches })}\n`);
              else process.stdout.write(`#${block.number} ${block.hash}  ${touches.map((t) => `${t.kind}${t.item === undefined ? '' : ` item ${t.item}`} (${t.event})`).join(', ')}\n`);
            },
            onCaughtUp: (head) => {
              if (o.once && head.number >= start.number) done();
            },
          });
          if (!o.once) void untilSignal(log).then(done);
          await finished;
          await f.stop();
          if (f.error) throw f.error;
        } finally {
          await c.close();
        }
      }),
    );

  chainOptions(chain.command('import'), { write: true })
    .description('register the entries of a snapshot file (owners as in the file); entries already registered are skipped')
    .argument('<snapshot>', 'snapshot JSON file')
    .action(
      action(async (file: string, o: ChainFlags) => {
        const parsed = parseSnapshot(readJsonFile(file), file);
        if (parsed.issues.length) throw new Sub0Error('invalid-input', `fix the file first:\n${parsed.issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`, { where: file });
        const c = await openChain(o);
        try {
          const signer = await signerFrom(o, c.lab);
          const head = await c.client.finalizedHead();
          const r = await importSnapshot(c.registry, head.hash, parsed.snapshot, signer, {
            onProgress: (done, total) => process.stderr.write(`imported ${done}/${total}\n`),
          });
          if (o.json) printJson(r);
          else process.stdout.write(`${r.created} entries registered in ${r.submitted.length} extrinsic(s)${r.skipped.length ? `; already there: ${r.skipped.join(', ')}` : ''}\n${r.submitted.map((s) => `  block #${s.block.number} ${s.block.hash} extrinsic ${s.extrinsic}\n`).join('')}`);
        } finally {
          await c.close();
        }
      }),
    );
}

/** For `chain init`: a registry does not exist yet, so only the endpoint is resolved. */
async function openEndpoint(o: ChainFlags) {
  const { readLocalChainRecord } = await import('../controller/chain/home.js');
  const record = readLocalChainRecord(sub0Home());
  const endpoint = o.endpoint ?? (process.env.SUB0_ENDPOINT || undefined) ?? record?.endpoint;
  if (!endpoint) throw new Sub0Error('not-found', 'no chain to talk to: pass --endpoint ws://… (or run `sub0 chain up`)');
  return { client: await connect(endpoint), lab: record !== undefined && record.endpoint === endpoint };
}

/** Registers a snapshot's entries on the new lab chain, signed by the operator (rules by the governance when there is one). */
async function seedChain(endpoint: string, registry: string, snapshot: ReturnType<typeof parseSnapshot>['snapshot'], governed: boolean, log: Logger): Promise<void> {
  const client = await connect(endpoint);
  try {
    const reg = openRegistry(client, registry);
    const operator = { pair: await keyFromSuri('//Alice', { lab: true }) };
    const governance = governed ? await governanceSigners() : [];
    const head = await client.finalizedHead();
    const r = await importSnapshot(reg, head.hash, snapshot, (kind) => (kind === 'rule' && governed ? governance : [operator]), {
      onProgress: (done, total) => log.info({ done, total }, 'seeding the registry'),
    });
    log.info({ created: r.created, extrinsics: r.submitted.length }, 'registry seeded');
  } finally {
    await client.close();
  }
}

function untilSignal(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
