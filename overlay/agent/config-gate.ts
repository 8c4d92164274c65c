/**
 * What every config must pass before the agent acts on it, whatever source it came from: the
 * signature of a trusted controller key (fabric's verifyConfig), the schema, this node's id, and
 * a revision no older than the one accepted last. An accepted envelope is kept on disk, so that a
 * restarted agent re-applies it at once and still refuses anything older.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-file.js';
import { join } from 'node:path';
import { Sub0Error } from '../../fabric/errors.js';
import type { NodeConfig } from '../../fabric/node-config.js';
import { verifyConfig } from '../../fabric/signing.js';

export const ACCEPTED_FILE = 'accepted.signed';

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

  constructor(
    private readonly stateDir: string,
    private readonly trusted: readonly Uint8Array[],
    /** The node this agent runs; undefined: pinned by the first config accepted. */
    private node: string | undefined,
    /** The network this agent serves; undefined: any. */
    private readonly network?: string,
  ) {}

  get accepted(): AcceptedConfig | undefined {
    return this.current;
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
    this.current = outcome.accepted;
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
    writeFileAtomic(join(this.stateDir, ACCEPTED_FILE), wire, { mode: 0o600 }); // the bytes as verified
    this.current = outcome.accepted;
    this.node ??= outcome.accepted.config.node;
    return outcome;
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
    if (this.node !== undefined && config.node !== this.node) {
      throw new Sub0Error('invalid-input', `config is for node "${config.node}", this agent runs node "${this.node}"`, { where: source });
    }
    if (this.network !== undefined && config.network !== this.network) {
      throw new Sub0Error('invalid-input', `config is for network "${config.network}", this agent serves "${this.network}"`, { where: source });
    }
    const accepted: AcceptedConfig = { config, hash, signer: key, source };
    const cur = this.current?.config.revision;
    if (cur && this.current) {
      const r = config.revision;
      if (r.number < cur.number) {
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
