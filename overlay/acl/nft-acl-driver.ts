/**
 * The nftables ACL driver: the fallback where eBPF cannot load. Same contract and same decisions
 * as the eBPF driver (see nft-ruleset.ts for the table), with conntrack standing in for the flow
 * map. Every apply replaces the tuple sets' contents in one `nft -f` transaction (flush + add), so
 * packets see the old set or the new one, never a mix, and the kernel converges to the full desired
 * state whatever it held before. The table matches the interface by name, so it keeps working when
 * the interface is re-created, and it survives an agent restart (observe() reads it back).
 * Like the eBPF driver it keeps a shadow of the tuples it wrote (see AclDriver.observe): observe()
 * serves it and apply() starts from it, and both read the table again on a fresh observe, after
 * attach wrote the table, and after a failed apply.
 */
import type { Logger } from 'pino';
import type { AclTuple } from '../../fabric/dataplane-state.js';
import { Sub0Error, summarize } from '../../fabric/errors.js';
import type { AclDriver, AclObserveOptions, AclOp } from '../drivers.js';
import { parseHost } from './addr.js';
import { run, runOk } from './exec.js';
import { renderDelta, renderTable, tableName } from './nft-ruleset.js';
import { groupId, RuleSet, ShadowTable, type RuleGroup } from './rule-set.js';

export interface NftAclOptions {
  readonly logger?: Logger;
}

interface NftSetJson {
  nftables: { set?: { elem?: { concat?: (string | number)[] }[] } }[];
}

export class NftAclDriver implements AclDriver {
  readonly kind = 'nftables' as const;
  private ifname: string | undefined;
  private attachedWith: string | undefined;
  private readonly log: Logger | undefined;
  private readonly shadow = new ShadowTable();
  /** The shadow may be wrong (not read yet, table re-rendered, apply failed): read before use. */
  private stale = true;

  constructor(opts: NftAclOptions = {}) {
    this.log = opts.logger;
  }

  /** Creates or refreshes the table; a no-op when this process already did so with the same inputs. */
  async attach(ifname: string, guarded: readonly string[]): Promise<void> {
    if (this.ifname && this.ifname !== ifname) {
      throw new Sub0Error('invalid-input', `this ACL driver is attached to ${this.ifname}`, { where: ifname });
    }
    const text = renderTable(ifname, guarded);
    if (text === this.attachedWith && (await run('nft', ['list', 'chain', 'inet', tableName(ifname), 'ingress'])).code === 0) return;
    this.stale = true; // a table re-created (deleted by hand) comes back with empty sets
    await runOk('nft', ['-f', '-'], text);
    this.ifname = ifname;
    this.attachedWith = text;
    this.log?.info({ ifname, table: tableName(ifname) }, 'acl: nftables table in place');
  }

  async observe(opts?: AclObserveOptions): Promise<ReadonlyMap<string, AclTuple>> {
    if (!this.ifname) return new Map();
    if (opts?.fresh || this.stale) await this.resync(this.ifname);
    return this.shadow.tuples(opts?.keys);
  }

  /** Changes the elements of the touched groups in one transaction; the shadow follows when it took. */
  async apply(ops: readonly AclOp[]): Promise<void> {
    const ifname = this.ifname;
    if (!ifname) throw new Sub0Error('driver', 'apply() before attach()', { where: 'acl/nftables' });
    if (this.stale) await this.resync(ifname);
    const base = this.shadow.rules.groups;
    const touched = new RuleSet();
    const errors: string[] = [];
    for (const o of ops) {
      try {
        const { id, group } = touched.with(o.entry, o.op === 'acl-add', base);
        touched.groups.set(id, group);
      } catch (e) {
        errors.push(`${o.op} ${o.key}: ${(e as Error).message}`);
      }
    }
    const text = renderDelta(ifname, [...touched.groups].map(([id, g]) => [base.get(id), g] as const));
    try {
      if (text.trim() !== '') await runOk('nft', ['-f', '-'], text);
    } catch (e) {
      this.stale = true; // the sets are not what the shadow says (changed by hand?): read them first
      throw e;
    }
    for (const [id, g] of touched.groups) this.shadow.remember(id, g);
    if (errors.length > 0) throw new Sub0Error('driver', `acl apply: ${summarize(errors)}`, { where: `acl/nftables ${ifname}` });
  }

  async destroy(): Promise<void> {
    if (!this.ifname) return;
    await run('nft', ['delete', 'table', 'inet', tableName(this.ifname)]);
    this.ifname = undefined;
    this.attachedWith = undefined;
    this.stale = true;
  }

  /** Reads the record; replaces the shadow when the table holds something else. */
  private async resync(ifname: string): Promise<void> {
    const drift = this.shadow.replace(await this.read(ifname), this.stale);
    if (drift > 0 && !this.stale) this.log?.warn({ ifname, groups: drift }, 'acl: the nftables sets differ from what the agent wrote; the next pass repairs it');
    this.stale = false;
  }

  /** The record sets (tuples4, tuples6) as a RuleSet. */
  private async read(ifname: string): Promise<RuleSet> {
    const set = new RuleSet();
    for (const n of [4, 6]) {
      const out = await runOk('nft', ['-j', 'list', 'set', 'inet', tableName(ifname), `tuples${n}`]);
      const json = JSON.parse(out) as NftSetJson;
      for (const item of json.nftables) {
        for (const e of item.set?.elem ?? []) {
          const [src, dst, proto, lo, hi] = e.concat ?? [];
          const s = parseHost(String(src)).bytes;
          const d = parseHost(String(dst)).bytes;
          const id = groupId(s, d, Number(proto));
          const cur = set.groups.get(id);
          const g: RuleGroup = { src: s, dst: d, proto: Number(proto), ranges: [...(cur?.ranges ?? []), [Number(lo), Number(hi)]] };
          set.set(id, g);
        }
      }
    }
    return set;
  }
}
