/**
 * The last 60 s of each link's RTT, loss and byte counters, fed by snapshots. The dashboard's
 * sparklines and receive rates come from here: snapshots carry only the current values.
 */
import { useRef } from 'react';
import type { EdgeSnapshot, LinkSnapshot } from '../../core/types.ts';
import { pathKey } from '../peers.ts';

/** How far back the sparklines look. */
export const HISTORY_WINDOW_MS = 60_000;
/** Snapshots closer together than this are folded into one sample (the demo can feed 10/s at 5x speed). */
export const HISTORY_MIN_SPACING_MS = 250;
/** Cap per link: one full window at the minimum spacing, plus slack. */
export const HISTORY_MAX_SAMPLES = Math.ceil(HISTORY_WINDOW_MS / HISTORY_MIN_SPACING_MS) + 16;

export interface LinkSample {
  atMs: number;
  /** Undefined while the link is down: a gap, not a stale value. */
  rttMs: number | undefined;
  /** Worse of the two directions' 1 s loss. */
  lossRatio: number | undefined;
  txBytes: number;
  rxBytes: number;
}

export class HistoryStore {
  private readonly links = new Map<string, LinkSample[]>();
  private lastMs = -Infinity;

  /**
   * Adds a snapshot; a repeat or an older one is ignored, a restart of the edge (time going back)
   * resets. Paths are keyed by pathKey ("peer/link" on a hub); `keep` limits which paths are
   * recorded (a hub with thousands of paths keeps the ones on screen), the others are forgotten.
   */
  push(snap: EdgeSnapshot, keep?: (l: LinkSnapshot) => boolean): void {
    if (snap.nowMs === this.lastMs) return;
    if (snap.nowMs < this.lastMs) this.links.clear();
    else if (snap.nowMs - this.lastMs < HISTORY_MIN_SPACING_MS) return;
    this.lastMs = snap.nowMs;
    const present = new Set<string>();
    for (const l of snap.links) {
      if (keep && !keep(l)) continue;
      const key = pathKey(l);
      present.add(key);
      let ring = this.links.get(key);
      if (!ring) this.links.set(key, (ring = []));
      const losses = [l.txLossRatio, l.rxLossRatio].filter((x): x is number => x !== undefined);
      ring.push({
        atMs: snap.nowMs,
        rttMs: l.state === 'down' ? undefined : l.rttMs,
        lossRatio: losses.length ? Math.max(...losses) : undefined,
        txBytes: l.txBytes,
        rxBytes: l.rxBytes,
      });
      const oldestMs = snap.nowMs - HISTORY_WINDOW_MS;
      while (ring.length > HISTORY_MAX_SAMPLES || (ring.length > 0 && ring[0]!.atMs < oldestMs)) ring.shift();
    }
    // Links removed by a config reload disappear from the history too.
    for (const name of [...this.links.keys()]) if (!present.has(name)) this.links.delete(name);
  }

  samples(link: string): readonly LinkSample[] {
    return this.links.get(link) ?? [];
  }

  /**
   * `width` buckets covering the last 60 s up to `nowMs`, oldest first: RTT is the bucket's mean,
   * loss its worst, so a short burst of loss is never averaged away.
   */
  series(link: string, width: number, nowMs: number): { rttMs: Array<number | undefined>; lossRatio: Array<number | undefined> } {
    const rtt: Array<number | undefined> = new Array<number | undefined>(width).fill(undefined);
    const loss: Array<number | undefined> = new Array<number | undefined>(width).fill(undefined);
    if (width <= 0) return { rttMs: [], lossRatio: [] };
    const sums = new Array<number>(width).fill(0);
    const counts = new Array<number>(width).fill(0);
    const startMs = nowMs - HISTORY_WINDOW_MS;
    for (const s of this.samples(link)) {
      if (s.atMs < startMs || s.atMs > nowMs) continue;
      const i = Math.min(width - 1, Math.floor(((s.atMs - startMs) / HISTORY_WINDOW_MS) * width));
      if (s.rttMs !== undefined) {
        sums[i]! += s.rttMs;
        counts[i]!++;
      }
      if (s.lossRatio !== undefined) loss[i] = Math.max(loss[i] ?? 0, s.lossRatio);
    }
    for (let i = 0; i < width; i++) if (counts[i]! > 0) rtt[i] = sums[i]! / counts[i]!;
    return { rttMs: rtt, lossRatio: loss };
  }

  /** Receive rate over the last ~2 s of samples (the snapshot has only the send rate). */
  rxRateBps(link: string): number | undefined {
    const ring = this.samples(link);
    if (ring.length < 2) return undefined;
    const last = ring[ring.length - 1]!;
    let first = ring[ring.length - 2]!;
    for (let i = ring.length - 2; i >= 0 && last.atMs - ring[i]!.atMs <= 2000; i--) first = ring[i]!;
    const dtMs = last.atMs - first.atMs;
    return dtMs > 0 ? ((last.rxBytes - first.rxBytes) * 8 * 1000) / dtMs : undefined;
  }
}

/**
 * The history for the snapshots this component has seen. Pushing during render (not in an
 * effect) puts a snapshot into the very frame that shows it, with no second render; push is
 * idempotent per snapshot time, so React re-running the render is harmless.
 */
export function useLinkHistory(snapshot: EdgeSnapshot | undefined, keep?: (l: LinkSnapshot) => boolean): HistoryStore {
  const ref = useRef<HistoryStore | null>(null);
  if (ref.current === null) ref.current = new HistoryStore();
  if (snapshot) ref.current.push(snapshot, keep);
  return ref.current;
}
