/** `sub0 controller`: follow finalized blocks, compile, publish signed configs (until Ctrl-C). */
import type { Command } from 'commander';
import { controllerConfig } from '../controller/config.js';
import { runController } from '../controller/run-controller.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { loadOrCreateSigningKey } from '../overlay/signing-key-file.js';
import { action } from './output.js';

export function controllerFlagOptions(cmd: Command): Command {
  return cmd
    .option('--endpoint <ws-url>', 'Substrate node (env SUB0_ENDPOINT; default: the local chain of `sub0 chain up`)')
    .option('--registry <id>', 'the registry on that chain (env SUB0_REGISTRY)')
    .option('--embedded-broker', 'run the MQTT broker (aedes) in this process, admitting the nodes the chain admits')
    .option('--listen <host:port...>', 'where the embedded broker listens (default 0.0.0.0:1883)')
    .option('--broker <url>', 'publish to this MQTT broker instead (e.g. Mosquitto), mqtt://host:port')
    .option('--mosquitto-dir <dir>', 'write that Mosquitto\'s password and ACL files here (its password_file and acl_file)')
    .option('--mosquitto-pid <file>', 'its pid file: signalled to reload the files')
    .option('--out <dir>', 'also (or, without a broker, only) write signed node configs here, one <node>.signed each (default without a broker: $SUB0_HOME/controller/configs)')
    .option('--full-read-ms <ms>', 'read the whole registry and check the incremental state this often (default 600000)')
    .option('--gatekeeper-suri <secret>', 'the gatekeeper\'s chain key, authorized by the operator (sub0 gatekeeper authorize); without it deviating nodes are reported, not quarantined (env SUB0_GATEKEEPER_SURI)')
    .option('--heartbeat-timeout-ms <ms>', 'a node unheard for this long is degraded (default 15000)')
    .option('--settle-ms <ms>', 'a node not running the config published for it this long after it was published is degraded (default 10000)')
    .option('--quarantine-grace-ms <ms>', 'a node degraded for this long is quarantined on chain (default 30000)')
    .option('--log-format <format>', 'text | json (default: text on a terminal)')
    .option('--key <file>', 'ed25519 signing key file, created on first start (default: $SUB0_HOME/controller/signing.key)')
    .option('--state-dir <dir>', 'where the follower cursor and the broker secret are kept (default: $SUB0_HOME/controller)')
    .option('--log-level <level>', 'trace|debug|info|warn|error|silent');
}

export function registerController(program: Command): void {
  const controller = controllerFlagOptions(program.command('controller').description('run the controller: follow the chain, compile, publish signed node configs'))
    .action(action(async (opts: Record<string, unknown>) => {
      await runController(controllerConfig(opts));
      process.exit(0);
    }));
  controller
    .command('key')
    .description('print the controller\'s signing public key (hex; created on first use): what a DVCI authorizes (`sub0 dvci define|update --controller`) and agents trust (`--trust`)')
    .option('--key <file>', 'ed25519 signing key file (default: $SUB0_HOME/controller/signing.key)')
    .option('--state-dir <dir>', 'the controller\'s state dir (default: $SUB0_HOME/controller)')
    .action(
      action((o: { key?: string; stateDir?: string }) => {
        const { key, created } = loadOrCreateSigningKey(controllerConfig(o).keyFile);
        process.stdout.write(`${bytesToHex(key.publicKey)}\n`);
        if (created) process.stderr.write('(a new key was created)\n');
      }),
    );
}
