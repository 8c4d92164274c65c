/**
 * The agent's signed status (fabric's NodeStatus), built from what the agent knows and what its
 * WireGuard device says, and handed to every broker channel: at each change (coalesced), and
 * every `intervalMs` so that handshake ages stay fresh and a silent node shows. Its "offline"
 * form is the channels' last will, and what a clean stop publishes.
 */
import { stepErrorText } from './reconcile-step.js';
import type { Logger } from 'pino';
import type { SigningKey } from '../../fabric/envelope.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { blankStatus, signStatus, type NodeStatus } from '../../fabric/node-status.js';
import type { BlockRef } from '../../fabric/schema.js';
import { withDeadline } from '../deadline.js';
import type { WireguardBackend } from '../drivers.js';
import type { AgentStatus } from './status.js';

export interface StatusReportOptions {
  readonly network: string;
  readonly node: string;
  readonly identity: SigningKey;
  readonly wg: WireguardBackend;
  readonly ifname: string;
  /** What the agent holds now: its status, and the config it accepted last (with its hash). */
  readonly current: () => { readonly status: AgentStatus; readonly accepted: { readonly config: NodeConfig; readonly hash: string } | undefined };
  readonly publish: (wire: Uint8Array) => void;
  readonly intervalMs: number;
  readonly log: Logger;
}

const MAX_TEXT = 300;
/** A status again this long after a change, with the handshakes it brought. */
const FOLLOW_UP_MS = 2500;
const cut = (s: string) => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT - 1)}…` : s);

export class StatusReport {
  private timer: NodeJS.Timeout | undefined;
  private scheduled: NodeJS.Timeout | undefined;
  private followUp: NodeJS.Timeout | undefined;
  private building: Promise<void> | undefined;
  private again = false;
  private last: NodeStatus | undefined;
  private lastAt = 0;
  private stopped = false;

  constructor(private readonly o: StatusReportOptions) {}

  start(): void {
    this.timer = setInterval(() => this.soon(), this.o.intervalMs);
    this.timer.unref();
    this.changed();
  }

  /** Something changed: a status goes out shortly (changes in a burst make one). */
  changed(): void {
    if (this.stopped) return;
    this.soon();
    // Handshakes follow a change by a round trip or two: report them soon, not at the next interval.
    clearTimeout(this.followUp);
    this.followUp = setTimeout(() => this.soon(), FOLLOW_UP_MS);
    this.followUp.unref();
  }

  private soon(): void {
    if (this.stopped) return;
    this.scheduled ??= setTimeout(() => {
      this.scheduled = undefined;
      void this.send();
    }, 50);
  }

  /** The signed "offline" form of the newest status (the last will; synchronous). */
  offline(): Uint8Array {
    const base = this.last ?? this.skeleton();
    return signStatus({ ...base, state: 'offline', at: this.stamp() }, this.o.identity);
  }

  /** Stops reporting; resolves once no status is being built (none reads the device after this). */
  async stop(): Promise<Uint8Array> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.scheduled);
    clearTimeout(this.followUp);
    await this.building;
    return this.offline();
  }

  private send(): Promise<void> {
    if (this.building) {
      this.again = true;
      return this.building;
    }
    this.building = (async () => {
      try {
        const status = await this.build();
        this.last = status;
        if (!this.stopped) this.o.publish(signStatus(status, this.o.identity));
      } catch (e) {
        this.o.log.warn({ err: (e as Error).message }, 'cannot build the node status');
      }
    })().finally(() => {
      this.building = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        this.soon();
      }
    });
    return this.building;
  }

  /** Strictly increasing ms timestamps: two statuses never carry the same `at`. */
  private stamp(): number {
    this.lastAt = Math.max(Date.now(), this.lastAt + 1);
    return this.lastAt;
  }

  private skeleton(): NodeStatus {
    return blankStatus(this.o.network, this.o.node, { wireguard: this.o.wg.kind, acl: 'unknown' });
  }

  private async build(): Promise<NodeStatus> {
    const { status, accepted } = this.o.current();
    const ref = (revision: BlockRef, hash: string) => ({ revision: { number: revision.number, hash: revision.hash }, hash });
    const conv = status.converged;
    const applied = conv ? ref(conv.block, conv.hash) : null;
    // The applied config is the accepted one unless a newer one is still converging.
    const appliedConfig = accepted && conv?.hash === accepted.hash ? accepted.config : undefined;
    const handshakes: NodeStatus['handshakes'] = [];
    if (accepted) {
      const times = await withDeadline(this.o.wg.handshakes(this.o.ifname), 5000, 'reading WireGuard handshakes').catch(() => new Map<string, number>());
      const now = Date.now() / 1000;
      for (const p of accepted.config.peers) {
        const t = times.get(p.publicKey) ?? 0;
        handshakes.push({ node: p.node, ageS: t > 0 ? Math.max(0, Math.round(now - t)) : null });
      }
    }
    const r = status.lastResult;
    return {
      ...this.skeleton(),
      at: this.stamp(),
      accepted: accepted ? ref(accepted.config.revision, accepted.hash) : null,
      applied,
      reconcile: r ? { status: r.status, at: r.startedAt, errors: r.errors.slice(0, 8).map((e) => cut(stepErrorText(e))) } : null,
      counts: {
        peers: r?.reached.peers ?? 0,
        routes: r?.reached.routes ?? 0,
        aclEntries: appliedConfig?.acl.length ?? 0,
        aclTuples: r?.reached.acl ?? 0,
      },
      handshakes,
      rejected: status.lastRejected ? { code: cut(status.lastRejected.code).slice(0, 32), message: cut(status.lastRejected.message), at: status.lastRejected.at } : null,
      backends: { wireguard: status.backends.wireguard, acl: status.backends.acl },
      ...(status.slots
        ? {
            slots: status.slots.map((x) => ({
              slot: x.id,
              phase: x.phase,
              upS: x.startedAt !== undefined ? Math.max(0, Math.round((Date.now() - x.startedAt) / 1000)) : null,
              restarts: x.restarts,
              error: x.lastError ? { code: cut(x.lastError.code).slice(0, 32), message: cut(x.lastError.message) } : null,
            })),
          }
        : {}),
    };
  }
}
