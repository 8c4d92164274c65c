/**
 * Publishes a compilation: signs each node's config and hands it to the sink only when what the
 * node must enforce changed (its content hash, revision aside), and withdraws the configs of nodes
 * that no longer get one. Deterministic: two controllers with the same key and the same block
 * publish byte-identical envelopes, so any one of them may die.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { CompileResult } from '../../fabric/compile.js';
import { contentHash, contentHashOfEncoded, encodeConfig } from '../../fabric/encoding.js';
import type { PublishedRef } from '../../fabric/health.js';
import type { NodeId } from '../../fabric/schema.js';
import { sealConfig, verifyConfig, type SigningKey } from '../../fabric/signing.js';
import type { ConfigSink } from './config-sink.js';

/** Sink writes in flight at once. */
const IN_FLIGHT = 256;
/** Encoding and signing go on for at most this long before the event loop gets a turn. */
const YIELD_MS = 4;

/** Runs tasks with at most `limit` at once; done() rethrows the first failure once all settled. */
class Pool {
  private readonly running = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.limit) await Promise.race(this.running);
    const p: Promise<void> = task()
      .catch((e: unknown) => {
        this.failure ??= e;
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  async done(): Promise<void> {
    await Promise.all(this.running);
    if (this.failure !== undefined) throw this.failure;
  }
}

export interface PublishReport {
  readonly published: readonly NodeId[];
  readonly unchanged: number;
  readonly withdrawn: readonly NodeId[];
  /** DVCIs whose controller keys on chain exclude this controller's: their nodes are left to those it names. */
  readonly notAuthorized: readonly string[];
}

interface Held {
  readonly content: string;
  readonly ref?: PublishedRef;
}

export class Publisher {
  /** What the sink holds per node: its content hash ('' for what is not ours), and which config. */
  private published: Map<NodeId, Held> | undefined;
  /** A publish failed part-way: the next one checks every node, whatever `changed` says. */
  private incomplete = false;

  private readonly keyHex: string;

  constructor(
    private readonly sink: ConfigSink,
    private readonly key: SigningKey,
  ) {
    this.keyHex = bytesToHex(key.publicKey);
  }

  /**
   * Publishes what changed in `result`. With `changed` (an incremental compilation's list of
   * nodes whose content may differ), every other node already published is taken as unchanged
   * without hashing its config again; a node never published is always hashed.
   */
  async publish(result: CompileResult, changed?: ReadonlySet<NodeId>): Promise<PublishReport> {
    const hint = this.incomplete ? undefined : changed;
    this.incomplete = true;
    const report = await this.publishAll(result, hint);
    this.incomplete = false;
    return report;
  }

  /** Forgets what the sink holds (it lost its state, e.g. a broker restarted empty): the next publish reads it again. */
  reset(): void {
    this.published = undefined;
    this.incomplete = true;
  }

  private async publishAll(result: CompileResult, changed: ReadonlySet<NodeId> | undefined): Promise<PublishReport> {
    const known = (this.published ??= await this.load());
    const published: NodeId[] = [];
    let unchanged = 0;
    // Writes are pipelined (a broker acknowledges each one after a round trip): up to IN_FLIGHT
    // at once, each recorded as published only once the sink took it.
    const pool = new Pool(IN_FLIGHT);
    let yielded = performance.now();
    const notAuthorized = new Set<string>();
    for (const [node, config] of result.configs) {
      // Neither published nor withdrawn: on a shared broker the retained config is another's.
      if (config.controllers.length > 0 && !config.controllers.includes(this.keyHex)) {
        notAuthorized.add(config.dvci);
        continue;
      }
      // Let the sink's sockets drain while the rest is encoded: the first nodes get their
      // configs while the last are still being signed.
      if (performance.now() - yielded > YIELD_MS) {
        await new Promise((r) => setImmediate(r));
        yielded = performance.now();
      }
      if (changed && !changed.has(node) && known.has(node) && known.get(node)!.content !== '') {
        unchanged++;
        continue;
      }
      // One canonical encoding: its hash without the revision decides, its bytes are signed.
      const payload = encodeConfig(config);
      const hash = contentHashOfEncoded(payload);
      if (known.get(node)?.content === hash) {
        unchanged++;
        continue;
      }
      const { wire, hash: configHash } = sealConfig(payload, this.key);
      await pool.run(async () => {
        await this.sink.publish(node, wire);
        known.set(node, { content: hash, ref: { revision: config.revision, hash: configHash, at: Date.now() } });
      });
      published.push(node);
    }
    const withdrawn: NodeId[] = [];
    for (const node of [...known.keys()]) {
      if (result.configs.has(node)) continue;
      await pool.run(async () => {
        await this.sink.withdraw(node);
        known.delete(node);
      });
      withdrawn.push(node);
    }
    await pool.done();
    return { published, unchanged, withdrawn, notAuthorized: [...notAuthorized] };
  }

  /**
   * The config this publisher's sink holds for each node it published to (none before the first
   * publish): what the node is expected to run, for the gatekeeper.
   */
  publishedRefs(): Map<NodeId, PublishedRef> {
    const out = new Map<NodeId, PublishedRef>();
    for (const [node, held] of this.published ?? []) if (held.ref) out.set(node, held.ref);
    return out;
  }

  /** What the sink holds, as content hashes; envelopes we cannot verify are republished. */
  private async load(): Promise<Map<NodeId, Held>> {
    const out = new Map<NodeId, Held>();
    const now = Date.now();
    for (const [node, wire] of await this.sink.current()) {
      try {
        const { config, hash } = verifyConfig(wire, [this.key.publicKey]);
        out.set(node, { content: contentHash(config), ref: { revision: config.revision, hash, at: now } });
      } catch {
        out.set(node, { content: '' }); // unreadable or foreign: replaced on the next publish, withdrawn if unknown
      }
    }
    return out;
  }
}
