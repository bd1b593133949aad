/**
 * Events: the typed union the core emits (types.ts EdgeEvent) and the one place their words are
 * made. Callers pass fields; `message` is derived here, so logs, the dashboard and the reports read
 * the same sentence, and tests read the fields.
 */
import { MAX_EVENT_QUEUE, RECENT_EVENTS_KEPT } from './constants.ts';
import { Fifo } from './fifo.ts';
import type { EdgeEvent, EdgeEventKind } from './types.ts';

export type EventFields = Omit<EdgeEvent, 'message' | 'atMs' | 'kind'> & { text?: string };

/** The sentence for an event. `text` overrides (free-form events: session, config). */
export function eventMessage(kind: EdgeEventKind, f: EventFields, namePeer = true): string {
  if (f.text !== undefined) return f.text;
  const who = namePeer && f.peer !== undefined ? `${f.peer} ` : '';
  switch (kind) {
    case 'flowMoved':
      return `${f.class}: ${who}${f.from} -> ${f.to} (${f.reason})${f.flows !== undefined && f.flows > 1 ? ` [${f.flows} flows]` : ''}`;
    case 'linkUp':
    case 'linkDown':
    case 'pathState':
      return `${who}${f.link}: ${f.from} -> ${f.to} (${f.reason})`;
    case 'sla':
      return `${f.class}: ${who}${f.link} ${f.reason}`;
    case 'endpointMoved':
      return `${who}${f.link}: peer endpoint ${f.from} -> ${f.to}`;
    case 'pathLearned':
      return `${who}${f.link}: new path to ${f.to}`;
    case 'peerAdded':
    case 'peerRemoved':
      return `peer ${f.peer} ${kind === 'peerAdded' ? 'added' : 'removed'}${f.reason ? ` (${f.reason})` : ''}`;
    default:
      return `${who}${f.link ?? ''}${f.reason ?? ''}`;
  }
}

/** Bounded queue of events for pollEvent plus the recent ones for snapshots. */
export class EventLog {
  private readonly queue = new Fifo<EdgeEvent>();
  readonly recent: EdgeEvent[] = [];
  /** Name the peer in messages (an edge with one peer keeps its sentences short). */
  namePeers = true;

  emit(atMs: number, kind: EdgeEventKind, fields: EventFields): void {
    const { text: _text, ...rest } = fields;
    const event: EdgeEvent = { atMs, kind, ...stripUndefined(rest), message: eventMessage(kind, fields, this.namePeers) };
    if (this.queue.length >= MAX_EVENT_QUEUE) this.queue.shift();
    this.queue.push(event);
    this.recent.push(event);
    if (this.recent.length > RECENT_EVENTS_KEPT) this.recent.shift();
  }

  poll(): EdgeEvent | undefined {
    return this.queue.shift();
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
