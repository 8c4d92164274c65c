/**
 * Benchmark: one reconcile pass that takes a node from nothing to 1,000 peers and 10,000 ACL
 * entries, with the real drivers (wireguard-go over UAPI, rtnetlink, the eBPF ACL), run in this
 * process inside a namespace of its own. The config is what fabric compiles for node n0 of a
 * 1,001-node DVCI (a full mesh: 1,000 peers) where a rule joins 100 slots on n0 to 100 slots on
 * other nodes (100 x 100 = 10,000 entries, each IPv4 + IPv6: 20,000 tuples).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { compile } from '../../fabric/compile.js';
import { aclTupleCount, emptyState } from '../../fabric/dataplane-state.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { parseSnapshot } from '../../fabric/parse-snapshot.js';
import { createAclDriver } from '../../overlay/acl/index.js';
import { desiredDataplane } from '../../overlay/agent/desired.js';
import { reconcileStep, stepErrorText, type Dataplane } from '../../overlay/agent/reconcile-step.js';
import { RtnetlinkRouteDriver } from '../../overlay/routes/rtnetlink-route-driver.js';
import { generatePrivateKey, keyToBase64, publicKeyOf } from '../../overlay/wireguard/keys.js';
import { UapiBackend } from '../../overlay/wireguard/uapi-backend.js';
import { LAB_OPERATOR, LAB_OWNER } from '../lab-mesh.js';
import { createNetns, deleteNetns, enterNetns, netnsPids, run } from '../netns.js';

export interface ApplyResult {
  readonly peers: number;
  /** (src slot, dst slot, port range) allowances; each is a kernel tuple per address family. */
  readonly aclEntries: number;
  readonly kernelTuples: number;
  readonly routes: number;
  /** The whole pass: observe, plan, apply, re-observe. */
  readonly totalMs: number;
  /** Time inside each driver call, summed. */
  readonly phasesMs: Readonly<Record<string, number>>;
  readonly compileMs: number;
  /** Baseline: `wg setconf` loading the same peers into a fresh wireguard-go (peers only). */
  readonly wgSetconfMs: number;
}

/** fabric's config for n0 of the synthetic network, and n0's private key. */
export function bigConfig(peers = 1000, slotsPerSide = 100): { config: NodeConfig; privateKey: string; compileMs: number } {
  const priv = generatePrivateKey();
  const nodes = Array.from({ length: peers + 1 }, (_, i) => ({
    id: `n${i}`,
    seq: i + 1,
    owner: LAB_OWNER,
    dvci: 'bench',
    wgPublicKey: keyToBase64(publicKeyOf(i === 0 ? priv : generatePrivateKey())),
    endpoints: [`198.18.${i >> 8}.${i & 255}:51820`],
    state: 'active',
  }));
  const slot = (id: string, node: string, group: string, seq: number) => ({ id, seq, owner: LAB_OWNER, node, state: 'assigned', vcpus: 1, memoryMiB: 256, diskGiB: 1, image: 'bench', groups: [group] });
  const slots = [
    ...Array.from({ length: slotsPerSide }, (_, i) => slot(`a${i}`, 'n0', 'a', i + 1)),
    ...Array.from({ length: slotsPerSide }, (_, i) => slot(`b${i}`, `n${1 + (i % peers)}`, 'b', slotsPerSide + i + 1)),
  ];
  const raw = {
    network: { id: 'bench', operator: LAB_OPERATOR },
    block: { number: 1, hash: `0x${'1'.padStart(64, '0')}` },
    dvcis: [{ id: 'bench', operator: LAB_OPERATOR }],
    nodes,
    slots,
    rules: [{ id: 'a-to-b', owner: LAB_OWNER, from: 'group:a', to: 'group:b', proto: 'tcp', ports: ['443'] }],
  };
  const t0 = performance.now();
  const { snapshot } = parseSnapshot(raw);
  const config = compile(snapshot).configs.get('n0')!;
  return { config, privateKey: keyToBase64(priv), compileMs: performance.now() - t0 };
}

/** Times `wg setconf` of the config's peers on a second, fresh wireguard-go interface. */
async function wgSetconf(wg: UapiBackend, ifname: string, config: NodeConfig, dir: string): Promise<number> {
  await wg.ensureInterface(ifname, keyToBase64(generatePrivateKey()), 51999);
  const lines = ['[Interface]', 'ListenPort = 51999', ''];
  for (const p of config.peers) lines.push('[Peer]', `PublicKey = ${p.publicKey}`, `Endpoint = ${p.endpoints[0]}`, `AllowedIPs = ${p.allowedIps.join(', ')}`, `PersistentKeepalive = ${p.keepalive}`, '');
  const file = `${dir}/setconf.conf`;
  writeFileSync(file, lines.join('\n'));
  const t0 = performance.now();
  run('wg', ['setconf', ifname, file]);
  const ms = performance.now() - t0;
  await wg.deleteInterface(ifname);
  return ms;
}

/** Wraps every driver method so that the time spent in it is added to `into[name]`. */
function timed<T extends object>(name: string, target: T, into: Record<string, number>): T {
  return new Proxy(target, {
    get(obj, prop, recv) {
      const v = Reflect.get(obj, prop, recv) as unknown;
      if (typeof v !== 'function' || prop === 'constructor') return v;
      return async (...args: unknown[]) => {
        const t0 = performance.now();
        try {
          return await (v as (...a: unknown[]) => unknown).apply(obj, args);
        } finally {
          const key = `${name}.${String(prop)}`;
          into[key] = (into[key] ?? 0) + performance.now() - t0;
        }
      };
    },
  });
}

export async function benchApply(opts: { peers?: number; slotsPerSide?: number } = {}): Promise<ApplyResult> {
  const { config, privateKey, compileMs } = bigConfig(opts.peers ?? 1000, opts.slotsPerSide ?? 100);
  const ns = `s0-bapply-${process.pid}`;
  const dir = `/run/sub0-bench-${process.pid}`;
  const ifname = `s0ba${process.pid.toString(36)}`;
  createNetns(ns);
  mkdirSync(dir, { recursive: true });
  const back = await enterNetns(ns);
  const phases: Record<string, number> = {};
  const wg = new UapiBackend({ runDir: dir });
  const routes = new RtnetlinkRouteDriver();
  const acl = await createAclDriver({ pinDir: `${dir}/bpf` });
  try {
    if (acl.kind !== 'ebpf') throw new Error(`eBPF ACL unavailable: ${acl.fallbackReason}`);
    const dp: Dataplane = { wg: timed('wg', wg, phases), routes: timed('routes', routes, phases), acl: timed('acl', acl, phases) };
    const guarded = ['100.96.0.0/11'];
    // The interface and the hook exist before the timed pass (a node that just joined).
    await reconcileStep(dp, { ifname, privateKey, guarded, desired: { ...emptyState(config.interface.listenPort), addresses: new Set(config.interface.addresses) } });
    for (const k of Object.keys(phases)) delete phases[k];
    const t0 = performance.now();
    const desired = await desiredDataplane(config);
    phases['desired-state'] = performance.now() - t0;
    const r = await reconcileStep(dp, { ifname, privateKey, guarded, desired });
    const totalMs = performance.now() - t0;
    if (r.status !== 'changed') throw new Error(`the pass did not converge: ${r.errors.map(stepErrorText).join('; ')}`);
    const wgSetconfMs = await wgSetconf(wg, `${ifname}w`, config, dir);
    return { peers: r.reached.peers, aclEntries: aclTupleCount(config.acl) / 2, kernelTuples: r.reached.acl, routes: r.reached.routes, totalMs, phasesMs: phases, compileMs, wgSetconfMs };
  } finally {
    await acl.destroy().catch(() => undefined);
    await wg.deleteInterface(ifname).catch(() => undefined);
    await wg.close();
    await routes.close();
    back();
    for (const pid of netnsPids(ns)) if (pid !== process.pid) run('kill', ['-9', String(pid)], { allowFail: true });
    deleteNetns(ns);
    run('umount', [`${dir}/bpf`], { allowFail: true });
    rmSync(dir, { recursive: true, force: true });
  }
}
