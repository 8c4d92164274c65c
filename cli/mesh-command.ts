/**
 * `sub0 mesh status`: every node the chain knows, with what the broker holds for it and what its
 * agent last reported, signed with its identity key: health, applied revision and hash, WireGuard
 * handshake ages, ACL entries, how old its last status is. Logs in to the broker as the
 * controller (its secret is in the controller's state dir: run it where the controller runs).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { pino } from 'pino';
import { OBSERVER_LOGIN } from '../fabric/broker-login.js';
import { Sub0Error } from '../fabric/errors.js';
import { readAdminSecret } from '../controller/broker/admin-secret.js';
import { sub0Home } from '../controller/chain/home.js';
import { readMeshStatus, type MeshNode } from '../controller/mesh-status.js';
import { BROKER_RECORD } from '../controller/run-controller.js';
import { MqttLink } from '../overlay/mqtt/mqtt-link.js';
import { readLabRecord } from '../lab/lab-record.js';
import { chainOptions, openChain, type ChainFlags } from './chain-options.js';
import { action, printJson, printTable } from './output.js';

export function registerMesh(program: Command): void {
  const mesh = program.command('mesh').description('the mesh as it runs');
  chainOptions(mesh.command('status'))
    .description('nodes: health, applied revision and hash, handshake ages, ACL entries, last status age; the slots they run as VMs')
    .option('--broker <url>', 'the broker (default: the running lab\'s, or the one the controller recorded)')
    .option('--state-dir <dir>', 'the controller\'s state dir, for its broker login (default: the lab\'s, or $SUB0_HOME/controller)')
    .action(
      action(async (o: ChainFlags & { broker?: string; stateDir?: string }) => {
        const where = brokerOf(o);
        const chain = await openChain(o);
        const link = new MqttLink({ url: where.url, clientId: `${OBSERVER_LOGIN}-${process.pid}`, username: OBSERVER_LOGIN, password: () => where.secret, log: pino({ level: 'silent' }), reconnectMs: 0 });
        try {
          const head = await chain.client.finalizedHead();
          const { snapshot } = await chain.registry.readSnapshot(head.hash);
          await link.waitConnected(5000).catch(() => {
            throw new Sub0Error('chain', `cannot log in to the broker at ${where.url} with the controller's secret (is the controller running?)`);
          });
          const status = await readMeshStatus(link, snapshot);
          if (o.json) return printJson(status);
          process.stdout.write(`network ${status.network} at block #${status.block.number}, broker ${where.url}\n`);
          printTable(status.nodes.map(row), ['NODE', 'DVCI', 'HEALTH', 'APPLIED', 'HASH', 'PEERS (handshake age)', 'ACL', 'HEARTBEAT AGE']);
          const slots = status.nodes.flatMap((n) => (n.status?.slots ?? []).map((x) => ({ node: n.node, ...x })));
          if (slots.length) {
            process.stdout.write('\n');
            printTable(
              slots.map((x) => [x.slot, x.node, x.phase, x.upS === null ? '-' : `${x.upS} s`, String(x.restarts), x.error ? `${x.error.code}: ${x.error.message}` : '-']),
              ['SLOT', 'NODE', 'PHASE', 'UP', 'RESTARTS', 'LAST ERROR'],
            );
          }
          const problems = status.nodes.filter((n) => n.reason || n.statusError || n.status?.rejected || (n.status?.reconcile?.errors.length ?? 0) > 0);
          for (const n of problems) {
            if (n.reason) process.stdout.write(`  ${n.node}: ${n.health}: ${n.reason}\n`);
            if (n.statusError) process.stdout.write(`  ${n.node}: status refused: ${n.statusError}\n`);
            if (n.status?.rejected) process.stdout.write(`  ${n.node}: refused a config: ${n.status.rejected.code}: ${n.status.rejected.message}\n`);
            for (const e of n.status?.reconcile?.errors ?? []) process.stdout.write(`  ${n.node}: reconcile: ${e}\n`);
          }
        } finally {
          await link.close(true);
          await chain.close();
        }
      }),
    );
}

function row(n: MeshNode): string[] {
  const s = n.status;
  const applied = s?.applied ? `#${s.applied.revision.number}` : '-';
  const hash = s?.applied ? s.applied.hash.slice(0, 12) : '-';
  let peers = '-';
  if (s && s.handshakes.length) {
    const ages = s.handshakes.map((h) => h.ageS);
    const up = ages.filter((a): a is number => a !== null);
    peers = `${up.length}/${ages.length}${up.length ? ` (${Math.min(...up)}-${Math.max(...up)} s)` : ''}`;
  } else if (s) peers = '0';
  const acl = s ? `${s.counts.aclEntries} (${s.counts.aclTuples} tuples)` : '-';
  const health = n.health === 'degraded' && n.reason ? `degraded (${n.reason.split(':')[0]})` : n.health;
  return [n.node, n.dvci, health, applied, hash, peers, acl, n.statusAgeS === null ? '-' : `${n.statusAgeS} s`];
}

/** The broker and the controller's secret: flags, then the running lab, then the controller's record. */
export function brokerOf(o: { broker?: string; stateDir?: string }): { url: string; secret: string } {
  const lab = readLabRecord();
  const live = lab?.live && lab.record.ready ? lab.record : undefined;
  const dir = o.stateDir ?? live?.controllerDir ?? join(sub0Home(), 'controller');
  let url = o.broker ?? (o.stateDir ? undefined : live?.broker.url);
  if (!url) {
    try {
      url = (JSON.parse(readFileSync(join(dir, BROKER_RECORD), 'utf8')) as { url: string }).url;
    } catch {
      throw new Sub0Error('not-found', `no broker known: no lab runs, and no controller recorded one in ${dir}; pass --broker mqtt://…`);
    }
  }
  return { url, secret: readAdminSecret(join(dir, 'broker.secret')) };
}
