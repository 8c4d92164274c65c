/**
 * Picks the registry implementation for a chain. Today every chain holds the registry in the
 * Uniques pallet; a chain with a dedicated Logos pallet gets its own implementation here.
 */
import type { ChainClient } from './client.js';
import type { LogosRegistry } from './registry.js';
import { openUniquesRegistry } from './uniques-registry.js';

export function openRegistry(client: ChainClient, locator: string): LogosRegistry {
  return openUniquesRegistry(client, locator);
}
