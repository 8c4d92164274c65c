/**
 * Picks the WireGuard backend at agent start. `auto`: an interface already served by wireguard-go
 * stays with wireguard-go (switching would tear the tunnel down); otherwise the kernel family
 * when it exists, else wireguard-go when its binary is installed. Never silently falls back from
 * an explicit choice.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';
import { Sub0Error, isSub0Error } from '../../fabric/errors.js';
import type { WireguardBackend } from '../drivers.js';
import { KernelBackend } from './kernel-backend.js';
import { UapiBackend } from './uapi-backend.js';
import { UapiConnection } from './uapi-connection.js';

export type BackendChoice = 'auto' | 'kernel' | 'uapi';

export interface ProbeOptions {
  readonly prefer: BackendChoice;
  readonly ifname: string;
  /** wireguard-go's pid file and log (the agent's state dir). */
  readonly runDir: string;
  readonly socketDir?: string;
  readonly wireguardGo?: string;
  readonly logger?: Logger;
}

export async function openWireguardBackend(opts: ProbeOptions): Promise<WireguardBackend> {
  const uapi = () => new UapiBackend({ runDir: opts.runDir, socketDir: opts.socketDir, wireguardGo: opts.wireguardGo, logger: opts.logger });
  if (opts.prefer === 'uapi') return requireWireguardGo(opts), uapi();
  if (opts.prefer === 'kernel') return KernelBackend.open();

  const probe = uapi();
  try {
    const served = await UapiConnection.connect(probe.socketPath(opts.ifname), 1000).then(
      (c) => (c.close(), true),
      () => false,
    );
    if (served) {
      opts.logger?.info({ ifname: opts.ifname }, 'wireguard-go already serves the interface: keeping the UAPI backend');
      return probe;
    }
  } catch {
    /* fall through to probing the kernel */
  }
  try {
    const k = await KernelBackend.open();
    await probe.close();
    opts.logger?.info('WireGuard backend: kernel (generic netlink)');
    return k;
  } catch (e) {
    if (!isSub0Error(e, 'unsupported')) throw e;
  }
  requireWireguardGo(opts);
  opts.logger?.info('WireGuard backend: wireguard-go over UAPI (the kernel has no WireGuard)');
  return probe;
}

function requireWireguardGo(opts: ProbeOptions): void {
  const bin = opts.wireguardGo ?? 'wireguard-go';
  if (!findExecutable(bin)) {
    throw new Sub0Error('unsupported', `no WireGuard here: the kernel has no wireguard module and "${bin}" is not installed (Debian: apt-get install wireguard-go)`);
  }
}

export function findExecutable(bin: string): string | undefined {
  const candidates = bin.includes('/') ? [bin] : (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).map((d) => join(d, bin));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}
