/**
 * The nftables ACL driver: the fallback where eBPF cannot load. Same contract and same decisions
 * as the eBPF driver (see nft-ruleset.ts for the table), with conntrack standing in for the flow
 * map. Every apply replaces the tuple sets' contents in one `nft -f` transaction (flush + add), so
 * packets see the old set or the new one, never a mix, and the kernel converges to the full desired
 * state whatever it held before. The table matches the interface by name, so it keeps working when
 * the interface is re-created, and it survives an agent restart (observe() reads it back).
 */
import type { Logger } from 'pino';
import type { AclTuple } from '../../fabric/dataplane-state.js';
import { Sub0Error } from '../../fabric/errors.js';
import type { AclDriver, AclOp } from '../drivers.js';
import { parseHost } from './addr.js';
import { run, runOk } from './exec.js';
import { renderTable, renderTuples, tableName } from './nft-ruleset.js';
import { groupId, RuleSet, type RuleGroup } from './rule-set.js';

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
    await runOk('nft', ['-f', '-'], text);
    this.ifname = ifname;
    this.attachedWith = text;
    this.log?.info({ ifname, table: tableName(ifname) }, 'acl: nftables table in place');
  }

  async observe(): Promise<ReadonlyMap<string, AclTuple>> {
    if (!this.ifname) return new Map();
    return (await this.read(this.ifname)).tuples();
  }

  /** Reads the record, applies the ops to it and replaces every tuple set in one transaction. */
  async apply(ops: readonly AclOp[]): Promise<void> {
    const ifname = this.ifname;
    if (!ifname) throw new Sub0Error('driver', 'apply() before attach()', { where: 'acl/nftables' });
    const next = await this.read(ifname);
    const errors: string[] = [];
    for (const o of ops) {
      try {
        const { id, group } = next.with(o.entry, o.op === 'acl-add');
        next.set(id, group);
      } catch (e) {
        errors.push(`${o.op} ${o.key}: ${(e as Error).message}`);
      }
    }
    await runOk('nft', ['-f', '-'], renderTuples(ifname, next.groups.values()));
    if (errors.length > 0) throw new Sub0Error('driver', `acl apply: ${errors.join('; ')}`, { where: `acl/nftables ${ifname}` });
  }

  async destroy(): Promise<void> {
    if (!this.ifname) return;
    await run('nft', ['delete', 'table', 'inet', tableName(this.ifname)]);
    this.ifname = undefined;
    this.attachedWith = undefined;
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
