/**
 * Runs the agent until SIGTERM/SIGINT: what `sub0 agent` and dist/agent.js call. Logs go to stdout:
 * readable lines on a terminal, pino JSON lines otherwise (--log-format).
 */
import type { Logger } from 'pino';
import { createLogger } from '../logger.js';
import { Agent } from './agent.js';
import { parseAgentConfig, type AgentFlags } from './config.js';

export function agentLogger(level: string, format?: string): Logger {
  return createLogger({ name: 'sub0-agent', level, format: format === 'json' || format === 'text' ? format : undefined });
}

export async function runAgent(flags: AgentFlags, hooks: { readonly onRunning?: () => void } = {}): Promise<void> {
  const config = parseAgentConfig(flags);
  const log = agentLogger(config.logLevel, flags.logFormat);
  const agent = await Agent.start(config, log);
  log.info({ ifname: agent.ifname }, 'agent running');
  hooks.onRunning?.();
  // A daemon: it runs until signalled, even while nothing else holds the event loop (no config
  // yet, the broker refusing it for now).
  const alive = setInterval(() => undefined, 1 << 30);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      clearInterval(alive);
      log.info({ signal }, 'stopping; the data plane stays up');
      void agent.stop().finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
