/**
 * Parsed snapshot entries back in the shape fabric's schemas take as input (the shape of a
 * snapshot file, of `sub0 chain snapshot --json`, and of registry changes): selectors back to
 * `group:web` text, port ranges back to `8000-8100`. Parsing the result again gives the same
 * entries.
 */
import type { AclRule, ChainSnapshot, PortRange, Selector } from '../../fabric/schema.js';

export function snapshotToInput(s: ChainSnapshot): Record<string, unknown> {
  return { network: s.network, block: s.block, dvcis: s.dvcis, nodes: s.nodes, slots: s.slots, rules: s.rules.map(ruleToInput) };
}

export function ruleToInput(r: AclRule): Record<string, unknown> {
  return { ...r, from: selectorText(r.from), to: selectorText(r.to), ports: r.ports.map(portText) };
}

const selectorText = (s: Selector) => `${s.kind}:${s.value}`;
const portText = (p: PortRange) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`);
