/**
 * What every config must pass before the agent acts on it, whatever source it came from: the
 * signature of a trusted controller key (fabric's verifyConfig), the schema, this node's id, and
 * a revision no older than the one accepted last. An accepted envelope is kept on disk, so that a
 * restarted agent re-applies it at once and still refuses anything older.
 *
 * Which keys are trusted: those given at install, until a config names the controller keys the
 * chain authorizes for the node's DVCI; from then on that set, learned from each accepted config
 * (and kept on disk). A config signed by a key outside the set it names is refused, so that a
 * controller the chain no longer authorizes is refused as soon as one authorized config arrived.
 * Several controllers publish the same content: an identical config (one from a slower controller
 * stamped with an older block) is a duplicate, never a conflict.
 */
import { readFileSync } from 'node:fs';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import * as z from 'zod';
import { writeFileAtomic } from '../atomic-file.js';
import { join } from 'node:path';
import { sameConfigContent } from '../../fabric/config-equal.js';
import { Sub0Error } from '../../fabric/errors.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { Ed25519Key } from '../../fabric/schema.js';
import { verifyConfig } from '../../fabric/signing.js';
import { readJsonRecord } from '../json-file.js';

export const ACCEPTED_FILE = 'accepted.signed';
/** The controller keys learned from the configs accepted last. */
export const TRUST_FILE = 'trust.json';
const TrustFile = z.object({ keys: z.array(Ed25519Key).min(1), revision: z.number().int().nonnegative() });

export interface AcceptedConfig {
  readonly config: NodeConfig;
  readonly hash: string;
  /** hex ed25519 key of the controller that signed it */
  readonly signer: string;
  /** Where it came from (a file path, a topic), for logs. */
  readonly source: string;
}

export type GateOutcome = { readonly kind: 'accepted'; readonly accepted: AcceptedConfig } | { readonly kind: 'duplicate'; readonly accepted: AcceptedConfig };

export class ConfigGate {
  private current: AcceptedConfig | undefined;
  private trusted: readonly Uint8Array[];

  constructor(
    private readonly stateDir: string,
    /** The keys given at install: trusted until a config names the chain's. */
    installed: readonly Uint8Array[],
    /** The node this agent runs; undefined: pinned by the first config accepted. */
    private node: string | undefined,
    /** The network this agent serves; undefined: any. */
    private readonly network?: string,
    /** What this node's data plane cannot hold as a whole: throws Sub0Error 'invalid-input' (checked before acceptance). */
    private readonly applicable?: (config: NodeConfig) => void,
  ) {
    this.trusted = installed;
    const learned = readJsonRecord(join(stateDir, TRUST_FILE), TrustFile, 'the learned controller keys are unreadable: remove the file to start again from the keys given with --trust');
    if (learned) this.trusted = learned.keys.map((k) => hexToBytes(k));
  }

  get accepted(): AcceptedConfig | undefined {
    return this.current;
  }

  /** The controller keys trusted now (hex), in order. */
  get trustedKeys(): string[] {
    return this.trusted.map((k) => bytesToHex(k));
  }

  /**
   * Loads the envelope accepted before the last restart, verified again (a key may have been
   * untrusted since). Undefined when there is none; throws when it no longer verifies.
   */
  loadPersisted(): AcceptedConfig | undefined {
    const path = join(this.stateDir, ACCEPTED_FILE);
    let wire: string;
    try {
      wire = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Sub0Error('driver', 'cannot read the last accepted config', { cause: e, where: path });
    }
    const outcome = this.check(wire, path);
    this.adopt(outcome.accepted);
    this.node ??= outcome.accepted.config.node;
    return this.current;
  }

  /**
   * Verifies and admits one envelope. Throws Sub0Error: 'bad-signature', 'invalid-input' (schema,
   * wrong node) or 'stale-revision'; nothing is changed when it throws. Returns 'duplicate' for
   * the config already accepted (nothing to do).
   */
  offer(wire: string | Uint8Array, source: string): GateOutcome {
    const outcome = this.check(wire, source);
    if (outcome.kind === 'duplicate') return outcome;
    writeFileAtomic(join(this.stateDir, ACCEPTED_FILE), wire, { mode: 0o600, durable: true }); // the bytes as verified
    this.adopt(outcome.accepted);
    this.node ??= outcome.accepted.config.node;
    return outcome;
  }

  /** Takes an accepted config as current, and the controller keys it names as the trusted set. */
  private adopt(a: AcceptedConfig): void {
    this.current = a;
    const keys = a.config.controllers;
    if (keys.length === 0 || keys.join() === this.trustedKeys.join()) return;
    writeFileAtomic(join(this.stateDir, TRUST_FILE), `${JSON.stringify({ keys, revision: a.config.revision.number })}\n`, { mode: 0o600, durable: true });
    this.trusted = keys.map((k) => hexToBytes(k));
  }

  private check(wire: string | Uint8Array, source: string): GateOutcome {
    let verified: { config: NodeConfig; key: string; hash: string };
    try {
      verified = verifyConfig(wire, this.trusted);
    } catch (e) {
      if (e instanceof Sub0Error) throw new Sub0Error(e.code, e.message, { cause: e, where: source });
      throw e;
    }
    const { config, key, hash } = verified;
    if (config.controllers.length > 0 && !config.controllers.includes(key)) {
      throw new Sub0Error('bad-signature', `signed by ${key.slice(0, 16)}…, a key the chain does not authorize for DVCI "${config.dvci}" (it authorizes ${config.controllers.map((k) => `${k.slice(0, 16)}…`).join(', ')})`, { where: source });
    }
    if (this.node !== undefined && config.node !== this.node) {
      throw new Sub0Error('invalid-input', `config is for node "${config.node}", this agent runs node "${this.node}"`, { where: source });
    }
    if (this.network !== undefined && config.network !== this.network) {
      throw new Sub0Error('invalid-input', `config is for network "${config.network}", this agent serves "${this.network}"`, { where: source });
    }
    try {
      this.applicable?.(config);
    } catch (e) {
      if (e instanceof Sub0Error) throw new Sub0Error(e.code, e.message, { cause: e, where: source });
      throw e;
    }
    const accepted: AcceptedConfig = { config, hash, signer: key, source };
    const cur = this.current?.config.revision;
    if (cur && this.current) {
      const r = config.revision;
      if (r.number < cur.number) {
        // A slower controller's copy of what is enforced already: nothing to do, nothing wrong.
        if (sameConfigContent(this.current.config, config)) return { kind: 'duplicate', accepted: this.current };
        throw new Sub0Error('stale-revision', `revision #${r.number} is older than #${cur.number}, already applied`, { where: source });
      }
      if (r.number === cur.number) {
        if (accepted.hash === this.current.hash) return { kind: 'duplicate', accepted: this.current };
        // One finalized block compiles to one config: two different ones for a block is an attack or a bug.
        throw new Sub0Error('stale-revision', `a different config for revision #${r.number}, already applied`, { where: source });
      }
    }
    return { kind: 'accepted', accepted };
  }
}
