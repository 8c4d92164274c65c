/**
 * One local chain per test file: a fresh data directory, the real runtime in-process, a client
 * and the registry; torn down (and chopsticks' worker destroyed) when the test ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { connect, type ChainClient } from '../../../controller/chain/client.js';
import { keyFromSuri, type KeyringPair } from '../../../controller/chain/keys.js';
import { startLocalChain, type LocalChain, type LocalChainOptions } from '../../../controller/chain/local-chain.js';
import { openRegistry } from '../../../controller/chain/open-registry.js';
import type { LogosRegistry, Signer } from '../../../controller/chain/registry.js';

export interface TestChain {
  readonly home: string;
  readonly chain: LocalChain;
  readonly client: ChainClient;
  readonly registry: LogosRegistry;
  readonly keys: Record<'alice' | 'bob' | 'charlie' | 'dave' | 'eve', KeyringPair>;
  /** Alice, the network operator. */
  readonly operator: Signer;
  /** An account in the chain's own SS58 format, as snapshots name it. */
  account(pair: KeyringPair | string): string;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export const quietLog = pino({ level: process.env.SUB0_TEST_LOG ?? 'silent' });

export async function startTestChain(t: Teardown, o: Partial<LocalChainOptions> = {}): Promise<TestChain> {
  const home = o.home ?? mkdtempSync(join(tmpdir(), 'sub0-chain-'));
  const chain = await startLocalChain({ home, port: 0, log: quietLog, ...o });
  const client = await connect(chain.endpoint);
  t.teardown(async () => {
    await client.close();
    await chain.close();
    if (!o.home) rmSync(home, { recursive: true, force: true });
  });
  const names = ['alice', 'bob', 'charlie', 'dave', 'eve'] as const;
  const pairs = await Promise.all(names.map((n) => keyFromSuri(`//${n[0]!.toUpperCase()}${n.slice(1)}`, { lab: true })));
  const keys = Object.fromEntries(names.map((n, i) => [n, pairs[i]!])) as TestChain['keys'];
  const ss58 = client.api.registry.chainSS58 ?? 42;
  const { encodeAddress, decodeAddress } = await import('@polkadot/util-crypto');
  return {
    home,
    chain,
    client,
    registry: openRegistry(client, chain.registry),
    keys,
    operator: { pair: keys.alice },
    account: (p) => encodeAddress(decodeAddress(typeof p === 'string' ? p : p.address), ss58),
  };
}

/** The finalized head's hash. */
export async function headHash(c: TestChain): Promise<string> {
  return (await c.client.finalizedHead()).hash;
}
