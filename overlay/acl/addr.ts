/**
 * Addresses as the ACL maps hold them: 16 bytes, IPv4 v4-mapped (::ffff:a.b.c.d), so one map and
 * one lookup serve both families. Pure; parsing and the canonical text (RFC 5952 for IPv6) are
 * fabric/ip.ts's, so that observe() gives back the strings plan() compares.
 */
import { Sub0Error } from '../../fabric/errors.js';
import { formatIp, parseCidr } from '../../fabric/ip.js';

export interface Prefix {
  readonly family: 4 | 6;
  /** 16 bytes; IPv4 mapped. */
  readonly bytes: Uint8Array;
  /** Prefix length in the 128-bit space (IPv4 /n is 96 + n). */
  readonly bits: number;
}

/** Parses `a.b.c.d/n` or `x::y/n` (any prefix length). Throws Sub0Error 'invalid-input'. */
export function parsePrefix(cidr: string): Prefix {
  let c;
  try {
    c = parseCidr(cidr);
  } catch {
    throw new Sub0Error('invalid-input', `not an IP prefix: ${JSON.stringify(cidr)}`, { where: 'acl' });
  }
  if (c.family === 6) return { family: 6, bytes: c.addr, bits: c.bits };
  const bytes = new Uint8Array(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  bytes.set(c.addr, 12);
  return { family: 4, bytes, bits: 96 + c.bits };
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
  return formatIp(isMappedV4(b) ? b.subarray(12, 16) : b);
}
