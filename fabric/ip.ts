/**
 * IP addresses and CIDR prefixes as bytes and as canonical text (dotted quad; RFC 5952 for IPv6,
 * as Go's netip and the kernel print them): the one address module of the tree. fabric formats
 * the addresses it allocates with it, and every driver reads addresses back through it, so that
 * what the kernel reports and what fabric asked for compare equal as strings.
 */
import * as z from 'zod';
import { Sub0Error } from './errors.js';

const V4 = z.regexes.ipv4;
const V6 = z.regexes.ipv6;
const V4_TAIL = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/;

/** A dotted quad (no leading zeros). */
export const isIPv4 = (s: string): boolean => V4.test(s);

/** An IPv6 literal, an embedded IPv4 tail (`::ffff:1.2.3.4`) included; no brackets, no zone. */
export function isIPv6(s: string): boolean {
  if (V6.test(s)) return true;
  const m = V4_TAIL.exec(s);
  return m !== null && V4.test(m[2]!) && V6.test(`${m[1]}0:0`);
}

/**
 * RFC 5952 text of eight hextets: lower case, no leading zeros, the longest run of two or more
 * zero hextets (the first, on a tie) as `::`. The kernel reads addresses back in this form, so
 * configs and observed state compare as strings.
 */
export function formatIpv6(h: readonly number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: readonly number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(h);
  return `${hex(h.slice(0, best))}::${hex(h.slice(best + bestLen))}`;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly addr: Uint8Array; // 4 or 16 bytes
  readonly bits: number;
}

/** Parses `a.b.c.d` or an IPv6 literal (no brackets, no zone) into 4 or 16 bytes. */
export function parseIp(text: string): Uint8Array {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  if (!isIPv6(text)) throw new Sub0Error('invalid-input', `not an IP address: "${text}"`);
  let s = text;
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    s = `${s.slice(0, v4.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 255;
  });
  return out;
}

/** Canonical text of 4 or 16 address bytes. */
export function formatIp(addr: Uint8Array): string {
  if (addr.length === 4) return Array.from(addr).join('.');
  if (addr.length !== 16) throw new Sub0Error('invalid-input', `an IP address is 4 or 16 bytes, got ${addr.length}`);
  const hextets: number[] = [];
  for (let i = 0; i < 16; i += 2) hextets.push((addr[i]! << 8) | addr[i + 1]!);
  return formatIpv6(hextets); // fabric's RFC 5952 text: configs and kernel state compare as strings
}

export function parseCidr(text: string): Cidr {
  const slash = text.lastIndexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const addr = parseIp(ip);
  const max = addr.length * 8;
  const bits = slash < 0 ? max : Number(text.slice(slash + 1));
  if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new Sub0Error('invalid-input', `bad prefix length in "${text}"`);
  return { family: addr.length === 4 ? 4 : 6, addr, bits };
}

export function formatCidr(c: { addr: Uint8Array; bits: number }): string {
  return `${formatIp(c.addr)}/${c.bits}`;
}

const canonical = new Map<string, string>();

/**
 * The canonical spelling of a CIDR (`FD12::1/128` -> `fd12::1/128`); idempotent. Memoized: a
 * node's desired state repeats the same few hundred slot addresses across 10,000s of ACL tuples,
 * and is canonicalized again on every reconcile pass.
 */
export function canonicalCidr(text: string): string {
  let c = canonical.get(text);
  if (c === undefined) {
    c = formatCidr(parseCidr(text));
    if (canonical.size > 200_000) canonical.clear();
    canonical.set(text, c);
  }
  return c;
}

/** Splits `1.2.3.4:51820` / `[fd00::1]:51820` into host and port, host without brackets. */
export function splitHostPort(endpoint: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(endpoint);
  if (!m) throw new Sub0Error('invalid-input', `not host:port: "${endpoint}"`);
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

/** `host:port` with IPv6 hosts bracketed and in canonical form. */
export function joinHostPort(host: string, port: number): string {
  if (isIPv6(host)) return `[${formatIp(parseIp(host))}]:${port}`;
  return `${host}:${port}`;
}

/** The canonical spelling of an IP-literal endpoint; a DNS name is returned as is. */
export function canonicalEndpoint(endpoint: string): string {
  const { host, port } = splitHostPort(endpoint);
  return joinHostPort(isIPv6(host) ? formatIp(parseIp(host)) : host, port);
}
