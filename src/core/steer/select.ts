/**
 * Path selection for one class: which path(s) a new (or displaced) flow goes on.
 *
 * Order of preference:
 *   1. usable paths (UP/DEGRADED) within the class's SLA, in the best cost tier that has any
 *      (primary, then overflow, then backup: LTE only when nothing else meets SLA);
 *   2. otherwise the least-bad usable path, non-backup tiers first;
 *   3. otherwise (everything DOWN) the path heard from most recently: sending into a path we
 *      think is down beats black-holing the site.
 * Within the chosen set the class's strategy decides:
 *   best       the lowest score (RTT + loss and jitter penalties);
 *   balance    weighted by spare capacity, chosen by the flow hash so a flow's pick is stable;
 *   duplicate  the two best, the packet goes on both and the receiver drops the copy.
 */
import { COST_TIERS, type CostTier, type PathMetrics, type Strategy } from './classes.ts';

export interface PathCandidate {
  id: number;
  usable: boolean;
  inSla: boolean;
  tier: CostTier;
  metrics: PathMetrics;
  /** Spare capacity for `balance` (configured bandwidth minus current rate); 0 = unknown. */
  spareBps: number;
  lastHeardMs: number;
}

/**
 * A path whose RTT is not measured yet scores as this: last, not first (at start-up the slow LTE
 * path, its first probe reply still in flight, scored 0 and took voice for good once FEC kept it
 * within SLA).
 */
const UNMEASURED_RTT_MS = 1000;

/** Lower is better. Loss weighs heavily (1% ~ 20 ms), jitter counts double. */
export function pathScore(m: PathMetrics): number {
  return (m.rttMs ?? UNMEASURED_RTT_MS) + (m.txLossRatio ?? 0) * 2000 + m.jitterMs * 2;
}

export interface Selection {
  primary: number;
  /** Second path for `duplicate`, or -1. */
  secondary: number;
}

export function selectPaths(paths: readonly PathCandidate[], strategy: Strategy, flowHash: number): Selection {
  let set: PathCandidate[] = [];
  for (const tier of COST_TIERS) {
    set = paths.filter((p) => p.usable && p.inSla && p.tier === tier);
    if (set.length > 0) break;
  }
  if (set.length === 0) {
    set = paths.filter((p) => p.usable && p.tier !== 'backup');
    if (set.length === 0) set = paths.filter((p) => p.usable);
    // Least bad only: balancing over paths that all break the SLA would spread the damage.
    if (set.length > 0 && (strategy === 'balance' || strategy === 'bond')) strategy = 'best';
  }
  if (set.length === 0) {
    let best: PathCandidate | undefined;
    for (const p of paths) if (!best || p.lastHeardMs > best.lastHeardMs) best = p;
    return { primary: best ? best.id : -1, secondary: -1 };
  }
  // bond: the flow's own path is its fallback (no bond member yet) and its MTU; placed as balance.
  if ((strategy === 'balance' || strategy === 'bond') && set.length > 1) {
    const weights = set.map((p) => (p.spareBps > 0 ? p.spareBps : 1));
    const allKnown = set.every((p) => p.spareBps > 0);
    const w = allKnown ? weights : set.map(() => 1);
    const total = w.reduce((a, b) => a + b, 0);
    let r = (flowHash / 4294967296) * total;
    for (let i = 0; i < set.length; i++) {
      r -= w[i]!;
      if (r < 0) return { primary: set[i]!.id, secondary: -1 };
    }
    return { primary: set[set.length - 1]!.id, secondary: -1 };
  }
  const sorted = set.slice().sort((a, b) => pathScore(a.metrics) - pathScore(b.metrics) || a.id - b.id);
  if (strategy === 'duplicate') {
    let second = sorted[1];
    if (!second) {
      // Only one path meets the SLA: duplicate onto the best other usable path anyway.
      second = paths
        .filter((p) => p.usable && p.id !== sorted[0]!.id)
        .sort((a, b) => pathScore(a.metrics) - pathScore(b.metrics))[0];
    }
    return { primary: sorted[0]!.id, secondary: second ? second.id : -1 };
  }
  return { primary: sorted[0]!.id, secondary: -1 };
}
