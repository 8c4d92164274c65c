/**
 * The lab's chain: a real Substrate runtime (Rococo Asset Hub, from the genesis shipped in
 * @substrate/connect-known-chains) executed in-process by chopsticks, offline. Signatures, nonces,
 * fees and origins are the runtime's own. Blocks are built as transactions arrive and are final
 * at once. State lives in chopsticks' sqlite file under `$SUB0_HOME/chain/` and survives restarts.
 *
 * First start: genesis, the lab accounts funded through `import-storage`, then the registry's
 * collections created by signed extrinsics of the operator (//Alice). Later starts resume from
 * the highest block in the file. Only one local chain per data directory at a time.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import type { Blockchain } from '@acala-network/chopsticks-core';
import type { Logger } from 'pino';
import { Sub0Error } from '../../fabric/errors.js';
import { connect } from './client.js';
import { chainDir, localChainRecordPath, readLocalChainRecord, writeJsonAtomic, type LocalChainRecord } from './home.js';
import { KeyIndex } from './key-index.js';
import { keyFromSuri, LAB_SURIS } from './keys.js';
import type { Signer } from './registry.js';
import { actingAccount } from './submit.js';
import { createUniquesRegistry } from './uniques-registry.js';

export interface LocalChainOptions {
  readonly home: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly host?: string;
  /** The network id written into a new registry. */
  readonly network?: string;
  readonly networkName?: string;
  /** Wipe the stored chain and start from genesis. */
  readonly fresh?: boolean;
  /** First collection number of a new registry. */
  readonly firstCollection?: number;
  /** Have the rules collection owned by a 2-of-3 multisig of Alice, Bob and Charlie. */
  readonly ruleGovernance?: boolean;
  readonly log: Logger;
}

export interface LocalChain {
  readonly endpoint: string;
  readonly registry: string;
  readonly network: string;
  /** Identifies the chain spec the chain started from (sha256 of its raw genesis). */
  readonly genesis: string;
  /** True when this start created the chain (rather than resuming it). */
  readonly created: boolean;
  /** chopsticks' chain object, for diagnostics and tests. */
  readonly blockchain: Blockchain;
  /** Stops serving and closes the database. Idempotent. */
  close(): Promise<void>;
}

/** The governance accounts of a lab started with ruleGovernance. */
export const LAB_GOVERNANCE = { threshold: 2, suris: ['//Alice', '//Bob', '//Charlie'] } as const;
/** Free balance given to each lab account (1,000,000 ROC at 12 decimals). */
const LAB_FUNDS = '1000000000000000000';

let running = 0;

export async function startLocalChain(o: LocalChainOptions): Promise<LocalChain> {
  const log = o.log.child({ component: 'local-chain' });
  const dir = chainDir(o.home);
  const db = join(dir, 'local.sqlite');
  if (o.fresh) wipe(o.home);
  const record = readLocalChainRecord(o.home);
  if (record && (await listening(record.endpoint)))
    throw new Sub0Error('invalid-input', `a local chain already runs at ${record.endpoint} for this data directory (${o.home})`);
  // A database without a record is a start that died before the registry existed: start over.
  if (existsSync(db) && !record) wipe(o.home);
  const resume = existsSync(db) && record !== undefined;

  log.info({ db, resume }, resume ? 'resuming the local chain' : 'starting the local chain from genesis');
  // chopsticks reads its log level when first imported: keep it quiet unless asked.
  process.env.LOG_LEVEL ??= process.env.SUB0_CHAIN_LOG ?? 'warn';
  const [{ BuildBlockMode, destroyWorker, setStorage }, { setupContext }, { createServer }, { handler }, known] = await Promise.all([
    import('@acala-network/chopsticks'),
    import('@acala-network/chopsticks/context'),
    import('@acala-network/chopsticks/server'),
    import('@acala-network/chopsticks/rpc/index'),
    import('@substrate/connect-known-chains'),
  ]);
  const spec = JSON.parse(known.rococo_v2_2_asset_hub) as { genesis: { raw: { top: Record<string, string> } } };
  const genesis = createHash('sha256').update(JSON.stringify(spec.genesis.raw.top)).digest('hex');
  const funding = await labFunding(o.ruleGovernance ?? false);
  mkdirSync(dir, { recursive: true });

  running++;
  const t0 = Date.now();
  const context = await setupContext({
    genesis: spec,
    db,
    port: 0,
    'build-block-mode': BuildBlockMode.Instant,
    ...(resume ? { resume: true } : { 'import-storage': funding }),
  } as unknown as Parameters<typeof setupContext>[0]).catch(async (e: unknown) => {
    if (--running === 0) await destroyWorker();
    throw new Sub0Error('chain', `the local chain did not start: ${(e as Error).message}`, { cause: e });
  });
  const chain = context.chain;
  const writes = trackWrites(chain.db);
  if (resume && record.genesis !== genesis) {
    await chain.close();
    if (--running === 0) await destroyWorker();
    throw new Sub0Error('invalid-input', `the stored chain started from another chain spec (genesis ${record.genesis.slice(0, 16)}…, now ${genesis.slice(0, 16)}…): start with --fresh`, { where: db });
  }
  log.info({ ms: Date.now() - t0, head: chain.head.number }, 'runtime loaded');

  const index = new KeyIndex(chain, Object.keys(spec.genesis.raw.top));
  const base = handler(context);
  const server = await createServer(
    async (req, subs) => {
      if (req.method === 'state_getKeysPaged' || req.method === 'state_getKeysPagedAt') {
        const [prefix, size, start, at] = req.params as [string, number, string | undefined, string | undefined];
        return index.keysPaged(prefix, Math.min(size, 1000), start, at);
      }
      if (req.method === 'chain_getBlockHash' && isGenesisNumber(req.params[0])) return genesisHashOf(chain);
      if (req.method.startsWith('dev_')) index.clear();
      return base(req as { method: string; params: string[] }, subs);
    },
    o.port ?? 9944,
    o.host ?? '127.0.0.1',
  );
  const endpoint = `ws://${o.host ?? '127.0.0.1'}:${server.port}`;

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    // Let a block being built reach the database before it closes.
    await chain.upcomingBlocks().catch(() => undefined);
    await server.close();
    await writes.settled();
    await chain.close();
    await context.fetchStorageWorker?.terminate();
    if (--running === 0) await destroyWorker();
    log.info('local chain stopped');
  };

  try {
    let rec: LocalChainRecord;
    if (resume) {
      rec = { ...record, endpoint, pid: process.pid };
    } else {
      // import-storage wrote the funding into the genesis block, which is never saved: write it
      // again into block #1 and save that, so that a resumed chain still has it.
      await chain.newBlock();
      await setStorage(chain, funding, chain.head.hash);
      await chain.saveBlockToDB(chain.head);
      index.clear();
      log.info({ accounts: LAB_SURIS.length }, 'lab accounts funded');
      const network = o.network ?? 'lab';
      const registry = await createLabRegistry(endpoint, network, o, log);
      rec = { endpoint, registry, network, genesis, pid: process.pid };
    }
    writeJsonAtomic(localChainRecordPath(o.home), rec);
    log.info({ endpoint, registry: rec.registry, network: rec.network, head: chain.head.number }, 'local chain ready');
    return { endpoint, registry: rec.registry, network: rec.network, genesis, created: !resume, blockchain: chain, close };
  } catch (e) {
    await close();
    throw e;
  }
}

async function createLabRegistry(endpoint: string, network: string, o: LocalChainOptions, log: Logger): Promise<string> {
  const client = await connect(endpoint);
  try {
    const operator: Signer = { pair: await keyFromSuri('//Alice', { lab: true }) };
    const governance = o.ruleGovernance ? await governanceSigners() : undefined;
    const r = await createUniquesRegistry(client, {
      network,
      ...(o.networkName ? { name: o.networkName } : {}),
      firstCollection: o.firstCollection ?? 1000,
      operator,
      ...(governance ? { ruleGovernance: governance } : {}),
      onProgress: (step) => log.info(step),
    });
    log.info({ registry: r.locator, block: r.block.number }, 'registry created');
    return r.locator;
  } finally {
    await client.close();
  }
}

/** Signers for the lab's rule governance multisig, in approval order. */
export async function governanceSigners(): Promise<Signer[]> {
  const pairs = await Promise.all(LAB_GOVERNANCE.suris.map((s) => keyFromSuri(s, { lab: true })));
  const signatories = pairs.map((p) => p.address);
  return pairs.map((pair) => ({ pair, multisig: { threshold: LAB_GOVERNANCE.threshold, signatories } }));
}

/** `import-storage` content: every lab account (and the governance multisig) with free funds. */
async function labFunding(withGovernance: boolean): Promise<{ System: { Account: [[string], unknown][] } }> {
  const accounts = await Promise.all(LAB_SURIS.map(async (s) => (await keyFromSuri(s, { lab: true })).address));
  if (withGovernance) accounts.push(actingAccount((await governanceSigners())[0]!, 42));
  return { System: { Account: accounts.map((a) => [[a], { providers: 1, data: { free: LAB_FUNDS } }]) } };
}

/** Whether something accepts connections at a ws:// URL's host and port. */
function listening(endpoint: string): Promise<boolean> {
  const url = new URL(endpoint);
  return new Promise((resolve) => {
    const sock = netConnect({ host: url.hostname, port: Number(url.port) });
    const done = (up: boolean) => {
      sock.destroy();
      resolve(up);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

function isGenesisNumber(p: unknown): boolean {
  return p === 0 || p === '0x0' || p === '0x00' || p === '0';
}

/**
 * The genesis hash the runtime knows (block #1's parent). A resumed chopsticks answers
 * chain_getBlockHash(0) with another hash than the one the chain started with, and clients
 * then sign for the wrong genesis (the runtime answers badProof).
 */
async function genesisHashOf(chain: Blockchain): Promise<string> {
  if (chain.head.number === 0) return chain.head.hash;
  const first = await chain.getBlockAt(1);
  if (!first) throw new Error('block #1 is missing');
  return (await first.header).parentHash.toHex();
}

/**
 * chopsticks caches storage read from the genesis into the database without awaiting the write:
 * closing the database under such a write crashes the process. Counts them so close() can wait.
 */
function trackWrites(db: unknown): { settled(): Promise<void> } {
  const pending = new Set<Promise<unknown>>();
  const target = db as Record<string, unknown> | undefined;
  for (const name of ['saveStorage', 'saveStorageBatch', 'saveBlock']) {
    const fn = target?.[name];
    if (typeof fn !== 'function') continue;
    target![name] = (...args: unknown[]) => {
      const p = Promise.resolve((fn as (...a: unknown[]) => unknown).apply(target, args));
      pending.add(p);
      void p.finally(() => pending.delete(p)).catch(() => undefined);
      return p;
    };
  }
  return {
    async settled() {
      while (pending.size) await Promise.allSettled([...pending]);
    },
  };
}

function wipe(home: string): void {
  const dir = chainDir(home);
  for (const f of ['local.sqlite', 'local.sqlite-journal', 'local.sqlite-wal', 'local.sqlite-shm', 'local.json']) rmSync(join(dir, f), { force: true });
}
