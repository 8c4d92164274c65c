/**
 * Runs the controller until SIGINT/SIGTERM: the body of `sub0 controller` and dist/controller.js.
 * Records where its broker is (broker.json in its state dir) for `sub0 mesh status` on this machine.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { writeFileAtomic } from '../overlay/atomic-file.js';
import { createLogger } from '../overlay/logger.js';
import { loadOrCreateSigningKey } from '../overlay/signing-key-file.js';
import { loadOrCreateAdminSecret } from './broker/admin-secret.js';
import { keyFromSuri } from './chain/keys.js';
import { openChain } from './chain/open-chain.js';
import type { ControllerConfig } from './config.js';
import { ControllerService } from './service.js';
import { join } from 'node:path';

export const BROKER_RECORD = 'broker.json';

export async function runController(cfg: ControllerConfig): Promise<void> {
  const log = createLogger({ name: 'sub0-controller', level: cfg.logLevel, format: cfg.logFormat });
  const chain = await openChain({ endpoint: cfg.endpoint, registry: cfg.registry }); // fails first, and fast, without a chain
  const { key, created } = loadOrCreateSigningKey(cfg.keyFile);
  const publicKey = bytesToHex(key.publicKey);
  log.info({ keyFile: cfg.keyFile, publicKey, created }, 'signing key (agents trust it with --trust)');
  const adminSecret = loadOrCreateAdminSecret(cfg.adminSecretFile);
  const gatekeeperPair = cfg.gatekeeper.suri ? await keyFromSuri(cfg.gatekeeper.suri, { lab: chain.lab }) : undefined;
  if (gatekeeperPair) log.info({ account: gatekeeperPair.address }, 'gatekeeper key (the operator authorizes it: sub0 gatekeeper authorize)');
  const service = await ControllerService.start({
    client: chain.client,
    registry: chain.registry,
    key,
    adminSecret,
    cursorFile: cfg.cursorFile,
    log,
    ...(cfg.broker ? { broker: cfg.broker } : {}),
    ...(cfg.out ? { out: cfg.out } : {}),
    ...(cfg.fullReadMs !== undefined ? { fullReadMs: cfg.fullReadMs } : {}),
    gatekeeper: { policy: cfg.gatekeeper.policy, ...(gatekeeperPair ? { signer: gatekeeperPair } : {}) },
  });
  if (service.brokerUrl) writeFileAtomic(join(cfg.stateDir, BROKER_RECORD), `${JSON.stringify({ url: service.brokerUrl, controllerKey: publicKey }, null, 2)}\n`);
  log.info({ endpoint: chain.client.endpoint, registry: chain.registry.locator, broker: service.brokerUrl, listening: service.listening, out: cfg.out }, 'controller running');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info('stopping');
  await service.stop();
  await chain.close();
}
