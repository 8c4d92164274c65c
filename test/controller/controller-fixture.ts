/**
 * Controllers on the test chain: each with its own connection, a DirectorySink (or one given) and
 * the shared signing key; and the check every controller test makes, that what a controller holds
 * is what a full read and compile at its block give.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '../../controller/chain/client.js';
import { openRegistry } from '../../controller/chain/open-registry.js';
import type { LogosRegistry } from '../../controller/chain/registry.js';
import { Controller, type ControllerOptions, type PassRecord } from '../../controller/controller.js';
import type { ConfigSink } from '../../controller/publish/config-sink.js';
import { DirectorySink } from '../../controller/publish/directory-sink.js';
import { Publisher } from '../../controller/publish/publisher.js';
import { compile } from '../../fabric/compile.js';
import { canonicalJson, encodeConfig } from '../../fabric/encoding.js';
import type { Issue } from '../../fabric/issues.js';
import type { NodeId } from '../../fabric/schema.js';
import { loadOrCreateSigningKey } from '../../overlay/signing-key-file.js';
import { quietLog, type TestChain } from './chain/chain-fixture.js';

export interface TestController {
  readonly ctl: Controller;
  readonly passes: PassRecord[];
  readonly registry: LogosRegistry;
  stop(): Promise<void>;
}

export interface ControllerDirs {
  readonly out: string;
  readonly cursorFile: string;
  readonly keyFile: string;
}

export function controllerDirs(c: TestChain, name: string): ControllerDirs {
  const state = join(c.home, name);
  mkdirSync(state, { recursive: true });
  return { out: join(state, 'configs'), cursorFile: join(state, 'cursor.json'), keyFile: join(state, 'signing.key') };
}

export async function startController(
  c: TestChain,
  dirs: ControllerDirs,
  o: Partial<Omit<ControllerOptions, 'client' | 'registry' | 'publisher'>> & { sink?: ConfigSink; wrap?: (r: LogosRegistry) => LogosRegistry } = {},
): Promise<TestController> {
  const client = await connect(c.chain.endpoint);
  const registry = (o.wrap ?? ((r) => r))(openRegistry(client, c.chain.registry));
  const passes: PassRecord[] = [];
  const { key } = loadOrCreateSigningKey(dirs.keyFile);
  const ctl = await Controller.start({
    log: quietLog,
    cursorFile: dirs.cursorFile,
    ...o,
    client,
    registry,
    publisher: new Publisher(o.sink ?? new DirectorySink(dirs.out), key),
    onPass: (p) => {
      passes.push(p);
      o.onPass?.(p);
    },
  });
  return {
    ctl,
    passes,
    registry,
    stop: async () => {
      await ctl.stop();
      await client.close();
    },
  };
}

export interface Mismatch {
  readonly block: number;
  /** Nodes whose canonical configs differ (or that only one side configures). */
  readonly nodes: NodeId[];
  readonly issues: { readonly held: readonly Issue[]; readonly full: readonly Issue[] } | undefined;
}

/** What the controller holds, against compile(readSnapshot(its block)): undefined when identical. */
export async function compareWithFullRead(c: TestChain, ctl: Controller): Promise<Mismatch | undefined> {
  const cur = ctl.current;
  if (!cur) throw new Error('the controller holds nothing yet');
  const read = await c.registry.readSnapshot(cur.block.hash);
  const full = compile(read.snapshot);
  const nodes = new Set([...cur.configs.keys(), ...full.configs.keys()]);
  const differ = [...nodes].filter((n) => {
    const a = cur.configs.get(n);
    const b = full.configs.get(n);
    return !a || !b || Buffer.compare(encodeConfig(a), encodeConfig(b)) !== 0;
  });
  const fullIssues = [...read.issues, ...full.issues];
  const issuesDiffer = canonicalJson(cur.issues) !== canonicalJson(fullIssues);
  if (differ.length === 0 && !issuesDiffer) return undefined;
  return { block: cur.block.number, nodes: differ.sort(), issues: issuesDiffer ? { held: cur.issues, full: fullIssues } : undefined };
}
