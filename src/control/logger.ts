/** pino JSON logs: one line per event, never per packet above trace (DESIGN.md "Operator surface"). */
import { pino, type Logger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export function createLogger(level: LogLevel, site: string): Logger {
  return pino({ level, base: { site }, timestamp: pino.stdTimeFunctions.isoTime });
}
