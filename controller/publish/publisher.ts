/**
 * Publishes a compilation: signs each node's config and hands it to the sink only when what the
 * node must enforce changed (its content hash, revision aside), and withdraws the configs of nodes
 * that no longer get one. Deterministic: two controllers with the same key and the same block
 * publish byte-identical envelopes, so any one of them may die.
 */
import type { CompileResult } from '../../fabric/compile.js';
import { contentHash } from '../../fabric/encoding.js';
import type { NodeId } from '../../fabric/schema.js';
import { signConfig, verifyConfig, type SigningKey } from '../../fabric/signing.js';
import type { ConfigSink } from './config-sink.js';

export interface PublishReport {
  readonly published: readonly NodeId[];
  readonly unchanged: number;
  readonly withdrawn: readonly NodeId[];
}

export class Publisher {
  private published: Map<NodeId, string> | undefined; // node -> content hash
  /** A publish failed part-way: the next one checks every node, whatever `changed` says. */
  private incomplete = false;

  constructor(
    private readonly sink: ConfigSink,
    private readonly key: SigningKey,
  ) {}

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
    for (const [node, config] of result.configs) {
      if (changed && !changed.has(node) && known.has(node) && known.get(node) !== '') {
        unchanged++;
        continue;
      }
      const hash = contentHash(config);
      if (known.get(node) === hash) {
        unchanged++;
        continue;
      }
      await this.sink.publish(node, signConfig(config, this.key));
      known.set(node, hash);
      published.push(node);
    }
    const withdrawn: NodeId[] = [];
    for (const node of [...known.keys()]) {
      if (result.configs.has(node)) continue;
      await this.sink.withdraw(node);
      known.delete(node);
      withdrawn.push(node);
    }
    return { published, unchanged, withdrawn };
  }

  /** What the sink holds, as content hashes; envelopes we cannot verify are republished. */
  private async load(): Promise<Map<NodeId, string>> {
    const out = new Map<NodeId, string>();
    for (const [node, wire] of await this.sink.current()) {
      try {
        out.set(node, contentHash(verifyConfig(wire, [this.key.publicKey]).config));
      } catch {
        out.set(node, ''); // unreadable or foreign: replaced on the next publish, withdrawn if unknown
      }
    }
    return out;
  }
}
