/**
 * The eBPF ACL driver: acl.bpf.o's tc program on the WireGuard interface's ingress and egress,
 * its maps updated from Node through libbpf (koffi). See acl.bpf.c for what the program decides.
 *
 * Lifecycle: attach() mounts the bpffs, then loads the object and pins its maps and programs under
 * <pinRoot>/net-<netns>/<ifname>, or finds them pinned there by an earlier run of the agent (so a
 * restart keeps the maps and, with the same desired state, changes nothing), then attaches. The
 * reconcile loop calls attach() every round: it re-attaches when the filter is missing (the
 * interface was re-created) and does nothing otherwise. Program pins carry a hash of the object,
 * so an upgraded agent replaces the program but keeps compatible maps.
 *
 * The rules are held by identity (rule-maps.ts, identities.ts): an address -> identity map and a
 * policy map keyed by identities, so kernel entries grow with addresses plus rules. The layout
 * 'pairs' (acl-pairs.bpf.o, one entry per address pair) is the earlier design, kept as the
 * benchmark's baseline.
 *
 * Shadow (see AclDriver.observe): the driver keeps the groups the kernel holds in memory — read in
 * full at attach, then changed by apply() only after the map writes succeeded — and observe()
 * serves it, so a pass at 10,000s of entries does not re-read and re-decode the whole map. A
 * fresh observe, or the first observe after a failed apply, reads the maps again; when that read
 * differs from the shadow (an entry changed behind the agent's back), the read replaces it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { AclTuple } from '../../fabric/dataplane-state.js';
import { Sub0Error, summarize } from '../../fabric/errors.js';
import type { AclDriver, AclObserveOptions, AclOp } from '../drivers.js';
import { parsePrefix } from './addr.js';
import { DEFAULT_PIN_ROOT, ensureBpffs, pinDir } from './bpffs.js';
import { BpfMap, decodeFlow, FLOW_KEY_SIZE, FLOW_VAL_SIZE, LPM_KEY_SIZE, lpmKey } from './bpf-maps.js';
import { check, libbpf, type Libbpf } from './libbpf.js';
import { checkRanges, MAP_SIZES, ruleMaps, type AclLayout, type RuleMaps } from './rule-maps.js';
import { RuleSet, ShadowTable } from './rule-set.js';
import { attachLibbpf, attachTcCli, detachLibbpf, detachTcCli, linkType } from './tc-attach.js';

const BPF_DIR = join(dirname(fileURLToPath(import.meta.url)), 'bpf');
export const OBJECT_PATH = join(BPF_DIR, 'acl.bpf.o');
/** The object of each layout. */
export const OBJECT_PATHS: Record<AclLayout, string> = { identity: OBJECT_PATH, pairs: join(BPF_DIR, 'acl-pairs.bpf.o') };
const COMMON_MAPS = ['acl_flows', 'acl_guard', 'acl_stats'] as const;
const LAYOUT_MAPS: Record<AclLayout, readonly string[]> = { identity: ['acl_ident', 'acl_policy'], pairs: ['acl_rules'] };

export interface EbpfAclOptions {
  /** Mount point of the agent's own bpffs. Default /run/sub0/bpf. */
  readonly pinRoot?: string;
  readonly objectPath?: string;
  /** How rules are held: 'identity' (the default) or 'pairs' (the earlier design; its object must match). */
  readonly layout?: AclLayout;
  /** 'libbpf' (bpf_tc_* API, the default when present) or 'tc' (iproute2's tc, the fallback). */
  readonly attachVia?: 'libbpf' | 'tc';
  readonly logger?: Logger;
}

interface Attached {
  readonly ifname: string;
  readonly dir: string;
  readonly rules: RuleMaps;
  readonly flows: BpfMap;
  readonly guard: BpfMap;
  readonly progs: { readonly eth: Prog; readonly raw: Prog };
  readonly fds: number[];
}

interface Prog {
  readonly fd: number;
  readonly id: number;
  readonly pin: string;
}

export class EbpfAclDriver implements AclDriver {
  readonly kind = 'ebpf' as const;
  private readonly bpf: Libbpf;
  private readonly root: string;
  private readonly objectPath: string;
  private readonly via: 'libbpf' | 'tc';
  private readonly layout: AclLayout;
  private readonly log: Logger | undefined;
  private at: Attached | undefined;
  /** What the rules map holds, as far as this process wrote or read it. */
  private readonly shadow = new ShadowTable();
  /** The shadow may be wrong (not read yet, or an apply failed): the next observe reads the map. */
  private stale = true;

  constructor(opts: EbpfAclOptions = {}) {
    this.bpf = libbpf();
    this.root = opts.pinRoot ?? DEFAULT_PIN_ROOT;
    this.layout = opts.layout ?? 'identity';
    this.objectPath = opts.objectPath ?? OBJECT_PATHS[this.layout];
    this.via = opts.attachVia ?? (this.bpf.tc ? 'libbpf' : 'tc');
    this.log = opts.logger;
  }

  /**
   * Idempotent; see the file comment. The first interface names the pinned maps (the WireGuard
   * interface); further ones (the slots' taps) get the same programs over the same maps, so one
   * rule set governs traffic across nodes and between the slots of one node.
   */
  async attach(ifname: string, guarded: readonly string[]): Promise<void> {
    if (!this.at) {
      await ensureBpffs(this.root);
      this.at = this.open(ifname);
      this.resync();
    }
    this.syncGuard(guarded);
    await this.hook(this.at, ifname);
  }

  /** The shadow; read from the map first when `fresh`, or when the shadow may be wrong. */
  async observe(opts?: AclObserveOptions): Promise<ReadonlyMap<string, AclTuple>> {
    if (!this.at) return new Map();
    if (opts?.fresh || this.stale) this.resync();
    return this.shadow.tuples(opts?.keys);
  }

  /**
   * Writes each touched (src, dst, proto) entry once, updates before deletes; a revoke then sweeps
   * the flow map of the flows no remaining tuple allows. Errors are collected, the rest applied,
   * and one Sub0Error listing them is thrown at the end (observe() then reads the map again).
   */
  async apply(ops: readonly AclOp[]): Promise<void> {
    const at = this.at;
    if (!at) throw new Sub0Error('driver', 'apply() before attach()', { where: 'acl/ebpf' });
    if (this.stale) this.resync();
    const errors: string[] = [];
    // The touched groups only (empty ones too), over the shadow: no copy of 10,000s of groups.
    const next = new RuleSet();
    let revoked = false;
    for (const o of ops) {
      try {
        const { id, group } = next.with(o.entry, o.op === 'acl-add', this.shadow.rules.groups);
        next.groups.set(id, group);
        revoked ||= o.op === 'acl-remove';
      } catch (e) {
        errors.push(`${o.op} ${o.key}: ${(e as Error).message}`);
      }
    }
    const changes = [...next.groups].filter(([id, g]) => {
      try {
        checkRanges(id, g);
        return true;
      } catch (e) {
        errors.push((e as Error).message + ` (${id})`);
        return false;
      }
    });
    try {
      at.rules.write(changes, this.shadow, errors);
      if (revoked) {
        const cut = this.sweepFlows(at);
        this.log?.debug({ cut }, 'acl: flows cut after revoke');
      }
    } catch (e) {
      errors.push((e as Error).message);
    }
    if (errors.length > 0) {
      this.stale = true;
      throw new Sub0Error('driver', `acl apply: ${summarize(errors)}`, { where: `acl/ebpf ${at.ifname}` });
    }
  }

  /** Detaches from the interface (if it still exists), closes the fds and removes the pins. */
  async destroy(): Promise<void> {
    const at = this.at;
    if (!at) return;
    this.at = undefined;
    this.stale = true;
    const ifindex = this.bpf.ifIndex(at.ifname);
    if (ifindex > 0) {
      if (this.via === 'libbpf' && this.bpf.tc) detachLibbpf(this.bpf.tc, ifindex);
      else await detachTcCli(at.ifname);
    }
    for (const fd of at.fds) this.bpf.close(fd);
    rmSync(at.dir, { recursive: true, force: true });
  }

  /** The flows that no remaining tuple allows are deleted: revoking a rule cuts its connections. */
  private sweepFlows(at: Attached): number {
    let cut = 0;
    for (const [k, v] of at.flows.entries()) {
      const f = decodeFlow(k, v);
      if (!this.shadow.rules.allows(f.src, f.dst, f.proto, f.dport)) {
        at.flows.delete(k);
        cut++;
      }
    }
    return cut;
  }

  /** Reads the rule maps in full; replaces the shadow when the kernel holds something else. */
  private resync(): void {
    if (!this.at) return;
    const read = this.at.rules.read(this.stale);
    if (read === undefined) return; // exactly what this process wrote: the shadow is right
    const drift = this.shadow.replace(read, this.stale);
    if (drift > 0 && !this.stale) this.log?.warn({ ifname: this.at?.ifname, groups: drift }, 'acl: the rules map differs from what the agent wrote; the next pass repairs it');
    this.stale = false;
  }

  private syncGuard(guarded: readonly string[]): void {
    const at = this.at!;
    const want = new Map<string, Buffer>();
    for (const cidr of guarded) {
      const p = parsePrefix(cidr);
      const bytes = Uint8Array.from(p.bytes);
      for (let bit = p.bits; bit < 128; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7)); // host bits off
      const k = lpmKey(bytes, p.bits);
      want.set(k.toString('hex'), k);
    }
    for (const k of at.guard.keys()) {
      if (!want.delete(k.toString('hex'))) at.guard.delete(k);
    }
    for (const k of want.values()) at.guard.update(k, Buffer.from([1]));
  }

  private async hook(at: Attached, ifname: string): Promise<void> {
    const ifindex = this.bpf.ifIndex(ifname);
    if (ifindex === 0) throw new Sub0Error('not-found', 'no such interface', { where: ifname });
    const tc = this.bpf.tc;
    if (this.via === 'libbpf' && tc) {
      const ours = new Set([at.progs.eth.id, at.progs.raw.id]);
      // The link type decides the program; ask for it only when something must be attached.
      if (attachLibbpf(tc, ifname, ifindex, ours) === 0) return;
      const prog = (await linkType(ifname)) === 'ether' ? at.progs.eth : at.progs.raw;
      const n = attachLibbpf(tc, ifname, ifindex, ours, prog.fd);
      this.log?.info({ ifname, hooks: n }, 'acl: eBPF program attached');
    } else {
      const prog = (await linkType(ifname)) === 'ether' ? at.progs.eth : at.progs.raw;
      await attachTcCli(ifname, prog.pin);
    }
  }

  /** Finds the pinned maps and programs, loading and pinning the object first if they are not there. */
  private open(ifname: string): Attached {
    const dir = pinDir(this.root, ifname);
    mkdirSync(dir, { recursive: true });
    const hash = createHash('sha256').update(readFileSync(this.objectPath)).digest('hex').slice(0, 12);
    const pins = { eth: join(dir, `acl_eth_${hash}`), raw: join(dir, `acl_raw_${hash}`) };
    if (!existsSync(pins.eth) || !existsSync(pins.raw)) this.load(dir, pins);
    const fds: number[] = [];
    const get = (path: string) => {
      const fd = check(this.bpf.objGet(path), 'bpf_obj_get', path);
      fds.push(fd);
      return fd;
    };
    try {
      const map = (name: string, k: number, v: number) => new BpfMap(this.bpf, get(join(dir, name)), name, k, v);
      const sized = (name: string) => map(name, ...MAP_SIZES[name]!);
      const prog = (pin: string): Prog => {
        const fd = get(pin);
        const info = Buffer.alloc(16);
        const len = new Uint32Array([16]);
        check(this.bpf.objInfo(fd, info, len), 'bpf_obj_get_info_by_fd', pin);
        return { fd, id: info.readUInt32LE(4), pin };
      };
      return {
        ifname, dir, fds,
        rules: ruleMaps(this.layout, sized),
        flows: map('acl_flows', FLOW_KEY_SIZE, FLOW_VAL_SIZE),
        guard: map('acl_guard', LPM_KEY_SIZE, 1),
        progs: { eth: prog(pins.eth), raw: prog(pins.raw) },
      };
    } catch (e) {
      for (const fd of fds) this.bpf.close(fd);
      throw e;
    }
  }

  private maps(): string[] {
    return [...LAYOUT_MAPS[this.layout], ...COMMON_MAPS];
  }

  /**
   * Loads the object with its maps pinned in `dir`: libbpf reuses a pinned map when it is
   * compatible, so rules and flows survive an agent restart or upgrade. If the pinned maps are
   * incompatible (a new layout), they are dropped and created afresh; the next reconcile refills them.
   */
  private load(dir: string, pins: { eth: string; raw: string }): void {
    const attempt = () => {
      const obj = this.bpf.objectOpenFile(this.objectPath);
      if (!obj) throw new Sub0Error('driver', `bpf_object__open_file failed: errno ${this.bpf.errno()}`, { where: this.objectPath });
      try {
        for (const name of this.maps()) {
          const m = this.bpf.findMap(obj, name);
          if (!m) throw new Sub0Error('driver', `no map ${name} in the object`, { where: this.objectPath });
          check(this.bpf.mapSetPinPath(m, join(dir, name)), 'bpf_map__set_pin_path', name);
        }
        check(this.bpf.objectLoad(obj), 'bpf_object__load', this.objectPath);
        for (const [name, pin] of [['acl_eth', pins.eth], ['acl_raw', pins.raw]] as const) {
          rmSync(pin, { force: true });
          const p = this.bpf.findProgram(obj, name);
          if (!p) throw new Sub0Error('driver', `no program ${name} in the object`, { where: this.objectPath });
          check(this.bpf.programPin(p, pin), 'bpf_program__pin', pin);
        }
      } finally {
        this.bpf.objectClose(obj); // pins keep maps and programs alive
      }
    };
    try {
      attempt();
    } catch (e) {
      if (!this.maps().some((m) => existsSync(join(dir, m)))) throw e;
      this.log?.warn({ err: e, dir }, 'acl: pinned maps incompatible with this object, recreating them');
      for (const m of this.maps()) rmSync(join(dir, m), { force: true });
      attempt();
    }
    // Programs of older objects: unpinned, they go once no filter holds them. So do the maps of
    // another layout (an agent from before identities kept its rules in acl_rules).
    const mine = new Set(this.maps());
    for (const f of readdirSync(dir)) {
      const path = join(dir, f);
      if (/^acl_(eth|raw)_[0-9a-f]+$/.test(f) && path !== pins.eth && path !== pins.raw) unlinkSync(path);
      else if (Object.values(LAYOUT_MAPS).flat().includes(f) && !mine.has(f)) unlinkSync(path);
    }
  }
}

