/**
 * What the controller holds between passes: the registry item by item (HeldSnapshot) and the
 * compiler that compiled it last. Three ways to move it to a new block, each giving what
 * compile(readSnapshot(block)) gives:
 *  - `full-read`: adopt a full read and compile it;
 *  - `rules`: only rules changed, cleanly (rule-delta.ts): Compiler.updateRules, which names the
 *    nodes it reassembled (the publisher hashes only those);
 *  - `nodes`: only nodes changed, in fields that leave their validity and addresses as they were
 *    (a quarantine, a readmission, new endpoints): Compiler.updateNodes, which names them too;
 *  - `compile`: anything else item-level: compile the patched snapshot in full, in memory, and
 *    name the nodes whose configs differ from the last compilation (compared member by member:
 *    the publisher then encodes and signs only those).
 * Pure: the controller does the reading and publishing. Nothing here outlives a full read.
 */
import { Compiler, type CompileResult } from '../fabric/compile.js';
import type { Issue } from '../fabric/issues.js';
import type { BlockRef, NodeId } from '../fabric/schema.js';
import { sameConfigContent } from '../fabric/config-equal.js';
import { canonicalJson } from '../fabric/encoding.js';
import type { ItemsRead, SnapshotRead } from './chain/registry.js';
import { HeldSnapshot } from './held-snapshot.js';
import { ruleDelta } from './rule-delta.js';

export type PassKind = 'full-read' | 'rules' | 'nodes' | 'compile';

export interface Compiled {
  readonly block: BlockRef;
  readonly kind: PassKind;
  readonly result: CompileResult;
  /** Read issues, then compile issues: what a full read and compile at this block report. */
  readonly issues: readonly Issue[];
  /** `rules`, `nodes` and `compile`: the nodes whose configs may differ; every other node is unchanged. */
  readonly changed?: ReadonlySet<NodeId>;
  /** The item changes applied (0 for a full read). */
  readonly itemsChanged: number;
}

export class NetworkState {
  private heldSnapshot: HeldSnapshot | undefined;
  private compiler = new Compiler();
  private last: Compiled | undefined;

  get held(): HeldSnapshot | undefined {
    return this.heldSnapshot;
  }

  get current(): Compiled | undefined {
    return this.last;
  }

  /** Replaces everything with a full read. */
  adopt(read: SnapshotRead): Compiled {
    const compiler = new Compiler();
    const result = compiler.compile(read.snapshot);
    this.heldSnapshot = HeldSnapshot.of(read);
    this.compiler = compiler;
    return (this.last = { block: read.snapshot.block, kind: 'full-read', result, issues: [...read.issues, ...result.issues], itemsChanged: 0 });
  }

  /**
   * Patches the items read and recompiles. Undefined (nothing changed) when the patch cannot be
   * applied: no held snapshot, or the network itself differs (the caller reads in full).
   */
  apply(read: ItemsRead): Compiled | undefined {
    const held = this.heldSnapshot;
    if (!held || canonicalJson(read.network) !== canonicalJson(held.network)) return undefined;
    const rulesBefore = held.list('rule');
    const changes = held.patch(read);
    const patched = held.read();
    const delta = changes.every((c) => c.kind === 'rule') ? ruleDelta(rulesBefore, held.list('rule'), changes) : undefined;
    let result: CompileResult;
    let changed: ReadonlySet<NodeId> | undefined;
    let nodes: ReturnType<Compiler['updateNodes']>;
    if (delta) {
      const r = this.compiler.updateRules(held.block, delta.upserted, delta.removed, patched.snapshot.rules);
      result = r;
      changed = r.changed;
    } else if (changes.every((c) => c.kind === 'node') && (nodes = this.compiler.updateNodes(patched.snapshot))) {
      result = nodes;
      changed = nodes.changed;
    } else {
      const before = this.last?.result.configs;
      result = this.compiler.compile(patched.snapshot);
      if (before) {
        const differ = new Set<NodeId>();
        for (const [node, config] of result.configs) {
          const old = before.get(node);
          if (!old || !sameConfigContent(old, config)) differ.add(node);
        }
        changed = differ;
      }
    }
    const kind: PassKind = delta ? 'rules' : nodes ? 'nodes' : 'compile';
    return (this.last = { block: held.block, kind, result, issues: [...patched.issues, ...result.issues], itemsChanged: changes.length, ...(changed ? { changed } : {}) });
  }

  /** Forgets everything: the next pass reads in full (after a failure part-way through a pass). */
  reset(): void {
    this.heldSnapshot = undefined;
    this.compiler = new Compiler();
  }
}
