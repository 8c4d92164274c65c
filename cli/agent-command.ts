/**
 * `sub0 agent`: runs the node agent (WireGuard, routes, ACL, reconciled to the signed config its
 * broker or file gives it). `sub0 agent keys` prints the node's public keys, what registration
 * needs; `sub0 agent plan --dry-run` prints what the agent would change against the live kernel.
 */
import type { Command } from 'commander';
import { agentFlags, type AgentFlags } from '../overlay/agent/config.js';
import { formatOp, planDryRun } from '../overlay/agent/plan-command.js';
import { runAgent } from '../overlay/agent/run.js';
import { loadOrCreateIdentity } from '../overlay/agent/identity.js';
import { loadOrCreateNodeKey } from '../overlay/wireguard/keys.js';
import { action, printJson } from './output.js';

export function registerAgent(program: Command): void {
  const agent = agentFlags(program.command('agent').description('run the node agent: WireGuard mesh, routes and ACLs, reconciled to a signed config'));
  agent.action(action((opts: AgentFlags) => runAgent(opts)));

  agent
    .command('keys')
    .description("print this node's public keys (created on first use; the secret halves never leave the state dir)")
    .option('--state-dir <dir>', 'the agent\'s state directory', '/var/lib/sub0/agent')
    .option('--json', 'machine-readable output')
    .action(
      action((o: { stateDir: string; json?: boolean }) => {
        const wg = loadOrCreateNodeKey(o.stateDir);
        const id = loadOrCreateIdentity(o.stateDir);
        if (o.json) return printJson({ wireguard: wg.publicKey, identity: id.publicKeyHex, stateDir: o.stateDir });
        process.stdout.write(
          `wireguard  ${wg.publicKey}\nidentity   ${id.publicKeyHex}\n\nregister this node with:\n  sub0 node register <id> --dvci <dvci> --key ${wg.publicKey} --identity ${id.publicKeyHex} --addr <host:port> --suri …\n`,
        );
      }),
    );

  agentFlags(agent.command('plan').description('print what the agent would change against the live kernel (changes nothing)'))
    .option('--dry-run', 'the only mode: plan never applies (accepted for clarity)')
    .option('--json', 'machine-readable output')
    .action(
      action(async (_opts: unknown, cmd: Command) => {
        // The flags are declared on both `agent` and `agent plan`; commander hands those that
        // the parent also knows to the parent, so read them merged.
        const opts = cmd.optsWithGlobals<AgentFlags & { json?: boolean }>();
        const out = await planDryRun(opts);
        if (opts.json) return printJson(out);
        process.stdout.write(`node ${out.node} revision #${out.revision} on ${out.ifname}\n`);
        for (const n of out.notes) process.stdout.write(`note: ${n}\n`);
        for (const o of out.ops) process.stdout.write(`${formatOp(o, out.ifname)}\n`);
        process.stdout.write(out.ops.length === 0 ? 'unchanged: nothing to do\n' : `${out.ops.length} op(s) (dry run: nothing changed)\n`);
      }),
    );
}
