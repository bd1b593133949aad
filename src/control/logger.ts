/** pino JSON logs: one line per event, never per packet above trace (DESIGN.md "Operator surface"). */
import { pino, type DestinationStream, type Logger } from 'pino';
import { escapeJsonForTerminal } from '../core/sanitize.ts';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/**
 * Every line goes through escapeJsonForTerminal: pino's JSON escapes C0 controls but leaves C1
 * (the 8-bit CSI), DEL and bidi characters raw, and log lines carry peer-supplied text (the
 * hello's site and link names in event messages) to `journalctl` on an operator's terminal.
 */
export function createLogger(level: LogLevel, site: string, destination?: DestinationStream): Logger {
  const options = { level, base: { site }, timestamp: pino.stdTimeFunctions.isoTime, hooks: { streamWrite: escapeJsonForTerminal } };
  return destination === undefined ? pino(options) : pino(options, destination);
}
