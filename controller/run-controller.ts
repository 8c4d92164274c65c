/** Runs the controller until SIGINT/SIGTERM: the body of `sub0 controller` and dist/controller.js. */
import { bytesToHex } from '@noble/hashes/utils.js';
import { pino } from 'pino';
import { openChain } from './chain/open-chain.js';
import type { ControllerConfig } from './config.js';
import { Controller } from './controller.js';
import { DirectorySink } from './publish/directory-sink.js';
import { Publisher } from './publish/publisher.js';
import { loadOrCreateSigningKey } from '../overlay/signing-key-file.js';

export async function runController(cfg: ControllerConfig): Promise<void> {
  const log = pino({ name: 'controller', level: cfg.logLevel });
  const chain = await openChain({ endpoint: cfg.endpoint, registry: cfg.registry }); // fails first, and fast, without a chain
  const { key, created } = loadOrCreateSigningKey(cfg.keyFile);
  const publicKey = bytesToHex(key.publicKey);
  log.info({ keyFile: cfg.keyFile, publicKey, created }, 'signing key (agents trust it with --trust)');
  const controller = await Controller.start({
    client: chain.client,
    registry: chain.registry,
    publisher: new Publisher(new DirectorySink(cfg.out), key),
    cursorFile: cfg.cursorFile,
    log,
  });
  log.info({ endpoint: chain.client.endpoint, registry: chain.registry.locator, out: cfg.out }, 'controller running');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log.info('stopping');
  await controller.stop();
  await chain.close();
}
