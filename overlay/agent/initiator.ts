/**
 * One initiating end per link. Two ends that add each other at once both start a handshake (a
 * persistent keepalive sends one as soon as a peer is added), and Debian 12's wireguard-go can end
 * two such crossing initiations with keys that work one way only, until the next rekey. So of each
 * pair, the end with the lower public key (compared as base64 text, the same order at both ends)
 * keeps its keepalive from the start; the other holds its keepalive at 0 until it has seen a
 * handshake with that peer, or until `waitMs` passed since it first wanted the peer: then it
 * sends keepalives too. The wait is short: when the lower end had the peer first, its initiation
 * found no peer here and wireguard-go retries only after 5 s, so it is this end's, a fraction of a
 * second later, that makes the link; two initiations cross only if they fall within a round trip
 * of each other. Pure, with the clock given.
 */
import type { DataplaneState, PeerState } from '../../fabric/dataplane-state.js';

/** Long enough for the lower end's first initiation to complete, short against wireguard-go's 5 s retry. */
export const RESPONDER_WAIT_MS = 400;

export class InitiatorPolicy {
  /** When this end first wanted each peer it answers to, until released. */
  private readonly waiting = new Map<string, number>();
  private readonly released = new Set<string>();

  constructor(
    private readonly ownPublicKey: string,
    private readonly waitMs = RESPONDER_WAIT_MS,
  ) {}

  /** Whether this end starts the handshakes with `peer`. */
  initiates(peer: string): boolean {
    return this.ownPublicKey < peer;
  }

  /**
   * The desired state with the keepalive of each peer this end answers to held at 0 while it
   * waits; `observed` (the state read in this pass) releases a peer that shook hands, and one that
   * already has its keepalive (set before, e.g. by the agent before a restart: no flap). The same
   * object when nothing is held.
   */
  apply(desired: DataplaneState, observed: DataplaneState | undefined, now: number): DataplaneState {
    for (const k of [...this.waiting.keys()]) if (!desired.peers.has(k)) this.waiting.delete(k);
    for (const k of [...this.released]) if (!desired.peers.has(k)) this.released.delete(k);
    let held: Map<string, PeerState> | undefined;
    for (const [k, p] of desired.peers) {
      if (p.keepalive === 0 || this.initiates(k) || this.released.has(k)) continue;
      const since = this.waiting.get(k) ?? now;
      this.waiting.set(k, since);
      const seen = observed?.peers.get(k);
      if ((seen?.lastHandshake ?? 0) > 0 || seen?.keepalive === p.keepalive || now - since >= this.waitMs) {
        this.waiting.delete(k);
        this.released.add(k);
        continue;
      }
      held ??= new Map(desired.peers);
      held.set(k, { ...p, keepalive: 0 });
    }
    return held ? { ...desired, peers: held } : desired;
  }

  /** When the earliest wait ends (ms since the epoch): a pass then releases it. */
  nextRelease(): number | undefined {
    let next: number | undefined;
    for (const since of this.waiting.values()) next = Math.min(next ?? Infinity, since + this.waitMs);
    return next;
  }
}
