/** pino JSON logs: one line per event, never per packet above trace (DESIGN.md "Operator surface"). */
import { pino, type DestinationStream, type Logger } from 'pino';
import { escapeJsonForTerminal } from '../core/sanitize.ts';
import type { EdgeEvent } from '../core/types.ts';

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

/**
 * An event's typed fields as pino fields: `event` (the kind), `peer`, `link`, `class`, `from`, `to`,
 * `reason`, `flows`, each only when the event has it, so `jq 'select(.peer == "branch-1")'` works.
 */
export function eventLogFields(ev: EdgeEvent): Record<string, string | number> {
  const out: Record<string, string | number> = { event: ev.kind };
  for (const k of EVENT_LOG_FIELDS) {
    const v = ev[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

const EVENT_LOG_FIELDS = ['peer', 'link', 'class', 'from', 'to', 'reason', 'flows'] as const satisfies readonly (keyof EdgeEvent)[];
