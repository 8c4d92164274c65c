/**
 * `sub0 audit` end to end, on the whole lab: a rule allowed on chain and enforced by its node is
 * traced by the real CLI to the block and extrinsic that created it (found here apart from the
 * code under test: by the extrinsic's hash in the block), with the config the node says it
 * applied; a quarantine shows up as a decision; the chain alone gives the same answer.
 */
import { spawn } from 'node:child_process';
import { decodeAddress, encodeAddress } from '@polkadot/util-crypto';
import t from 'tap';
import type { AuditOutput } from '../../cli/audit-command.js';
import type { Submitted } from '../../controller/chain/registry.js';
import { REPO, sub0Program } from '../../lab/programs.js';
import { useControlLab } from '../helpers/control-lab.js';

const cl = await useControlLab(t);

/** Runs the real CLI in a child process (asynchronously: the controller and broker run in this one). */
function sub0(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, ...pre] = sub0Program();
  const p = spawn(cmd!, [...pre, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    p.once('error', reject);
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const where = ['--endpoint', cl.chain.endpoint, '--registry', cl.chain.registry, '--state-dir', cl.controllerDir, '--broker', cl.brokerUrl];
async function audit(node: string, ...more: string[]): Promise<AuditOutput> {
  const r = await sub0(['audit', node, ...where, '--json', ...more]);
  if (r.code !== 0) throw new Error(`sub0 audit ${node} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as AuditOutput;
}

/** The extrinsic's index in its block, by its hash. */
async function extrinsicIndex(s: Submitted): Promise<number> {
  const block = await cl.client.api.rpc.chain.getBlock(s.block.hash);
  const i = block.block.extrinsics.findIndex((x) => x.hash.toHex() === s.extrinsic);
  if (i < 0) throw new Error(`extrinsic ${s.extrinsic} is not in block #${s.block.number}`);
  return i;
}

const sameAccount = (a: string | null, b: string) => a !== null && encodeAddress(decodeAddress(a)) === encodeAddress(decodeAddress(b));

t.test('sub0 audit names the extrinsic of a rule just allowed', async (t) => {
  const r = await cl.submit([{ op: 'create', kind: 'rule', fields: { id: 'web-to-db', from: 'group:web', to: 'group:db', proto: 'tcp', ports: ['5432'] } }]);
  const applied = await cl.waitApplied('n3', r.block); // n3 hosts db-1
  const index = await extrinsicIndex(r);

  const a = await audit('n3');
  t.equal(a.trail.kind, 'index', "the controller's index, caught up from the chain");
  const rule = a.rules.find((x) => x.rule === 'web-to-db');
  t.match(rule, { from: 'group:web', to: 'group:db', proto: 'tcp', ports: ['5432'], changes: 1 }, 'the rule n3 enforces');
  t.match(rule?.created, { block: r.block.number, hash: r.block.hash, extrinsic: index, event: 'uniques.Issued', via: [] }, `created by extrinsic #${r.block.number}-${index}`);
  t.ok(sameAccount(rule?.created?.signer ?? null, cl.operator.pair.address), 'signed by the operator');
  t.same(rule?.lastChanged, rule?.created, 'and not changed since');
  t.ok(a.rules.some((x) => x.rule === 'rpc-to-db' && x.created && x.created.block < r.block.number), "the lab's own rule to db-1, from the setup");
  t.equal(a.config.source, 'published', 'the rules of the config published for n3');
  t.equal(a.brokerError, null);
  t.match(a.applied, { revision: { number: applied.converged!.revision }, hash: applied.converged!.hash }, "the revision and hash n3's signed status reports applied");

  const table = await sub0(['audit', 'n3', ...where]);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, new RegExp(`^web-to-db +group:web -> group:db +tcp/5432 +#${r.block.number}-${index} by `, 'm'), 'the table: the rule and its extrinsic');
  t.match(table.stdout, /applied \(the node's signed status\): revision #\d+, hash [0-9a-f]{12} \(the published one\)/);
});

t.test('a quarantine decision shows up, from the index or from the chain alone', async (t) => {
  const q = await cl.submit([{ op: 'update', kind: 'node', id: 'n3', fields: { state: 'quarantined' } }]);
  const index = await extrinsicIndex(q);
  const a = await audit('n3');
  t.equal(a.state, 'quarantined');
  t.match(a.decisions, [{ state: 'quarantined', block: q.block.number, hash: q.block.hash, extrinsic: index }], 'the decision, with its transaction');
  t.ok(sameAccount(a.decisions[0]!.signer, cl.operator.pair.address));
  t.ok(a.registered && a.registered.block < q.block.number, 'after its registration');

  const rebuilt = await audit('n3', '--rebuild');
  t.equal(rebuilt.trail.kind, 'chain');
  t.same(rebuilt.decisions, a.decisions, 'the chain alone: the same decisions');
  t.same(rebuilt.registered, a.registered, 'and registration');

  const table = await sub0(['audit', 'n3', ...where]);
  t.match(table.stdout, new RegExp(`quarantine decisions:\\n +quarantined +#${q.block.number}-${index} by `));
});

t.test('an unknown node is named', async (t) => {
  const r = await sub0(['audit', 'n9', ...where]);
  t.equal(r.code, 1);
  t.match(r.stderr, /node "n9" is not in registry \d+ at block #\d+ \(its nodes: n1, n2, n3\)/);
});
