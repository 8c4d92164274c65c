/**
 * The controller's loop: follow finalized blocks; for each block that touched the registry, read
 * the whole network at that block, compile it, and publish the nodes whose config changed.
 * Level-based: it always compiles a full snapshot, so a missed or repeated block is harmless, and
 * a restarted controller first republishes whatever differs from what the sink holds.
 * The chain stays the authority: the controller holds no state that the chain cannot rebuild.
 */
import type { Logger } from 'pino';
import { Compiler } from '../fabric/compile.js';
import type { BlockRef } from '../fabric/schema.js';
import type { ChainClient } from './chain/client.js';
import { Follower } from './chain/follower.js';
import type { LogosRegistry } from './chain/registry.js';
import type { Publisher, PublishReport } from './publish/publisher.js';

export interface ControllerOptions {
  readonly client: ChainClient;
  readonly registry: LogosRegistry;
  readonly publisher: Publisher;
  readonly cursorFile: string;
  readonly log: Logger;
  /** Called after each publish, for tests and status. */
  readonly onPublished?: (block: BlockRef, report: PublishReport) => void;
}

export class Controller {
  private follower: Follower | undefined;
  private readonly compiler = new Compiler();
  /** Syncs run one at a time, in the order blocks arrive. */
  private queue: Promise<void> = Promise.resolve();

  private constructor(private readonly o: ControllerOptions) {}

  /** Publishes the network at the cursor (or the finalized head), then follows new blocks. */
  static async start(o: ControllerOptions): Promise<Controller> {
    const c = new Controller(o);
    let first = true;
    c.follower = await Follower.start({
      client: o.client,
      registry: o.registry,
      cursorFile: o.cursorFile,
      log: o.log,
      onBlock: ({ block }) => c.sync(block),
      onCaughtUp: (head) => {
        // The state at the starting point is published once, whether or not a block touched it.
        if (first) {
          first = false;
          void c.sync(head).catch((err: unknown) => {
            first = true; // tried again at the next finalized head
            o.log.error({ err }, 'initial publish failed; retrying at the next finalized head');
          });
        }
      },
    });
    return c;
  }

  get cursor(): BlockRef | undefined {
    return this.follower?.cursor;
  }

  /** Resolves once blocks up to `number` are handled (for tests and `lab up`). */
  reached(number: number, timeoutMs?: number): Promise<void> {
    return this.follower!.reached(number, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.follower?.stop();
  }

  private sync(block: BlockRef): Promise<void> {
    const run = this.queue.then(() => this.publishAt(block));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async publishAt(block: BlockRef): Promise<void> {
    const t0 = performance.now();
    const read = await this.o.registry.readSnapshot(block.hash);
    const result = this.compiler.compile(read.snapshot);
    const issues = [...read.issues, ...result.issues];
    for (const i of issues) this.o.log.warn({ block: block.number, issue: i }, `registry entry refused: ${i.message}`);
    const report = await this.o.publisher.publish(result);
    this.o.log.info(
      {
        block: block.number,
        nodes: result.configs.size,
        published: report.published,
        unchanged: report.unchanged,
        withdrawn: report.withdrawn,
        issues: issues.length,
        ms: Math.round(performance.now() - t0),
      },
      'network compiled',
    );
    this.o.onPublished?.(block, report);
  }
}
