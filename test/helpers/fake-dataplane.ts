/**
 * In-memory drivers for the reconcile loop's tests: they keep what a kernel would keep and print it
 * like `wg`/`ip` output, record every call in one shared journal, and fail on demand. "Foreign"
 * routes (another owner) are kept but, as with the real driver, never reported or touched.
 */
import { aclKey, type AclTuple, type PeerState } from '../../fabric/dataplane-state.js';
import { Sub0Error } from '../../fabric/errors.js';
import type { AclDriver, AclObserveOptions, AclOp, PeerOp, RouteDriver, RouteOp, WireguardBackend, WireguardObserved } from '../../overlay/drivers.js';
import type { Dataplane } from '../../overlay/agent/reconcile-step.js';

export class FakeKernel {
  readonly journal: string[] = [];
  iface: { ifname: string; privateKey: string; listenPort: number } | undefined;
  readonly peers = new Map<string, PeerState>();
  readonly addresses = new Set<string>();
  readonly routes = new Map<string, 'sub0' | 'static'>();
  readonly acl = new Map<string, AclTuple>();
  attached: readonly string[] | undefined;
  /** Names of calls (`wg.apply`, `routes.apply`, `acl.attach` …) that fail, with how many times. */
  readonly failures = new Map<string, number>();
  /** Delay of every apply, to hold a pass in flight. */
  applyDelayMs = 0;

  /** The interface and all on it gone, as when wireguard-go dies. */
  vanish(): void {
    this.iface = undefined;
    this.peers.clear();
    this.addresses.clear();
    for (const [r, owner] of this.routes) if (owner === 'sub0') this.routes.delete(r);
    this.attached = undefined;
  }

  fail(call: string, times = 1): void {
    this.failures.set(call, times);
  }

  private readonly stalls = new Map<string, Promise<void>>();
  private readonly callWaiters = new Set<(call: string) => void>();

  /** Calls named `call` hang (a socket that never answers) until the returned release() is called. */
  stall(call: string): () => void {
    let release!: () => void;
    this.stalls.set(call, new Promise<void>((r) => (release = r)));
    return () => {
      this.stalls.delete(call);
      release();
    };
  }

  /** Resolves when the next call named `call` begins (a pass is then in flight). */
  reached(call: string): Promise<void> {
    return new Promise((resolve) => {
      const w = (c: string) => {
        if (c !== call) return;
        this.callWaiters.delete(w);
        resolve();
      };
      this.callWaiters.add(w);
    });
  }

  async hit(call: string, detail = ''): Promise<void> {
    this.journal.push(detail ? `${call} ${detail}` : call);
    for (const w of [...this.callWaiters]) w(call);
    await this.stalls.get(call);
    const left = this.failures.get(call) ?? 0;
    if (left > 0) {
      this.failures.set(call, left - 1);
      throw new Sub0Error('driver', `injected failure of ${call}`);
    }
  }

  /** The kernel as text, sorted: what `wg show` + `ip addr` + `ip route` + the ACL map would say. */
  text(): string {
    const lines: string[] = [];
    if (this.iface) lines.push(`interface ${this.iface.ifname} listen-port ${this.iface.listenPort}`);
    for (const a of [...this.addresses].sort()) lines.push(`address ${a}`);
    for (const p of [...this.peers.values()].sort((x, y) => x.publicKey.localeCompare(y.publicKey))) {
      lines.push(`peer ${p.publicKey.slice(0, 8)} endpoint ${p.endpoints[0] ?? '(none)'} allowed-ips ${p.allowedIps.join(',')} keepalive ${p.keepalive}`);
    }
    for (const [r, owner] of [...this.routes].sort()) lines.push(`route ${r} proto ${owner === 'sub0' ? 83 : 'static'}`);
    for (const k of [...this.acl.keys()].sort()) lines.push(`allow ${k}`);
    return lines.join('\n');
  }

  dataplane(withAcl = true): Dataplane {
    return { wg: new FakeWireguard(this), routes: new FakeRoutes(this), acl: withAcl ? new FakeAcl(this) : undefined };
  }
}

class FakeWireguard implements WireguardBackend {
  readonly kind = 'uapi' as const;
  constructor(private readonly k: FakeKernel) {}
  async ensureInterface(ifname: string, privateKey: string, listenPort: number): Promise<void> {
    await this.k.hit('wg.ensure');
    if (this.k.iface?.privateKey !== privateKey || this.k.iface.listenPort !== listenPort) this.k.journal.push('wg.set-device');
    this.k.iface = { ifname, privateKey, listenPort };
  }
  async observe(): Promise<WireguardObserved> {
    return { listenPort: this.k.iface?.listenPort ?? 0, peers: new Map(this.k.peers) };
  }
  async handshakes(): Promise<ReadonlyMap<string, number>> {
    return new Map([...this.k.peers.keys()].map((k) => [k, 0]));
  }
  async apply(_ifname: string, ops: readonly PeerOp[]): Promise<void> {
    if (ops.length === 0) return;
    await delay(this.k.applyDelayMs);
    await this.k.hit('wg.apply', ops.map((o) => o.op).join(','));
    for (const o of ops) {
      if (o.op === 'listen-port') this.k.iface = { ...this.k.iface!, listenPort: o.port };
      else if (o.op === 'peer-remove') this.k.peers.delete(o.publicKey);
      else this.k.peers.set(o.peer.publicKey, o.peer);
    }
  }
  async deleteInterface(): Promise<void> {
    this.k.iface = undefined;
  }
  async close(): Promise<void> {}
}

class FakeRoutes implements RouteDriver {
  constructor(private readonly k: FakeKernel) {}
  async observe(): Promise<{ addresses: ReadonlySet<string>; routes: ReadonlySet<string> }> {
    const routes = new Set([...this.k.routes].filter(([, o]) => o === 'sub0').map(([r]) => r));
    return { addresses: new Set(this.k.addresses), routes };
  }
  async apply(_ifname: string, ops: readonly RouteOp[]): Promise<void> {
    if (ops.length === 0) return;
    await delay(this.k.applyDelayMs);
    await this.k.hit('routes.apply', [...new Set(ops.map((o) => o.op))].join(','));
    for (const o of ops) {
      if (o.op === 'address-add') this.k.addresses.add(o.cidr);
      else if (o.op === 'address-remove') this.k.addresses.delete(o.cidr);
      else if (o.op === 'route-add') this.k.routes.set(o.dst, 'sub0');
      else if (this.k.routes.get(o.dst) === 'sub0') this.k.routes.delete(o.dst);
    }
  }
  async close(): Promise<void> {}
}

class FakeAcl implements AclDriver {
  readonly kind = 'ebpf' as const;
  constructor(private readonly k: FakeKernel) {}
  async attach(ifname: string, guarded: readonly string[]): Promise<void> {
    await this.k.hit('acl.attach');
    if (!this.k.iface) throw new Sub0Error('not-found', 'no such interface', { where: ifname });
    this.k.attached = guarded;
  }
  async observe(o?: AclObserveOptions): Promise<ReadonlyMap<string, AclTuple>> {
    if (!o?.keys) return new Map(this.k.acl);
    return new Map([...o.keys].flatMap((k) => (this.k.acl.has(k) ? [[k, this.k.acl.get(k)!] as const] : [])));
  }
  async apply(ops: readonly AclOp[]): Promise<void> {
    await delay(this.k.applyDelayMs);
    await this.k.hit('acl.apply', [...new Set(ops.map((o) => o.op))].join(','));
    for (const o of ops) {
      if (o.op === 'acl-add') this.k.acl.set(aclKey(o.entry), o.entry);
      else this.k.acl.delete(aclKey(o.entry));
    }
  }
  async destroy(): Promise<void> {
    this.k.acl.clear();
  }
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
