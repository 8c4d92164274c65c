/**
 * Addresses as the ACL maps hold them: 16 bytes, IPv4 v4-mapped (::ffff:a.b.c.d), so one map and
 * one lookup serve both families. Pure. formatHost() emits the canonical text (RFC 5952 for IPv6,
 * the form fabric/address.ts produces), so that observe() gives back the strings plan() compares.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { Sub0Error } from '../../fabric/errors.js';

export interface Prefix {
  readonly family: 4 | 6;
  /** 16 bytes; IPv4 mapped. */
  readonly bytes: Uint8Array;
  /** Prefix length in the 128-bit space (IPv4 /n is 96 + n). */
  readonly bits: number;
}

/** Parses `a.b.c.d/n` or `x::y/n` (any prefix length). Throws Sub0Error 'invalid-input'. */
export function parsePrefix(cidr: string): Prefix {
  const slash = cidr.indexOf('/');
  const addr = slash < 0 ? cidr : cidr.slice(0, slash);
  const len = slash < 0 ? undefined : Number(cidr.slice(slash + 1));
  const bad = () => new Sub0Error('invalid-input', `not an IP prefix: ${JSON.stringify(cidr)}`, { where: 'acl' });
  if (isIPv4(addr)) {
    const n = len ?? 32;
    if (!Number.isInteger(n) || n < 0 || n > 32) throw bad();
    const bytes = new Uint8Array(16);
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    addr.split('.').forEach((o, i) => (bytes[12 + i] = Number(o)));
    return { family: 4, bytes, bits: 96 + n };
  }
  if (isIPv6(addr)) {
    const n = len ?? 128;
    if (!Number.isInteger(n) || n < 0 || n > 128) throw bad();
    return { family: 6, bytes: parseV6(addr), bits: n };
  }
  throw bad();
}

/** Parses a host prefix (/32 or /128): what every ACL tuple address is. */
export function parseHost(cidr: string): Prefix {
  const p = parsePrefix(cidr);
  if (p.bits !== 128) throw new Sub0Error('invalid-input', `not a host prefix (/32 or /128): ${cidr}`, { where: 'acl' });
  return p;
}

export function isMappedV4(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** `100.96.1.2/32` or `fd12:3456:789a:2::6460:102/128`. */
export function formatHost(b: Uint8Array): string {
  return `${formatAddr(b)}/${isMappedV4(b) ? 32 : 128}`;
}

/** The bare address, IPv4 for mapped addresses, RFC 5952 otherwise. */
export function formatAddr(b: Uint8Array): string {
  if (isMappedV4(b)) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const h: number[] = [];
  for (let i = 0; i < 16; i += 2) h.push((b[i]! << 8) | b[i + 1]!);
  // The longest run of two or more zero hextets becomes '::' (the first one on a tie).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(h);
  return `${hex(h.slice(0, best))}::${hex(h.slice(best + bestLen))}`;
}

function parseV6(addr: string): Uint8Array {
  let text = addr;
  // An embedded IPv4 suffix (::ffff:1.2.3.4) is two hextets written another way.
  const lastColon = text.lastIndexOf(':');
  const suffix = text.slice(lastColon + 1);
  if (suffix.includes('.')) {
    const o = suffix.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((x) => parseInt(x, 16)));
  const gap = text.indexOf('::');
  const left = parse(gap < 0 ? text : text.slice(0, gap));
  const right = gap < 0 ? [] : parse(text.slice(gap + 2));
  const words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}
