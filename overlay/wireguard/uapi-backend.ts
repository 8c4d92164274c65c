/**
 * WireguardBackend for wireguard-go, over its UAPI socket (/var/run/wireguard/<ifname>.sock), one
 * persistent connection per interface. This is what runs where the kernel has no WireGuard.
 *
 * wireguard-go is spawned detached, in the agent's network namespace, and outlives the agent: an
 * agent that is killed and restarted finds it still running, with every peer and session, and
 * reconnects to it (no peer flap). UAPI socket paths are global across network namespaces, so an
 * interface name must be unique on the machine; a socket whose interface is not in our namespace
 * is refused rather than driven.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Sub0Error, isSub0Error } from '../../fabric/errors.js';
import type { PeerState } from '../../fabric/dataplane-state.js';
import type { PeerOp, WireguardBackend, WireguardObserved } from '../drivers.js';
import type { NlSocket } from '../netlink/nl-socket.js';
import { deleteLink, findLink, openRouteSocket, setLinkUp } from '../routes/links.js';
import { base64ToHex } from './keys.js';
import { UapiConnection } from './uapi-connection.js';
import { GET_REQUEST, encodeSet, parseErrno, parseGet, type DeviceSettings, type UapiDevice } from './uapi-protocol.js';
import { isAlive, readPid } from '../pid.js';

export const DEFAULT_SOCKET_DIR = '/var/run/wireguard';

export interface UapiBackendOptions {
  readonly socketDir?: string;
  /** The wireguard-go binary. */
  readonly wireguardGo?: string;
  /** Where wireguard-go's log and pid file go (the agent's state dir). */
  readonly runDir: string;
  readonly logger?: Logger;
  /** How long a freshly spawned wireguard-go may take to open its socket. */
  readonly startTimeoutMs?: number;
}

export class UapiBackend implements WireguardBackend {
  private closed = false;
  /** Aborts connections still being made when the backend closes. */
  private readonly closing = new AbortController();
  readonly kind = 'uapi' as const;
  private readonly conns = new Map<string, UapiConnection>();
  private readonly nl: NlSocket = openRouteSocket();
  private readonly socketDir: string;

  constructor(private readonly opts: UapiBackendOptions) {
    this.socketDir = opts.socketDir ?? DEFAULT_SOCKET_DIR;
  }

  socketPath(ifname: string): string {
    return join(this.socketDir, `${ifname}.sock`);
  }

  /**
   * Makes sure wireguard-go runs for `ifname` in this namespace, holds `privateKey` (base64) and
   * listens on `listenPort`, and that the link is up. Idempotent; sets nothing that is already
   * right (re-setting the listen port rebinds the UDP socket, which would drop packets).
   */
  async ensureInterface(ifname: string, privateKey: string, listenPort: number): Promise<void> {
    let conn = await this.connection(ifname, false);
    const link = await findLink(this.nl, ifname);
    if (conn && !link) {
      throw new Sub0Error('driver', `a wireguard-go UAPI socket for "${ifname}" exists, but its interface is in another network namespace: interface names must be unique on the machine`, { where: this.socketPath(ifname) });
    }
    if (!conn) {
      if (link) throw new Sub0Error('driver', `"${ifname}" exists but no wireguard-go serves it: the name is taken by another interface`, { where: ifname });
      conn = await this.spawnDaemon(ifname);
    }
    const dev = parseGet(await conn.request(GET_REQUEST));
    const keyHex = base64ToHex(privateKey);
    const settings: DeviceSettings = {
      ...(dev.privateKey !== keyHex ? { privateKeyHex: keyHex } : {}),
      ...(dev.listenPort !== listenPort ? { listenPort } : {}),
    };
    if (Object.keys(settings).length > 0) await this.set(ifname, conn, encodeSet(settings, []));
    const now = await findLink(this.nl, ifname);
    if (!now) throw new Sub0Error('driver', 'wireguard-go runs but its interface vanished', { where: ifname });
    if (!now.up) await setLinkUp(this.nl, now.index, ifname);
  }

  async observe(ifname: string): Promise<WireguardObserved> {
    const conn = await this.connection(ifname, false);
    if (!conn) return { listenPort: 0, peers: new Map() };
    return toObserved(parseGet(await conn.request(GET_REQUEST)));
  }

  /** The raw device as wireguard-go reports it, handshake times and counters included. */
  async device(ifname: string): Promise<UapiDevice | undefined> {
    const conn = await this.connection(ifname, false);
    return conn ? parseGet(await conn.request(GET_REQUEST)) : undefined;
  }

  async handshakes(ifname: string): Promise<ReadonlyMap<string, number>> {
    return new Map((await this.device(ifname))?.peers.map((p) => [p.publicKey, p.lastHandshake]) ?? []);
  }

  /** All ops in one `set=1` transaction, in plan order (adds and updates before removes). */
  async apply(ifname: string, ops: readonly PeerOp[]): Promise<void> {
    if (ops.length === 0) return;
    const conn = await this.connection(ifname, true);
    await this.set(ifname, conn!, encodeSet({}, ops));
  }

  /**
   * Removes the interface; already gone is fine. Deleting the TUN link makes wireguard-go exit
   * (and remove its socket) whoever started it; a daemon of ours that lingers is then signalled.
   */
  async deleteInterface(ifname: string): Promise<void> {
    this.conns.get(ifname)?.close();
    this.conns.delete(ifname);
    await deleteLink(this.nl, ifname);
    const pid = readPid(this.pidFile(ifname));
    if (pid !== undefined && isWireguardGo(pid, ifname)) {
      for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(20);
      if (isAlive(pid)) process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(20);
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(this.pidFile(ifname), { force: true });
    // A socket nothing listens on is a leftover; one that answers belongs to a daemon in another
    // namespace (same name, global socket dir) and is not ours to remove.
    const other = await UapiConnection.connect(this.socketPath(ifname), 500).catch(() => undefined);
    if (other) other.close();
    else rmSync(this.socketPath(ifname), { force: true });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
    this.nl.close();
  }

  private async set(ifname: string, conn: UapiConnection, text: string): Promise<void> {
    const errno = parseErrno(await conn.request(text));
    if (errno !== 0) {
      // The daemon stops reading a failed transaction midway: the stream is out of step now.
      conn.close();
      this.conns.delete(ifname);
      throw new Sub0Error('driver', `wireguard-go refused the set transaction: errno=${errno}`, { where: this.socketPath(ifname) });
    }
  }

  private async connection(ifname: string, required: boolean): Promise<UapiConnection | undefined> {
    // A call that raced close() must not open a socket nobody will close (it keeps the process alive).
    if (this.closed) throw new Sub0Error('driver', 'the WireGuard backend is closed', { where: ifname });
    const cached = this.conns.get(ifname);
    if (cached?.alive) return cached;
    try {
      const c = await UapiConnection.connect(this.socketPath(ifname), undefined, this.closing.signal);
      if (this.closed) {
        c.close();
        throw new Sub0Error('driver', 'the WireGuard backend is closed', { where: ifname });
      }
      return this.keep(ifname, c);
    } catch (e) {
      if (!required && isSub0Error(e, 'not-found')) return undefined;
      throw e;
    }
  }

  /**
   * Caches a new connection, unless a call that ran alongside (a status read while the reconcile
   * spawns the daemon) cached one first: one connection per interface, every one of them closed.
   */
  private keep(ifname: string, c: UapiConnection): UapiConnection {
    const other = this.conns.get(ifname);
    if (other?.alive) {
      c.close();
      return other;
    }
    this.conns.set(ifname, c);
    return c;
  }

  private pidFile(ifname: string): string {
    return join(this.opts.runDir, `wireguard-go-${ifname}.pid`);
  }

  private async spawnDaemon(ifname: string): Promise<UapiConnection> {
    const sock = this.socketPath(ifname);
    rmSync(sock, { force: true }); // a dead daemon's socket: nothing listens on it (connect said so)
    mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 });
    const logPath = join(this.opts.runDir, `wireguard-go-${ifname}.log`);
    const log = openSync(logPath, 'a');
    const bin = this.opts.wireguardGo ?? 'wireguard-go';
    // Foreground mode so that the pid we get is the daemon's; detached so that it outlives us.
    const child = spawn(bin, ['-f', ifname], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: process.env.LOG_LEVEL ?? 'error' },
    });
    closeSync(log);
    let exited: string | undefined;
    child.once('exit', (code, signal) => (exited = `exited with ${signal ?? code}`));
    child.once('error', (e) => (exited = e.message));
    child.unref();
    if (child.pid !== undefined) writeFileSync(this.pidFile(ifname), `${child.pid}\n`);
    this.opts.logger?.info({ ifname, pid: child.pid, log: logPath }, 'spawned wireguard-go');
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 5000);
    for (;;) {
      if (exited) throw new Sub0Error('driver', `wireguard-go ${exited}: ${tail(logPath)}`, { where: ifname });
      try {
        const c = await UapiConnection.connect(sock, undefined, this.closing.signal);
        return this.keep(ifname, c);
      } catch (e) {
        if (!isSub0Error(e, 'not-found')) throw e;
      }
      if (Date.now() > deadline) throw new Sub0Error('timeout', `wireguard-go did not open its UAPI socket: ${tail(logPath)}`, { where: sock });
      await sleep(10);
    }
  }
}

function toObserved(dev: UapiDevice): WireguardObserved {
  const peers = new Map<string, PeerState>();
  for (const p of dev.peers) {
    peers.set(p.publicKey, { publicKey: p.publicKey, endpoints: p.endpoint ? [p.endpoint] : [], allowedIps: p.allowedIps, keepalive: p.keepalive, lastHandshake: p.lastHandshake });
  }
  return { listenPort: dev.listenPort, peers };
}


/** Guards against a recycled pid: only a wireguard-go serving this interface is ours to stop. */
function isWireguardGo(pid: number, ifname: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.endsWith('wireguard-go')) && argv.includes(ifname);
  } catch {
    return false;
  }
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-3).join(' | ') || '(no output)';
  } catch {
    return '(no log)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
