/**
 * sha256 of large byte strings (whole configs, megabytes at 10,000 ACL entries). Node's native
 * hash is an order of magnitude faster there than pure JS; it does no I/O. Small inputs (address
 * allocation) use @noble/hashes directly.
 */
import { createHash } from 'node:crypto';

export function sha256Bytes(data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
