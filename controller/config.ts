/**
 * The controller's configuration: flags and environment parsed once, at start, into one frozen
 * object. Everything has a default that works for the local lab.
 */
import { join } from 'node:path';
import * as z from 'zod';
import { Sub0Error } from '../fabric/errors.js';
import { sub0Home } from './chain/home.js';
import type { HealthPolicy } from '../fabric/health.js';
import type { BrokerChoice } from './service.js';

/**
 * Agents send a heartbeat every 5 s by default: three missed make a node degraded; a node that
 * does not run what was published for it is given 10 s; quarantine comes 30 s after degradation.
 */
export const DEFAULT_POLICY: HealthPolicy = { heartbeatTimeoutMs: 15_000, settleMs: 10_000, graceMs: 30_000 };

const HostPort = z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'must be HOST:PORT');

export const ControllerFlags = z.object({
  endpoint: z.string().optional(),
  registry: z.string().optional(),
  /** Where signed node configs are written, one file per node. */
  out: z.string().optional(),
  /** An MQTT broker to publish to (e.g. Mosquitto), mqtt://host:port. */
  broker: z.string().regex(/^mqtts?:\/\/\S+$/, 'must be mqtt://host:port').optional(),
  /** Run the embedded broker (aedes) in this process. */
  embeddedBroker: z.boolean().optional(),
  /** Where the embedded broker listens (repeatable). */
  listen: z.array(HostPort).optional(),
  /** A Mosquitto's admission: where its password and ACL files go, and its pid file (to reload it). */
  mosquittoDir: z.string().optional(),
  mosquittoPid: z.string().optional(),
  /** The ed25519 signing key file (created on first start). */
  key: z.string().optional(),
  /** Where the follower's cursor and the broker secret are kept. */
  stateDir: z.string().optional(),
  fullReadMs: z.string().regex(/^\d+$/, 'must be a number of ms').optional(),
  /** The gatekeeper's chain key (a proxy of the operator): without it nodes are watched, not quarantined. */
  gatekeeperSuri: z.string().min(1).optional(),
  heartbeatTimeoutMs: z.string().regex(/^\d+$/, 'must be a number of ms').optional(),
  settleMs: z.string().regex(/^\d+$/, 'must be a number of ms').optional(),
  quarantineGraceMs: z.string().regex(/^\d+$/, 'must be a number of ms').optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).optional(),
  logFormat: z.enum(['text', 'json']).optional(),
});

export interface ControllerConfig {
  readonly endpoint: string | undefined;
  readonly registry: string | undefined;
  /** A directory of signed configs, when asked for (or when no broker is). */
  readonly out: string | undefined;
  readonly broker: BrokerChoice | undefined;
  readonly keyFile: string;
  readonly stateDir: string;
  readonly cursorFile: string;
  readonly adminSecretFile: string;
  readonly fullReadMs: number | undefined;
  /** The gatekeeper: how nodes are judged, and the chain key it quarantines with (if any). */
  readonly gatekeeper: { readonly policy: HealthPolicy; readonly suri: string | undefined };
  readonly logLevel: string;
  readonly logFormat: 'text' | 'json' | undefined;
}

export function controllerConfig(flags: unknown, env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const f = ControllerFlags.safeParse(flags);
  if (!f.success) throw new Sub0Error('invalid-input', `controller flags: ${z.prettifyError(f.error)}`);
  const d = f.data;
  if (d.broker && d.embeddedBroker) throw new Sub0Error('invalid-input', 'controller flags: --broker (a broker elsewhere) and --embedded-broker exclude each other');
  if (d.listen && !d.embeddedBroker) throw new Sub0Error('invalid-input', 'controller flags: --listen is where the embedded broker listens: add --embedded-broker');
  if ((d.mosquittoDir || d.mosquittoPid) && !d.broker) throw new Sub0Error('invalid-input', 'controller flags: --mosquitto-dir and --mosquitto-pid manage the Mosquitto at --broker: add --broker mqtt://…');
  const home = sub0Home(env);
  const state = d.stateDir ?? join(home, 'controller');
  const listen = (d.listen ?? ['0.0.0.0:1883']).map((hp) => {
    const i = hp.lastIndexOf(':');
    return { host: hp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hp.slice(i + 1)) };
  });
  const broker: BrokerChoice | undefined = d.embeddedBroker
    ? { kind: 'embedded', listen }
    : d.broker
      ? { kind: 'external', url: d.broker, ...(d.mosquittoDir ? { mosquitto: { dir: d.mosquittoDir, ...(d.mosquittoPid ? { pidFile: d.mosquittoPid } : {}) } } : {}) }
      : undefined;
  return Object.freeze({
    endpoint: d.endpoint,
    registry: d.registry,
    out: d.out ?? (broker ? undefined : join(state, 'configs')),
    broker,
    keyFile: d.key ?? join(state, 'signing.key'),
    stateDir: state,
    cursorFile: join(state, 'cursor.json'),
    adminSecretFile: join(state, 'broker.secret'),
    fullReadMs: d.fullReadMs === undefined ? undefined : Number(d.fullReadMs),
    gatekeeper: {
      policy: {
        heartbeatTimeoutMs: Number(d.heartbeatTimeoutMs ?? DEFAULT_POLICY.heartbeatTimeoutMs),
        settleMs: Number(d.settleMs ?? DEFAULT_POLICY.settleMs),
        graceMs: Number(d.quarantineGraceMs ?? DEFAULT_POLICY.graceMs),
      },
      suri: d.gatekeeperSuri ?? (env.SUB0_GATEKEEPER_SURI || undefined),
    },
    logLevel: d.logLevel ?? env.SUB0_LOG_LEVEL ?? 'info',
    logFormat: d.logFormat,
  });
}
