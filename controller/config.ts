/**
 * The controller's configuration: flags and environment parsed once, at start, into one frozen
 * object. Everything has a default that works for the local lab.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { Sub0Error } from '../fabric/errors.js';
import { sub0Home } from './chain/home.js';

export const ControllerFlags = z.object({
  endpoint: z.string().optional(),
  registry: z.string().optional(),
  /** Where signed node configs are written, one file per node. */
  out: z.string().optional(),
  /** The ed25519 signing key file (created on first start). */
  key: z.string().optional(),
  /** Where the follower's cursor is kept. */
  stateDir: z.string().optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).optional(),
});

export interface ControllerConfig {
  readonly endpoint: string | undefined;
  readonly registry: string | undefined;
  readonly out: string;
  readonly keyFile: string;
  readonly cursorFile: string;
  readonly logLevel: string;
}

export function controllerConfig(flags: unknown, env: NodeJS.ProcessEnv = process.env): ControllerConfig {
  const f = ControllerFlags.safeParse(flags);
  if (!f.success) throw new Sub0Error('invalid-input', `controller flags: ${z.prettifyError(f.error)}`);
  const home = sub0Home(env);
  const state = f.data.stateDir ?? join(home, 'controller');
  return Object.freeze({
    endpoint: f.data.endpoint,
    registry: f.data.registry,
    out: f.data.out ?? join(state, 'configs'),
    keyFile: f.data.key ?? join(state, 'signing.key'),
    cursorFile: join(state, 'cursor.json'),
    logLevel: f.data.logLevel ?? env.SUB0_LOG_LEVEL ?? 'info',
  });
}
