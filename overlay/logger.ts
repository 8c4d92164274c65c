/**
 * Structured logs (pino) that a person can read: on a terminal, one readable line per event
 * (time, level, message, fields); anywhere else (a pipe, a file, a service manager), one JSON
 * object per line. `SUB0_LOG_FORMAT=json|text` or a program's `--log-format` decides otherwise.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'text' | 'json';

export interface LoggerOptions {
  readonly name: string;
  readonly level: string;
  readonly format?: LogFormat | undefined;
  /** 1: stdout (default), 2: stderr (commands whose stdout is data). */
  readonly fd?: 1 | 2;
}

export function logFormat(flag?: string, env: NodeJS.ProcessEnv = process.env, fd: 1 | 2 = 1): LogFormat {
  const asked = flag ?? env.SUB0_LOG_FORMAT;
  if (asked === 'json' || asked === 'text') return asked;
  return (fd === 1 ? process.stdout : process.stderr).isTTY ? 'text' : 'json';
}

export function createLogger(o: LoggerOptions): Logger {
  const fd = o.fd ?? 1;
  const format = o.format ?? logFormat(undefined, process.env, fd);
  if (format === 'json') return pino({ level: o.level, base: { pid: process.pid, name: o.name } }, pino.destination({ fd, sync: true }));
  const stream = pretty({
    destination: fd,
    sync: true,
    colorize: (fd === 1 ? process.stdout : process.stderr).isTTY,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name,component',
    messageFormat: '{if component}[{component}] {end}{msg}',
    singleLine: true,
  });
  return pino({ level: o.level, base: { name: o.name } }, stream);
}
