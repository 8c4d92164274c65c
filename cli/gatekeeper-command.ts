/**
 * `sub0 gatekeeper authorize|revoke|list`: the network operator lets an account act for it as
 * gatekeeper (a proxy on chain), so that controllers holding that account's key quarantine
 * deviating nodes by transactions of their own. Signed by the operator's key.
 */
import type { Command } from 'commander';
import { authorizeGatekeeper, gatekeepersOf, GATEKEEPER_PROXY_TYPE, revokeGatekeeper } from '../controller/chain/gatekeeper-proxy.js';
import { keyFromSuri, resolveSuri } from '../controller/chain/keys.js';
import { accountFlag, chainOptions, signerFrom, withChain, type ChainFlags } from './chain-options.js';
import { action, printJson } from './output.js';

export function registerGatekeeper(program: Command): void {
  const gk = program.command('gatekeeper').description('the accounts allowed to quarantine and readmit nodes for the operator');

  chainOptions(gk.command('authorize'), { write: true })
    .description(`let ACCOUNT act for the operator as gatekeeper (a ${GATEKEEPER_PROXY_TYPE} proxy); --suri is the operator's key`)
    .argument('<account>', 'the gatekeeper account (its key goes to the controllers: --gatekeeper-suri)')
    .action(
      action((account: string, o: ChainFlags) =>
        withChain(o, async (chain) => {
          const signer = await signerFrom(o, chain.lab);
          const r = await authorizeGatekeeper(chain.client, signer, accountFlag(account, 'account'));
          if (o.json) return printJson(r === 'already' ? { status: 'already' } : r);
          if (r === 'already') process.stdout.write(`${account} already acts as gatekeeper for ${signer.pair.address}\n`);
          else process.stdout.write(`gatekeeper ${account} authorized for ${signer.pair.address}\n  block #${r.block.number} ${r.block.hash}\n  extrinsic ${r.extrinsic}\n`);
        }),
      ),
    );

  chainOptions(gk.command('revoke'), { write: true })
    .description('withdraw a gatekeeper\'s grant; --suri is the operator\'s key')
    .argument('<account>', 'the gatekeeper account')
    .action(
      action((account: string, o: ChainFlags) =>
        withChain(o, async (chain) => {
          const r = await revokeGatekeeper(chain.client, await signerFrom(o, chain.lab), accountFlag(account, 'account'));
          if (o.json) return printJson(r);
          process.stdout.write(`gatekeeper ${account} revoked\n  block #${r.block.number} ${r.block.hash}\n`);
        }),
      ),
    );

  chainOptions(gk.command('list'))
    .description('the gatekeepers of an operator')
    .option('--operator <account>', 'the operator (default: the account of --suri or SUB0_SURI)')
    .option('--suri <secret>', 'the operator\'s key, to name its account')
    .action(
      action((o: ChainFlags & { operator?: string }) =>
        withChain(o, async (chain) => {
          const operator = o.operator ? accountFlag(o.operator, 'operator') : (await keyFromSuri(resolveSuri(o.suri), { lab: chain.lab })).address;
          const list = await gatekeepersOf(chain.client, operator);
          if (o.json) return printJson({ operator, gatekeepers: list });
          process.stdout.write(list.length ? `${list.join('\n')}\n` : `no gatekeeper acts for ${operator}\n`);
        }),
      ),
    );
}
