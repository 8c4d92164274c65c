/**
 * Finds the chain and the registry to talk to: flags win over the environment (SUB0_ENDPOINT,
 * SUB0_REGISTRY), which wins over a running `sub0 lab up`'s chain, which wins over the local chain
 * that `sub0 chain up` recorded in the data directory. Shared by the CLI and the controller.
 */
import { Sub0Error } from '../../fabric/errors.js';
import { connect, type ChainClient } from './client.js';
import { labHome, readLocalChainRecord, recordLive, sub0Home } from './home.js';
import { openRegistry } from './open-registry.js';
import type { LogosRegistry } from './registry.js';

export interface ChainLocation {
  readonly endpoint?: string | undefined;
  readonly registry?: string | undefined;
}

export interface OpenChain {
  readonly client: ChainClient;
  readonly registry: LogosRegistry;
  /** True when talking to the local lab chain, where dev keys are allowed. */
  readonly lab: boolean;
  close(): Promise<void>;
}

export async function openChain(flags: ChainLocation, env: NodeJS.ProcessEnv = process.env): Promise<OpenChain> {
  const home = sub0Home(env);
  const lab = readLocalChainRecord(labHome(home));
  const record = lab && recordLive(lab) ? lab : readLocalChainRecord(home);
  const endpoint = flags.endpoint ?? (env.SUB0_ENDPOINT || undefined) ?? record?.endpoint;
  if (!endpoint) throw new Sub0Error('not-found', 'no chain to talk to: run `sub0 lab up` or `sub0 chain up` first, or pass --endpoint ws://…');
  const local = record !== undefined && endpoint === record.endpoint;
  const locator = flags.registry ?? (env.SUB0_REGISTRY || undefined) ?? (local ? record.registry : undefined);
  if (!locator) throw new Sub0Error('invalid-input', `which registry on ${endpoint}? pass --registry <id> (printed by \`sub0 chain init\`)`);
  const client = await connect(endpoint);
  try {
    return { client, registry: openRegistry(client, locator), lab: local, close: () => client.close() };
  } catch (e) {
    await client.close();
    throw e;
  }
}
