/** `sub0 controller`: follow finalized blocks, compile, publish signed configs (until Ctrl-C). */
import type { Command } from 'commander';
import { controllerConfig } from '../controller/config.js';
import { runController } from '../controller/run-controller.js';
import { action } from './output.js';

export function controllerFlagOptions(cmd: Command): Command {
  return cmd
    .option('--endpoint <ws-url>', 'Substrate node (env SUB0_ENDPOINT; default: the local chain of `sub0 chain up`)')
    .option('--registry <id>', 'the registry on that chain (env SUB0_REGISTRY)')
    .option('--out <dir>', 'where signed node configs are written, one <node>.json each (default: $SUB0_HOME/controller/configs)')
    .option('--key <file>', 'ed25519 signing key file, created on first start (default: $SUB0_HOME/controller/signing.key)')
    .option('--state-dir <dir>', 'where the follower cursor is kept (default: $SUB0_HOME/controller)')
    .option('--log-level <level>', 'trace|debug|info|warn|error|silent');
}

export function registerController(program: Command): void {
  controllerFlagOptions(program.command('controller').description('run the controller: follow the chain, compile, publish signed node configs'))
    .action(action(async (opts: Record<string, unknown>) => {
      await runController(controllerConfig(opts));
      process.exit(0);
    }));
}
