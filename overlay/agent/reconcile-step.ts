/**
 * One reconcile: make sure the interface and the ACL hook exist, observe what the kernel has,
 * plan against the desired state, apply in phases, observe again, and report the state reached
 * (not the state hoped for). Errors are collected and the other phases still run; what did not
 * take shows up as ops that remain when the reached state is planned against again.
 *
 * Phase order (fabric's plan is add-before-delete; this keeps it across drivers): addresses
 * added; every peer op in one WireGuard transaction (adds and updates before removes, so a peer
 * is never down while its replacement comes up); routes added; ACL tuples added then removed;
 * routes and addresses removed (ACL removals come first: permission is cut before reachability).
 * A new peer or route never carries traffic the ACL has not allowed: the ACL denies by default,
 * and its hook is attached before anything is added (fail closed).
 *
 * Observation cost: the ACL driver serves its shadow of what it wrote (AclDriver.observe) unless
 * the pass is `fresh` (the reconciler's resync, a retry, an explicit trigger), so a rule change at
 * 10,000s of tuples re-reads no map; the WireGuard and route drivers read the kernel every time.
 */
import { aclKey, type AclTuple, type DataplaneState } from '../../fabric/dataplane-state.js';
import { codedError, type CodedError } from '../../fabric/errors.js';
import { plan, type Op } from '../../fabric/plan.js';
import type { AclDriver, AclOp, PeerOp, RouteDriver, RouteOp, WireguardBackend } from '../drivers.js';
import { canonicalCidr } from '../../fabric/ip.js';

export interface Dataplane {
  readonly wg: WireguardBackend;
  readonly routes: RouteDriver;
  /** Absent when ACL enforcement is switched off (labs and benchmarks only). */
  readonly acl: AclDriver | undefined;
}

export interface StepInput {
  readonly ifname: string;
  /** base64, from the agent's state dir */
  readonly privateKey: string;
  /** fabric's slotPrefixes() of the network */
  readonly guarded: readonly string[];
  readonly desired: DataplaneState;
  /** Read the kernel in full, shadows included (resync, retry): see AclDriver.observe. */
  readonly fresh?: boolean;
  /**
   * What the previous pass left the kernel holding (its reached state) and the ACL keys the new
   * config may have changed (DesiredTracker): planned against without reading the kernel first,
   * and without re-reading the WireGuard device (the previous pass set it up; the ACL hook is
   * still checked, which also finds a vanished interface). Only for a pass after one that did not
   * fail, never with `fresh`. `observed` is handed over: the step updates its ACL map in place.
   */
  readonly known?: { readonly observed: DataplaneState; readonly aclKeys: ReadonlySet<string> };
  /** Adjusts the desired state to what was observed, before planning (the agent's one-initiator policy). */
  readonly shape?: (desired: DataplaneState, observed: DataplaneState) => DataplaneState;
}

export type OpCounts = Partial<Record<Op['op'], number>>;

export interface StepError extends CodedError {
  /** Where in the pass: ensure, observe, addresses, peers, routes, acl, removals, re-observe, converge. */
  readonly phase: string;
}

/** One line for logs and the signed status: `phase: code: message`. */
export const stepErrorText = (e: StepError) => `${e.phase}: ${e.code}: ${e.message}`;

export interface StepResult {
  /** unchanged: nothing to do; changed: everything applied; failed: something did not take. */
  readonly status: 'unchanged' | 'changed' | 'failed';
  readonly applied: OpCounts;
  /** Ops still needed after the re-observation (0 unless failed). */
  readonly remaining: OpCounts;
  /** What failed, by phase, with its code (kept as such in status.json). */
  readonly errors: readonly StepError[];
  /** What the kernel holds now, in counts. */
  readonly reached: { peers: number; routes: number; acl: number; addresses: number; listenPort: number };
  /** ms spent per step (ensure, observe, plan, each apply phase, reobserve): where a slow pass went. */
  readonly timings?: Readonly<Record<string, number>>;
  /** The state read back at the end (absent when the pass failed before it could read it). */
  readonly state?: DataplaneState;
}

export async function observeDataplane(dp: Dataplane, ifname: string, desiredAcl?: DataplaneState['acl'], fresh = true): Promise<DataplaneState> {
  const [wg, rt, acl] = await Promise.all([dp.wg.observe(ifname), dp.routes.observe(ifname), dp.acl ? dp.acl.observe({ fresh }) : undefined]);
  return {
    addresses: rt.addresses,
    listenPort: wg.listenPort,
    peers: wg.peers,
    routes: rt.routes,
    // Without an ACL driver there is nothing to reconcile: report the desired tuples as held.
    acl: acl ? canonicalAcl(acl) : new Map(desiredAcl ?? []),
  };
}

/**
 * Reads back what the pass touched; a driver that got no op keeps its first observation (nothing
 * of ours changed there, and re-reading 20,000 ACL tuples or 1,000 peers costs 100s of ms). The
 * ACL driver answers from its shadow (it re-reads the kernel by itself after a failed apply).
 */
async function reobserve(
  dp: Dataplane,
  ifname: string,
  before: DataplaneState,
  desiredAcl: DataplaneState['acl'],
  touched: { wg: boolean; routes: boolean; acl: boolean },
  aclKeys: ReadonlySet<string> | undefined,
): Promise<DataplaneState> {
  const readAcl = async (acl: AclDriver) => (aclKeys ? patch(before.acl, aclKeys, canonicalAcl(await acl.observe({ keys: aclKeys }))) : canonicalAcl(await acl.observe()));
  const [wg, rt, acl] = await Promise.all([
    touched.wg ? dp.wg.observe(ifname) : undefined,
    touched.routes ? dp.routes.observe(ifname) : undefined,
    touched.acl && dp.acl ? readAcl(dp.acl) : undefined,
  ]);
  return {
    addresses: rt ? rt.addresses : before.addresses,
    listenPort: wg ? wg.listenPort : before.listenPort,
    peers: wg ? wg.peers : before.peers,
    routes: rt ? rt.routes : before.routes,
    acl: acl ?? (dp.acl ? before.acl : new Map(desiredAcl)),
  };
}

/** `base` with what is held under `keys` now: in place, `base` is the step's own (StepInput.known). */
function patch(base: ReadonlyMap<string, AclTuple>, keys: ReadonlySet<string>, held: ReadonlyMap<string, AclTuple>): ReadonlyMap<string, AclTuple> {
  const m = base as Map<string, AclTuple>;
  for (const k of keys) {
    const t = held.get(k);
    if (t) m.set(k, t);
    else m.delete(k);
  }
  return m;
}

/**
 * Re-keys observed tuples by the canonical spelling, keeping the driver's own tuple for removal.
 * The drivers already spell addresses canonically and key by aclKey(): then the map is taken as
 * it is (observe() hands over a map of its own), without re-keying 20,000 tuples.
 */
function canonicalAcl(acl: ReadonlyMap<string, AclTuple>): ReadonlyMap<string, AclTuple> {
  let canonical = true;
  for (const t of acl.values()) {
    if (canonicalCidr(t.src) !== t.src || canonicalCidr(t.dst) !== t.dst) {
      canonical = false;
      break;
    }
  }
  if (canonical) return acl;
  const out = new Map<string, AclTuple>();
  for (const t of acl.values()) out.set(aclKey({ ...t, src: canonicalCidr(t.src), dst: canonicalCidr(t.dst) }), t);
  return out;
}

function count(ops: readonly Op[]): OpCounts {
  const c: OpCounts = {};
  for (const o of ops) c[o.op] = (c[o.op] ?? 0) + 1;
  return c;
}

const stepError = (phase: string, e: unknown): StepError => ({ phase, ...codedError(e) });

export async function reconcileStep(dp: Dataplane, input: StepInput): Promise<StepResult> {
  const { ifname, desired } = input;
  const errors: StepError[] = [];
  const timings: Record<string, number> = {};
  let mark = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    timings[name] = Math.round((now - mark) * 10) / 10;
    mark = now;
  };
  const reachedOf = (s: DataplaneState) => ({ peers: s.peers.size, routes: s.routes.size, acl: s.acl.size, addresses: s.addresses.size, listenPort: s.listenPort });
  const failedEarly = async (phase: string, e: unknown): Promise<StepResult> => {
    errors.push(stepError(phase, e));
    let reached = { peers: 0, routes: 0, acl: 0, addresses: 0, listenPort: 0 };
    try {
      reached = reachedOf(await observeDataplane(dp, ifname, desired.acl));
    } catch {
      /* nothing more to say */
    }
    return { status: 'failed', applied: {}, remaining: {}, errors, reached };
  };

  const known = input.fresh ? undefined : input.known;
  try {
    if (!known) await dp.wg.ensureInterface(ifname, input.privateKey, desired.listenPort);
    // Fail closed: without enforcement attached, new peers and routes would carry anything.
    if (dp.acl) await dp.acl.attach(ifname, input.guarded);
  } catch (e) {
    return failedEarly('ensure', e);
  }
  lap('ensure');

  let observed: DataplaneState;
  try {
    observed = known ? known.observed : await observeDataplane(dp, ifname, desired.acl, input.fresh ?? false);
  } catch (e) {
    return failedEarly('observe', e);
  }
  lap('observe');
  const planOpts = known ? { aclKeys: known.aclKeys } : {};
  const want = input.shape ? input.shape(desired, observed) : desired;
  const ops = plan(want, observed, planOpts);
  lap('plan');
  if (ops.length === 0) return { status: 'unchanged', applied: {}, remaining: {}, errors, reached: reachedOf(observed), timings, state: observed };

  // acl-remove ops must name the tuple as the driver holds it.
  const aclOps = ops.filter((o): o is AclOp => o.op === 'acl-add' || o.op === 'acl-remove');
  const routeOps = (kinds: readonly RouteOp['op'][]) => ops.filter((o): o is RouteOp => (kinds as readonly string[]).includes(o.op));
  const peerOps = ops.filter((o): o is PeerOp => o.op === 'peer-add' || o.op === 'peer-update' || o.op === 'peer-remove' || o.op === 'listen-port');
  const phases: [string, () => Promise<void>][] = [
    ['addresses', () => dp.routes.apply(ifname, routeOps(['address-add']))],
    ['peers', () => dp.wg.apply(ifname, peerOps)],
    ['routes', () => dp.routes.apply(ifname, routeOps(['route-add']))],
    ['acl', async () => void (dp.acl && aclOps.length > 0 && (await dp.acl.apply(aclOps)))],
    ['removals', () => dp.routes.apply(ifname, routeOps(['route-remove', 'address-remove']))],
  ];
  for (const [name, run] of phases) {
    try {
      await run();
    } catch (e) {
      errors.push(stepError(name, e));
    }
    lap(name);
  }

  let reached: DataplaneState;
  try {
    reached = await reobserve(
      dp,
      ifname,
      observed,
      desired.acl,
      { wg: peerOps.length > 0, routes: ops.some((o) => o.op.startsWith('address-') || o.op.startsWith('route-')), acl: aclOps.length > 0 },
      known?.aclKeys,
    );
  } catch (e) {
    errors.push(stepError('re-observe', e));
    return { status: 'failed', applied: count(ops), remaining: count(ops), errors, reached: reachedOf(observed) };
  }
  lap('reobserve');
  const left = plan(want, reached, planOpts);
  const applied = count(ops);
  if (left.length > 0 && errors.length === 0) errors.push({ phase: 'converge', code: 'driver', message: `${left.length} op(s) did not take: ${left.slice(0, 3).map((o) => o.op).join(', ')}` });
  return { status: errors.length > 0 ? 'failed' : 'changed', applied, remaining: count(left), errors, reached: reachedOf(reached), timings, state: reached };
}
