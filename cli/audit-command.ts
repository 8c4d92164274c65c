/**
 * `sub0 audit NODE`: every rule the node enforces, traced to the transaction that created it and
 * the one that last changed it (block, extrinsic index, signer), the config revision and hash
 * the node reports having applied (its signed status), and the gatekeeper's decisions about it.
 *
 * The trail is the controller's index (controller/audit/), caught up from the chain to the
 * finalized head, or read from the chain alone with --rebuild (or when there is no index). Run
 * it where the controller runs (its state dir holds the index and the broker login); without a
 * broker it still prints the chain's part.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { pino } from 'pino';
import { OBSERVER_LOGIN } from '../fabric/broker-login.js';
import { compile } from '../fabric/compile.js';
import { Sub0Error } from '../fabric/errors.js';
import type { NodeConfig } from '../fabric/node-config.js';
import { txLabel } from '../controller/audit/audit-record.js';
import { auditNode, type AuditTx, type NodeAudit } from '../controller/audit/audit-report.js';
import { loadAuditTrail, type TrailSource } from '../controller/audit/audit-trail.js';
import { readNodeApplied, type NodeApplied } from '../controller/audit/node-applied.js';
import { sub0Home } from '../controller/chain/home.js';
import { MqttLink } from '../overlay/mqtt/mqtt-link.js';
import { readLabRecord } from '../lab/lab-record.js';
import { chainOptions, intFlag, openChain, type ChainFlags } from './chain-options.js';
import { brokerOf } from './mesh-command.js';
import { action, printJson, printTable } from './output.js';

type AuditFlags = ChainFlags & { stateDir?: string; broker?: string; rebuild?: boolean; from?: string };

/** `sub0 audit --json`: the node's audit, where its trail came from, and what the node runs. */
export interface AuditOutput extends NodeAudit {
  readonly network: string;
  readonly block: { readonly number: number; readonly hash: string };
  readonly trail: TrailSource;
  /** The config the rules are those of: the one published for the node, or (no broker) the chain's. */
  readonly config: { readonly source: 'published' | 'chain'; readonly revision: { readonly number: number; readonly hash: string } | null; readonly hash: string | null };
  /** What the node's signed status says it applied; null when it did not say (or could not be read). */
  readonly applied: { readonly revision: { readonly number: number; readonly hash: string }; readonly hash: string } | null;
  /** Why the broker's part is missing or partial, if it is. */
  readonly brokerError: string | null;
}

export function registerAudit(program: Command): void {
  chainOptions(program.command('audit'))
    .argument('<node>', 'the node to audit')
    .description('the rules a node enforces, each traced to its transactions; its applied config; the quarantine decisions about it')
    .option('--state-dir <dir>', "the controller's state dir, with its audit index and broker login (default: the lab's, or $SUB0_HOME/controller)")
    .option('--broker <url>', "the broker (default: the running lab's, or the one the controller recorded)")
    .option('--rebuild', "read the whole trail from the chain, not from the controller's index")
    .option('--from <block>', 'with --rebuild: the first block to read (default 1)')
    .action(
      action(async (node: string, o: AuditFlags) => {
        const from = intFlag(o.from, 'from');
        if (from !== undefined && !o.rebuild) throw new Sub0Error('invalid-input', '--from goes with --rebuild (without it, the trail starts where the index does)');
        const chain = await openChain(o);
        try {
          const head = await chain.client.finalizedHead();
          const read = await chain.registry.readSnapshot(head.hash);
          const snapshot = read.snapshot;
          const entry = snapshot.nodes.find((n) => n.id === node);
          if (!entry) {
            const known = snapshot.nodes.map((n) => n.id).join(', ') || 'none';
            throw new Sub0Error('not-found', `node "${node}" is not in registry ${chain.registry.locator} at block #${head.number} (its nodes: ${known})`);
          }
          const { records, source } = await loadAuditTrail(chain.client, chain.registry, { dir: stateDirOf(o), head, ...(o.rebuild ? { rebuild: true } : {}), ...(from !== undefined ? { from } : {}), onProgress: progress() });
          const { applied, brokerError } = await brokerPart(o, snapshot.network.id, node, entry.identityKey);
          const published = applied?.published ?? null;
          // The rules the node runs: those of its published config, else what the chain gives it now.
          const config: Pick<NodeConfig, 'acl' | 'revision'> | undefined = published?.config ?? compile(snapshot).configs.get(node);
          const audit = auditNode(records, read.items, node, config ?? { acl: [] });
          if (!audit) throw new Sub0Error('internal', `node "${node}" is in the snapshot but no registry item holds it`);
          const status = applied?.status ?? null;
          const out: AuditOutput = {
            network: snapshot.network.id,
            block: head,
            trail: source,
            ...audit,
            config: { source: published ? 'published' : 'chain', revision: config?.revision ?? null, hash: published?.hash ?? null },
            applied: status?.applied ? { revision: status.applied.revision, hash: status.applied.hash } : null,
            brokerError: brokerError ?? applied?.statusError ?? null,
          };
          if (o.json) printJson(out);
          else printHuman(out);
        } finally {
          await chain.close();
        }
      }),
    );
}

/** The controller's state dir, found as `sub0 mesh status` finds it. */
function stateDirOf(o: AuditFlags): string {
  const lab = readLabRecord();
  return o.stateDir ?? (lab?.live && lab.record.ready ? lab.record.controllerDir : undefined) ?? join(sub0Home(), 'controller');
}

/** The node's published config and signed status; a broker that cannot be reached is reported, not fatal. */
async function brokerPart(o: AuditFlags, network: string, node: string, identityKey: string | undefined): Promise<{ applied?: NodeApplied; brokerError?: string }> {
  let where: { url: string; secret: string };
  try {
    where = brokerOf(o);
  } catch (e) {
    return { brokerError: (e as Error).message };
  }
  const link = new MqttLink({ url: where.url, clientId: `${OBSERVER_LOGIN}-${process.pid}`, username: OBSERVER_LOGIN, password: () => where.secret, log: pino({ level: 'silent' }), reconnectMs: 0 });
  try {
    await link.waitConnected(5000);
    return { applied: await readNodeApplied(link, network, node, identityKey) };
  } catch (e) {
    return { brokerError: `cannot read the broker at ${where.url}: ${(e as Error).message}` };
  } finally {
    await link.close(true);
  }
}

/** One progress line on stderr while blocks are read from the chain (rewritten in place on a terminal). */
function progress(): (done: number, total: number, block: number) => void {
  const tty = process.stderr.isTTY;
  let shown = 0;
  return (done, total, block) => {
    if (tty) {
      if (done === total || Date.now() - shown > 100) {
        process.stderr.write(`\rreading the audit trail from the chain: block #${block} (${done}/${total})${done === total ? '\n' : ''}`);
        shown = Date.now();
      }
    } else if (done === 1 || done === total) process.stderr.write(`reading the audit trail from the chain: block #${block} (${done}/${total})\n`);
  };
}

function printHuman(a: AuditOutput): void {
  const w = process.stdout;
  w.write(`node ${a.node} (item ${a.item}, ${a.state}) in network ${a.network} at block #${a.block.number}\n`);
  w.write(`registered: ${a.registered ? tx(a.registered) : before(a)}\n`);
  const t = a.trail;
  w.write(
    t.kind === 'index'
      ? `trail: ${t.file}, complete to #${t.indexThrough}${t.blocksRead ? `, then ${t.blocksRead} block(s) read from the chain` : ''}\n\n`
      : `trail: read from the chain, blocks #${t.since + 1}-#${t.head.number}\n\n`,
  );
  const rows = a.rules.map((r) => [
    r.rule,
    r.from === null ? '(no longer on chain)' : `${r.from} -> ${r.to}`,
    r.proto === null ? '-' : `${r.proto}${r.ports.length ? `/${r.ports.join(',')}` : ''}`,
    r.created ? tx(r.created) : before(a),
    r.lastChanged && r.changes > 1 ? tx(r.lastChanged) : r.created ? '(never changed)' : '-',
  ]);
  if (rows.length) printTable(rows, ['RULE', 'FROM -> TO', 'PROTO/PORTS', 'CREATED', 'LAST CHANGED']);
  else w.write('no rules: the node enforces none (deny all)\n');
  w.write('\n');
  const cfg = a.config.revision ? `revision #${a.config.revision.number}${a.config.hash ? `, hash ${a.config.hash.slice(0, 12)}` : ''}` : 'none';
  w.write(`config: ${a.config.source === 'published' ? `published ${cfg}` : `none read from the broker; the rules above are those the chain gives the node at #${a.block.number}`}\n`);
  if (a.applied) {
    const same = a.config.hash === null ? '' : a.applied.hash === a.config.hash ? ' (the published one)' : ' (not yet the published one)';
    w.write(`applied (the node's signed status): revision #${a.applied.revision.number}, hash ${a.applied.hash.slice(0, 12)}${same}\n`);
  } else w.write('applied (the node\'s signed status): unknown\n');
  if (a.brokerError) w.write(`  broker: ${a.brokerError}\n`);
  w.write('\n');
  if (!a.decisions.length) w.write('quarantine decisions: none\n');
  else {
    w.write('quarantine decisions:\n');
    printTable(a.decisions.map((d) => [`  ${d.state ?? '(state cleared)'}`, tx(d)]));
  }
}

/** `#41-1 by 5Grwva…`, and who it acted for through a proxy or multisig. */
function tx(t: AuditTx): string {
  const who = t.signer ? ` by ${short(t.signer)}` : '';
  const as = t.via.length && t.actor ? ` as ${short(t.actor)} (${t.via.join(', ')})` : '';
  return `${txLabel({ block: t.block, extrinsic: t.extrinsic ?? undefined })}${who}${as}`;
}

function short(account: string): string {
  return account.length > 12 ? `${account.slice(0, 8)}…` : account;
}

function before(a: AuditOutput): string {
  return a.trail.since > 0 ? `before #${a.trail.since + 1} (--rebuild reads the chain from block 1)` : 'not found on chain';
}
