/**
 * Datagrams this box's own receive socket dropped are not the path's loss (Endpoint.noteLinkRxDropped).
 *
 * The shell reads the link socket's kernel drop counter every ~100 ms and hands the new drops in.
 * Which datagrams they were is unknown (they were never read), so they are shared out over the
 * link's paths in proportion to what each received since the last call: the dropped ones were
 * in the same stream, overflowing the same buffer. Each path counts its share as received
 * (PathStats.onLocalDrops), so neither its rx loss nor its report to the peer (the peer's tx loss,
 * what the peer steers on) blames the path: a box busy under a bulk load is not a bad link.
 * Which sequence numbers they were is not known either, so a report may count them a little early
 * (within its reorder grace); the loss windows' ratios are clamped at 0.
 */
import type { PathRuntime } from './path.ts';

/** More than this at once is not a plausible 100 ms of one socket's drops: clamp (bounded work). */
const MAX_DROPS_PER_NOTE = 1_000_000;

/** Shares `count` drops of link `linkId` out over the peers' paths on it; returns how many were shared. */
export function shareLocalDrops(nowMs: number, peers: ReadonlyMap<string, { readonly paths: readonly PathRuntime[] }>, linkId: number, count: number): number {
  let total = 0;
  for (const peer of peers.values()) {
    for (const p of peer.paths) if (p.linkId === linkId) total += (p.stats.rxReceived - p.stats.rxReceivedAtDropNote) >>> 0;
  }
  const n = count > 0 ? Math.min(Math.floor(count), MAX_DROPS_PER_NOTE) : 0;
  let shared = 0;
  for (const peer of peers.values()) {
    for (const p of peer.paths) {
      if (p.linkId !== linkId) continue;
      const got = (p.stats.rxReceived - p.stats.rxReceivedAtDropNote) >>> 0;
      if (n > shared && total > 0 && got > 0) {
        // Rounded up so that no path's share is lost to rounding (at most one extra each, capped at n).
        const part = Math.min(n - shared, Math.ceil((n * got) / total));
        p.stats.onLocalDrops(nowMs, part);
        shared += part;
      }
      p.stats.rxReceivedAtDropNote = p.stats.rxReceived;
    }
  }
  return shared;
}
