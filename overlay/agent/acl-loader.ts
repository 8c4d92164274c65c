/**
 * Opens the ACL driver (overlay/acl: eBPF, falling back to nftables), or none when switched off.
 */
import type { Logger } from 'pino';
import type { AclDriver } from '../drivers.js';
import { createAclDriver } from '../acl/index.js';

export type OpenedAcl = { readonly driver: AclDriver | undefined; readonly kind: string; readonly fallbackReason?: string };

export async function openAclDriver(mode: 'ebpf' | 'nftables' | 'off', pinDir: string, logger?: Logger): Promise<OpenedAcl> {
  if (mode === 'off') {
    logger?.warn('ACL enforcement is off: nothing is filtered (labs and benchmarks only)');
    return { driver: undefined, kind: 'off' };
  }
  const d = await createAclDriver({ pinDir, prefer: mode, ...(logger ? { logger } : {}) });
  return { driver: d, kind: d.kind, ...(d.fallbackReason ? { fallbackReason: d.fallbackReason } : {}) };
}
