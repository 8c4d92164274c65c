/**
 * bench:control's "silent node dropped by peers": one simulated agent vanishes (its connection
 * drops without a DISCONNECT, so the broker publishes its signed "offline" last will); the
 * controller's gatekeeper finds it degraded, waits the grace, quarantines it on chain (its proxy
 * account acting for the operator); the controller compiles it out of its peers' configs, and
 * they acknowledge. Measured from the moment quarantine became due (the will's arrival at the
 * bench's own observer, plus the grace) to the last acknowledgement, by a peer of that node, of a
 * config without it. Each trial drops another node; the bench runs it last, after the cases that
 * expect every agent to answer.
 */
import type { NodeId } from '../../fabric/schema.js';
import { configHash } from '../../fabric/encoding.js';
import type { Decision } from '../../controller/gatekeeper.js';
import type { PassRecord } from '../../controller/controller.js';
import type { ControllerService } from '../../controller/service.js';

export interface SilentNodeContext {
  readonly service: ControllerService;
  readonly graceMs: number;
  /** The configs each block's pass published (block number -> nodes). */
  readonly published: ReadonlyMap<number, readonly string[]>;
  /** The controller's pass for each block. */
  readonly passes: ReadonlyMap<number, PassRecord>;
  /** Makes node `i`'s agent vanish (no DISCONNECT: its will fires). */
  vanish(i: number): Promise<void>;
  /** The observer's receipt time (performance.now()) of the node's "offline" status. */
  offline(node: NodeId, timeoutMs?: number): Promise<number>;
  /** The time (performance.now()) the last of `expect` (node -> config hash) was acknowledged. */
  acked(expect: ReadonlyMap<string, string>, timeoutMs?: number): Promise<number>;
  /** The time (performance.now()) block `n`'s finalized head reached this process. */
  finalized(n: number): Promise<number>;
  /** When the gatekeeper submitted the node's quarantine (performance.now()). */
  submitted(node: NodeId): number | undefined;
}

export interface SilentTrial {
  readonly node: NodeId;
  /** Quarantine due (will received + grace) -> the last peer's acknowledgement of a config without it. */
  readonly ms: number;
  /** Nodes that had it as a peer. */
  readonly peers: number;
  /** Due -> the gatekeeper's quarantine transaction submitted (its next tick). */
  readonly toSubmit: number;
  /** That transaction submitted -> its block final: the chain's block time, the baseline. */
  readonly blockMs: number;
  /** That block final -> the last peer's acknowledgement (the controller's pass, the agents). */
  readonly toAck: number;
  readonly block: number;
  /** The controller's pass for that block (read, compile, sign and publish). */
  readonly pass: PassRecord['ms'] | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Drops node `i` and measures until every peer runs without it. */
export async function silentNodeTrial(c: SilentNodeContext, i: number, node: NodeId): Promise<SilentTrial> {
  const gatekeeper = c.service.gatekeeper;
  if (!gatekeeper) throw new Error('silent node: the controller runs no gatekeeper');
  const configs = c.service.controller.current!.configs;
  const peers = [...configs].filter(([n, cfg]) => n !== node && cfg.peers.some((p) => p.node === node)).map(([n]) => n);
  if (peers.length === 0) throw new Error(`silent node: ${node} is nobody's peer`);
  const decided = gatekeeper.decisions.length;

  await c.vanish(i);
  const due = (await c.offline(node, 30_000)) + c.graceMs;

  // The gatekeeper's decision names the block its quarantine landed in.
  const deadline = performance.now() + 60_000;
  let d: Decision | undefined;
  while (!(d = gatekeeper.decisions.slice(decided).find((x) => x.node === node))) {
    if (performance.now() > deadline) throw new Error(`silent node: ${node} was not quarantined within 60 s of its will`);
    await sleep(20);
  }
  if (d.outcome !== 'submitted' || d.block === undefined) throw new Error(`silent node: quarantine of ${node}: ${d.outcome} ${d.error ?? ''}`);
  const final = await c.finalized(d.block);
  const submitted = c.submitted(node);
  if (submitted === undefined) throw new Error(`silent node: the quarantine of ${node} was not seen submitted`);
  await c.service.controller.reached(d.block, 60_000);
  const now = c.service.controller.current!.configs;
  const names = new Set(c.published.get(d.block) ?? []);
  for (const p of peers) {
    if (!names.has(p)) throw new Error(`silent node: the quarantine block #${d.block} republished no config for ${p}, a peer of ${node}`);
    if (now.get(p)!.peers.some((x) => x.node === node)) throw new Error(`silent node: ${p}'s config of block #${d.block} still lists ${node}`);
  }
  const hashes = (ns: Iterable<string>) => new Map([...ns].map((n) => [n, configHash(now.get(n)!)]));
  const last = await c.acked(hashes(peers));
  // Everything else that block changed settles before the next trial starts.
  names.delete(node);
  await c.acked(hashes(names));
  return { node, ms: last - due, peers: peers.length, toSubmit: submitted - due, blockMs: final - submitted, toAck: last - final, block: d.block, pass: c.passes.get(d.block)?.ms };
}
