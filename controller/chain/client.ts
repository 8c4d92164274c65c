/**
 * One connection to a Substrate node: the typed API for calls and events, and the raw provider
 * for bulk storage reads (decoding 100k storage keys through polkadot-js types costs more than
 * reading them). Connecting fails fast with a clear error instead of retrying forever.
 */
import { ApiPromise, WsProvider } from '@polkadot/api';
import { Sub0Error } from '../../fabric/errors.js';
import type { BlockRef } from '../../fabric/schema.js';

export interface ChainClient {
  readonly endpoint: string;
  readonly api: ApiPromise;
  /** Raw JSON-RPC, for paged storage reads. */
  rpc<T>(method: string, params: unknown[]): Promise<T>;
  /** The latest finalized block. */
  finalizedHead(): Promise<BlockRef>;
  /** Number and hash of a block by hash. */
  blockRef(hash: string): Promise<BlockRef>;
  close(): Promise<void>;
}

export async function connect(endpoint: string, opts: { timeoutMs?: number } = {}): Promise<ChainClient> {
  if (!/^wss?:\/\/./.test(endpoint)) throw new Sub0Error('invalid-input', `endpoint must be ws://… or wss://…, got "${endpoint}"`);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  // autoConnect off: a wrong endpoint must end in an error, not in retries forever.
  const provider = new WsProvider(endpoint, false, {}, 120_000);
  await new Promise<void>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      void provider.disconnect().catch(() => undefined);
      reject(new Sub0Error('chain', `cannot reach ${endpoint}: ${why} (is \`sub0 chain up\` running, or is --endpoint right?)`));
    };
    const timer = setTimeout(() => fail(`no answer in ${timeoutMs / 1000}s`), timeoutMs);
    const offErr = provider.on('error', (e: unknown) => fail(e instanceof Error && e.message ? e.message : 'connection refused'));
    provider.on('connected', () => {
      clearTimeout(timer);
      offErr();
      resolve();
    });
    provider.connect().catch((e: unknown) => fail(String(e)));
  });
  let api: ApiPromise;
  // Older runtimes (the lab's among them) lack the metadata runtime API, and polkadot-js warns
  // about it on every connection, on stderr of every command: that one line is not news.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!args.some((a) => typeof a === 'string' && a.includes('MetadataApi not available'))) warn(...args);
  };
  try {
    api = await ApiPromise.create({ provider, noInitWarn: true, throwOnConnect: true });
  } catch (e) {
    await provider.disconnect().catch(() => undefined);
    throw new Sub0Error('chain', `${endpoint} is not a usable Substrate node: ${(e as Error).message}`, { cause: e });
  } finally {
    console.warn = warn;
  }
  const rpc = <T>(method: string, params: unknown[]) => provider.send<T>(method, params);
  const blockRef = async (hash: string): Promise<BlockRef> => {
    const header = await rpc<{ number: string } | null>('chain_getHeader', [hash]);
    if (!header) throw new Sub0Error('not-found', `block ${hash} is unknown to ${endpoint}`);
    return { number: Number.parseInt(header.number, 16), hash };
  };
  return {
    endpoint,
    api,
    rpc,
    blockRef,
    finalizedHead: async () => blockRef(await rpc<string>('chain_getFinalizedHead', [])),
    close: async () => {
      await api.disconnect().catch(() => undefined);
    },
  };
}
