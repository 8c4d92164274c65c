/**
 * The ACL driver the agent uses: eBPF where it can load, nftables otherwise.
 * createAclDriver() probes once (libbpf present, the object loads and verifies in this kernel, a
 * bpffs can be mounted) and returns a driver whose `kind` says which mechanism is in force;
 * `fallbackReason` says why eBPF is not, for the agent's status.
 */
import type { Logger } from 'pino';
import type { AclDriver } from '../drivers.js';
import { DEFAULT_PIN_ROOT, ensureBpffs } from './bpffs.js';
import { EbpfAclDriver, OBJECT_PATH, OBJECT_PATHS } from './ebpf-acl-driver.js';
import type { AclLayout } from './rule-maps.js';
import { errnoName, libbpf } from './libbpf.js';
import { NftAclDriver } from './nft-acl-driver.js';

export { EbpfAclDriver } from './ebpf-acl-driver.js';
export { NftAclDriver } from './nft-acl-driver.js';

export interface AclDriverOptions {
  /** Mount point of the agent's bpffs; default /run/sub0/bpf. */
  readonly pinDir?: string;
  /** 'nftables' skips eBPF; 'ebpf' (the default) falls back to nftables only when eBPF fails. */
  readonly prefer?: 'ebpf' | 'nftables';
  /** The built program; default the layout's object in overlay/acl/bpf/ beside this module. */
  readonly objectPath?: string;
  /** How the eBPF maps hold rules: 'identity' (default) or 'pairs' (the earlier design, the benchmark's baseline). */
  readonly layout?: AclLayout;
  /** Attach through iproute2's tc instead of libbpf's bpf_tc_* API. */
  readonly attachVia?: 'libbpf' | 'tc';
  readonly logger?: Logger;
}

/** An AclDriver plus why it is not eBPF, when it is not (absent when eBPF is in force). */
export type SelectedAclDriver = AclDriver & { readonly fallbackReason?: string };

export async function createAclDriver(opts: AclDriverOptions = {}): Promise<SelectedAclDriver> {
  const log = opts.logger;
  if (opts.prefer === 'nftables') {
    return withReason(new NftAclDriver({ logger: log }), 'nftables preferred by configuration');
  }
  const objectPath = opts.objectPath ?? OBJECT_PATHS[opts.layout ?? 'identity'];
  const reason = await probeEbpf(opts.pinDir ?? DEFAULT_PIN_ROOT, objectPath);
  if (reason === undefined) {
    return new EbpfAclDriver({ pinRoot: opts.pinDir, objectPath, layout: opts.layout, attachVia: opts.attachVia, logger: log });
  }
  log?.warn({ reason }, 'acl: eBPF unavailable, enforcing with nftables');
  return withReason(new NftAclDriver({ logger: log }), reason);
}

function withReason(d: AclDriver, fallbackReason: string): SelectedAclDriver {
  return Object.assign(d, { fallbackReason });
}

/** Undefined when eBPF works here; otherwise what failed, in words. Loads nothing that stays. */
export async function probeEbpf(pinRoot: string, objectPath = OBJECT_PATH): Promise<string | undefined> {
  try {
    const bpf = libbpf();
    await ensureBpffs(pinRoot);
    const obj = bpf.objectOpenFile(objectPath);
    if (!obj) return `cannot open ${objectPath} (errno ${bpf.errno()})`;
    try {
      const rc = bpf.objectLoad(obj);
      if (rc < 0) return `the kernel refused the ACL program (bpf_object__load: ${errnoName(rc)})`;
    } finally {
      bpf.objectClose(obj);
    }
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
