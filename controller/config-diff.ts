/** Compares two compilations byte for byte: how the periodic full read checks the incremental path. Pure. */
import { Buffer } from 'node:buffer';
import type { CompileResult } from '../fabric/compile.js';
import { encodeConfig } from '../fabric/encoding.js';
import type { NodeId } from '../fabric/schema.js';

/** The nodes whose canonical config encodings differ, including nodes configured in one only; in id order. */
export function differingNodes(a: CompileResult, b: CompileResult): NodeId[] {
  const out: NodeId[] = [];
  for (const [node, ca] of a.configs) {
    const cb = b.configs.get(node);
    if (!cb || Buffer.compare(encodeConfig(ca), encodeConfig(cb)) !== 0) out.push(node);
  }
  for (const node of b.configs.keys()) if (!a.configs.has(node)) out.push(node);
  return out.sort();
}
