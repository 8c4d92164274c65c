/**
 * The byte layouts of acl.bpf.c's maps (keep in step with its structs) and a small typed wrapper
 * over one map fd. Integers are host byte order, as the program reads them.
 */
import { endianness } from 'node:os';
import { BPF_ANY, check, ENOENT, type Libbpf } from './libbpf.js';
import type { PolicyEntry, PolicyProto } from './identities.js';
import { IPPROTO, type PortRange, type RuleGroup } from './rule-set.js';

export const MAX_RANGES = 16;
export const RULE_KEY_SIZE = 36; // src[16] dst[16] proto u8 pad[3]
export const RULE_VAL_SIZE = 4 + 4 * MAX_RANGES; // count u32, {lo u16, hi u16}[16]
export const IDENT_KEY_SIZE = 16; // addr[16]
export const IDENT_VAL_SIZE = 4; // identity u32
export const POLICY_KEY_SIZE = 8; // sid u32, did u32
export const POLICY_VAL_SIZE = 4 + 2 * 4 * MAX_RANGES; // any, icmp, ntcp, nudp u8; tcp[16], udp[16] {lo u16, hi u16}
export const FLOW_KEY_SIZE = 40; // a[16] b[16] pa u16 pb u16 proto u8 pad[3]
export const FLOW_VAL_SIZE = 16; // seen_ns u64, opened_by_b u8, pad[7]
export const LPM_KEY_SIZE = 20; // prefixlen u32, addr[16]

/** From this many entries on, a write goes to the kernel as one batch. */
export const BATCH_MIN = 64;

const LE = endianness() === 'LE';
const u16 = (b: Buffer, off: number) => (LE ? b.readUInt16LE(off) : b.readUInt16BE(off));
const u32 = (b: Buffer, off: number) => (LE ? b.readUInt32LE(off) : b.readUInt32BE(off));
const put16 = (b: Buffer, v: number, off: number) => (LE ? b.writeUInt16LE(v, off) : b.writeUInt16BE(v, off));
const put32 = (b: Buffer, v: number, off: number) => (LE ? b.writeUInt32LE(v, off) : b.writeUInt32BE(v, off));

export function ruleKey(g: Pick<RuleGroup, 'src' | 'dst' | 'proto'>): Buffer {
  const k = Buffer.alloc(RULE_KEY_SIZE);
  putRuleKey(k, 0, g);
  return k;
}

export function ruleValue(ranges: readonly PortRange[]): Buffer {
  const v = Buffer.alloc(RULE_VAL_SIZE);
  putRuleValue(v, 0, ranges);
  return v;
}

/** Writes a rule key at `off` of a zeroed buffer. */
function putRuleKey(b: Buffer, off: number, g: Pick<RuleGroup, 'src' | 'dst' | 'proto'>): void {
  b.set(g.src, off);
  b.set(g.dst, off + 16);
  b[off + 32] = g.proto;
}

/** Writes a rule value at `off` of a zeroed buffer: the count, then the ranges. */
function putRuleValue(b: Buffer, off: number, ranges: readonly PortRange[]): void {
  put32(b, ranges.length, off);
  putRanges(b, off + 4, ranges);
}

/** {lo u16, hi u16} pairs from `off`: the layout of port_range arrays in both values. */
function putRanges(b: Buffer, off: number, ranges: readonly PortRange[]): void {
  for (let i = 0; i < ranges.length; i++) {
    put16(b, ranges[i]![0], off + 4 * i);
    put16(b, ranges[i]![1], off + 4 * i + 2);
  }
}

/** n (at most MAX_RANGES) port ranges from `off`. */
function readRanges(v: Buffer, off: number, n: number): PortRange[] {
  return Array.from({ length: Math.min(n, MAX_RANGES) }, (_, i): PortRange => [u16(v, off + 4 * i), u16(v, off + 4 * i + 2)]);
}

/**
 * Many rules as the two arrays bpf_map_update_batch takes, keys and values back to back: two
 * allocations for 10,000s of rules instead of two each.
 */
export function encodeRules(groups: readonly RuleGroup[]): { keys: Buffer; values: Buffer } {
  return packed(groups.length, RULE_KEY_SIZE, RULE_VAL_SIZE, (i, keys, koff, values, voff) => {
    putRuleKey(keys, koff, groups[i]!);
    putRuleValue(values, voff, groups[i]!.ranges);
  });
}

/** n keys and n values back to back, each written by `put`: the arrays a batch update takes. */
export function packed(n: number, keySize: number, valueSize: number, put: (i: number, keys: Buffer, koff: number, values: Buffer, voff: number) => void): { keys: Buffer; values: Buffer } {
  const keys = Buffer.alloc(keySize * n);
  const values = Buffer.alloc(valueSize * n);
  for (let i = 0; i < n; i++) put(i, keys, i * keySize, values, i * valueSize);
  return { keys, values };
}

export function putIdent(keys: Buffer, koff: number, addr: Uint8Array, values: Buffer, voff: number, id: number): void {
  keys.set(addr, koff);
  put32(values, id, voff);
}

export function identKey(addr: Uint8Array): Buffer {
  return Buffer.from(addr.buffer, addr.byteOffset, 16);
}

export function decodeIdent(v: Buffer): number {
  return u32(v, 0);
}

export function putPolicyKey(b: Buffer, off: number, p: { sid: number; did: number }): void {
  put32(b, p.sid, off);
  put32(b, p.did, off + 4);
}

export function policyKey(p: { sid: number; did: number }): Buffer {
  const k = Buffer.alloc(POLICY_KEY_SIZE);
  putPolicyKey(k, 0, p);
  return k;
}

/**
 * Writes a policy value at `off` of a zeroed buffer. ICMP and "any" carry no ranges (the schema
 * holds their ports at [0, 65535]); other protocols have no place in it.
 */
export function putPolicyValue(b: Buffer, off: number, protos: readonly PolicyProto[]): void {
  for (const { proto, ranges } of protos) {
    if (proto === IPPROTO.any) b[off] = 1;
    else if (proto === IPPROTO.icmp || proto === IPPROTO.icmpv6) b[off + 1] = proto;
    else if (proto === IPPROTO.tcp || proto === IPPROTO.udp) {
      const tcp = proto === IPPROTO.tcp;
      b[off + (tcp ? 2 : 3)] = ranges.length;
      putRanges(b, off + 4 + (tcp ? 0 : 4 * MAX_RANGES), ranges);
    } else throw new RangeError(`protocol ${proto} has no place in a policy value`);
  }
}

export function policyValue(protos: readonly PolicyProto[]): Buffer {
  const v = Buffer.alloc(POLICY_VAL_SIZE);
  putPolicyValue(v, 0, protos);
  return v;
}

export function decodePolicy(k: Buffer, v: Buffer): PolicyEntry {
  const protos: PolicyProto[] = [];
  const all: PortRange[] = [[0, 65535]];
  if (v[0]) protos.push({ proto: IPPROTO.any, ranges: all });
  if (v[1]) protos.push({ proto: v[1], ranges: all });
  if (v[2]) protos.push({ proto: IPPROTO.tcp, ranges: readRanges(v, 4, v[2]) });
  if (v[3]) protos.push({ proto: IPPROTO.udp, ranges: readRanges(v, 4 + 4 * MAX_RANGES, v[3]) });
  return { sid: u32(k, 0), did: u32(k, 4), protos };
}

export function decodeRule(k: Buffer, v: Buffer): RuleGroup {
  return { src: Uint8Array.from(k.subarray(0, 16)), dst: Uint8Array.from(k.subarray(16, 32)), proto: k[32]!, ranges: readRanges(v, 4, u32(v, 0)) };
}

export interface Flow {
  /** The direction of the allowed packet that opened the flow. */
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly sport: number;
  readonly dport: number;
  readonly proto: number;
}

export function decodeFlow(k: Buffer, v: Buffer): Flow {
  const a = Uint8Array.from(k.subarray(0, 16));
  const b = Uint8Array.from(k.subarray(16, 32));
  const pa = u16(k, 32);
  const pb = u16(k, 34);
  const proto = k[36]!;
  return v[8] ? { src: b, dst: a, sport: pb, dport: pa, proto } : { src: a, dst: b, sport: pa, dport: pb, proto };
}

export function lpmKey(bytes: Uint8Array, bits: number): Buffer {
  const k = Buffer.alloc(LPM_KEY_SIZE);
  put32(k, bits, 0);
  k.set(bytes, 4);
  return k;
}

export function decodeLpmKey(k: Buffer): { bytes: Uint8Array; bits: number } {
  return { bytes: Uint8Array.from(k.subarray(4, 20)), bits: u32(k, 0) };
}

/** One map fd with its key and value sizes; errors name the map. */
export class BpfMap {
  constructor(
    private readonly bpf: Libbpf,
    readonly fd: number,
    readonly name: string,
    private readonly keySize: number,
    private readonly valueSize: number,
  ) {}

  update(key: Buffer, value: Buffer): void {
    check(this.bpf.mapUpdate(this.fd, key, value, BPF_ANY), 'bpf_map_update_elem', `acl/${this.name}`);
  }

  /**
   * Writes entries in one bpf_map_update_batch call (kernel >= 5.6); returns how many, from the
   * first, the kernel took: all of them, or fewer when it stopped at an error (the caller writes
   * the rest one by one, which names the failing entry), 0 when batching is unavailable.
   */
  updateBatch(keys: Buffer, values: Buffer): number {
    const batch = this.bpf.mapUpdateBatch;
    const n = keys.length / this.keySize;
    if (!batch || n === 0) return 0;
    if (!Number.isInteger(n) || values.length !== n * this.valueSize) throw new RangeError(`acl/${this.name}: batch of ${keys.length} key and ${values.length} value bytes`);
    const count = new Uint32Array([n]);
    const rc = batch(this.fd, keys, values, count, BPF_ANY);
    return rc === 0 ? n : Math.min(count[0]!, n);
  }

  /**
   * Writes every (key, value) of the packed arrays: one batch call when there are many, then one
   * call each for what the batch did not take. Throws at the first entry the kernel refuses.
   */
  updateAll(keys: Buffer, values: Buffer): void {
    const n = keys.length / this.keySize;
    const done = n >= BATCH_MIN ? this.updateBatch(keys, values) : 0;
    for (let i = done; i < n; i++) {
      this.update(keys.subarray(i * this.keySize, (i + 1) * this.keySize), values.subarray(i * this.valueSize, (i + 1) * this.valueSize));
    }
  }

  /** Deleting a missing key is not an error. */
  delete(key: Buffer): void {
    const rc = this.bpf.mapDelete(this.fd, key);
    if (rc !== -ENOENT) check(rc, 'bpf_map_delete_elem', `acl/${this.name}`);
  }

  lookup(key: Buffer): Buffer | undefined {
    const v = Buffer.alloc(this.valueSize);
    const rc = this.bpf.mapLookup(this.fd, key, v);
    if (rc === -ENOENT) return undefined;
    check(rc, 'bpf_map_lookup_elem', `acl/${this.name}`);
    return v;
  }

  /** Every key. Collected first: deleting while walking a hash map restarts the walk. */
  keys(): Buffer[] {
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const rc = this.bpf.mapNextKey(this.fd, prev, next);
      if (rc === -ENOENT) return out;
      check(rc, 'bpf_map_get_next_key', `acl/${this.name}`);
      out.push(next);
      prev = next;
    }
  }

  /** Every (key, value); an entry deleted meanwhile is skipped. */
  entries(): [Buffer, Buffer][] {
    const out: [Buffer, Buffer][] = [];
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v) out.push([k, v]);
    }
    return out;
  }
}
