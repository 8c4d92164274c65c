/**
 * Runs the agent until SIGTERM/SIGINT: what `sub0 agent` and dist/agent.js call. Logs are pino
 * JSON lines on stdout.
 */
import { pino, type Logger } from 'pino';
import { Agent } from './agent.js';
import { parseAgentConfig, type AgentFlags } from './config.js';

export function agentLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid, name: 'sub0-agent' } });
}

export async function runAgent(flags: AgentFlags): Promise<void> {
  const config = parseAgentConfig(flags);
  const log = agentLogger(config.logLevel);
  const agent = await Agent.start(config, log);
  log.info({ ifname: agent.ifname }, 'agent running');
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping; the data plane stays up');
      void agent.stop().finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
