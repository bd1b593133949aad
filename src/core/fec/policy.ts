/**
 * FEC policy per traffic class (DESIGN.md "FEC"): whether a class is protected, its group size k,
 * the bounds on parity m, how long a group may wait for its k-th packet, the residual loss the
 * adaptive controller aims at, and where parity goes.
 *
 * Why these defaults (voice is the acceptance case of issue 5: 20 calls x 50 pps = 1000 pps of
 * 200-byte packets over paths with 5% random loss, residual < 0.1%, overhead <= 30%):
 *   - Data is never delayed (the encoder keeps copies), so k and flushMs only bound how late a
 *     *recovered* packet arrives: at most flushMs after its original would have, plus the parity
 *     path's delay. Voice jitter buffers hold 40-60 ms; one 20 ms packetization interval fits.
 *   - At 1000 pps a 20 ms flush closes groups of ~20 by count. With p = 5% per shard and the
 *     'packet' criterion (adaptive.ts residualLossRatio), k = 20 needs m = 5 (25% overhead,
 *     residual 0.030%) and keeps m = 5 up to a measured 6.3% loss; k = 16 needs m = 4 (25%, 0.066%)
 *     but crosses to m = 5 (31%) at 5.5%, which a noisy 1 s loss estimate reaches often. Smaller
 *     k costs more: k = 10 needs m = 4 (40%).
 *   - Fewer calls flush by time with k' < k packets; the encoder then uses the m a group of k'
 *     needs (parityTable), not the m of a full group.
 *   - Video (AF4x) bursts large packets per frame: k = 16, 30 ms.
 *
 * Voice's flush and aim (issue 16: one link, 10 calls = 500 pps, 5% random loss, residual < 0.1%
 * within the 30% budget; figures from sim/tools/fec-single-link.ts, seeds 1-20):
 *   - A 20 ms flush closes groups of 10 at 500 pps. The budget then allows m = 3, and 10 + 3 at
 *     5% leaves 0.098% expected (0.12-0.14% at the 5.3-5.5% the 1 s/5 s windows measure): the
 *     runs lost 0.10-0.21%. A 40 ms flush makes groups of 20, where the same 30% buys m = 6
 *     (0.006%; the budget's cap of 0.29 stops at m = 5: 0.03%). So a group on pace to fill k by
 *     twice its flush time waits for it (FecEncoderConfig.maxFlushMs, default 2 x flushMs: 40 ms
 *     for voice); 2-4 calls (2-4 packets at 20 ms) still close at 20 ms, 20+ calls fill k = 20
 *     by count as before. Only the repaired packets wait: a rebuilt packet is at most 40 ms late,
 *     inside a 40-60 ms jitter buffer. A plain 40 ms flush did the same for 10 calls but also
 *     doubled 2-4 call groups, and all-degraded's voice moved more (seeds 1-8: mean 17 -> 24,
 *     36 on two seeds over its bound of 32).
 *   - The controller aims at 0.025%, a quarter of the 0.1% goal: with the 'packet' criterion it
 *     aims at the *expected* residual, while a run's residual scatters above it (a failed group
 *     takes ~5 data packets at once, and the loss estimate is itself noisy), and aiming at 0.1%
 *     chose m = 4-5 of 20 often enough to lose 0.115-0.125% on 2 seeds of 20. At 5% loss the
 *     aim holds m at the budget's 5 of 20 instead of 4-5; on a clean link it costs nothing (FEC
 *     turns on at 0.2% measured loss, as before).
 *   - Bulk is off by default (TCP repairs its own loss; kcptun users measured FEC wasting 30-60%
 *     on clean links) but may be switched on, e.g. fixed 16+4 with minM = maxM = 4.
 */
import { FEC_MAX_FLUSH_MS, FEC_MAX_K, FEC_MAX_M } from './limits.ts';

/** Parity on a path that carries none of the group's data ('spread', DESIGN.md) or on the data's path. */
export type ParityPlacement = 'spread' | 'same';

export interface ClassFecPolicy {
  enabled: boolean;
  /** Data packets per group, 1..FEC_MAX_K. */
  k: number;
  /** Parity floor: 0 lets adaptive FEC turn off on clean paths; minM = maxM fixes m. */
  minM: number;
  /** Parity ceiling, 0..FEC_MAX_M. */
  maxM: number;
  /** Longest a group waits for its k-th packet after its first (ms). */
  flushMs: number;
  /** Residual packet loss the adaptive controller aims at (0..1, exclusive). */
  targetResidualLossRatio: number;
  parityPlacement: ParityPlacement;
  /**
   * Most parity per protected data packet over time (FecEncoderConfig.maxOverheadRatio). At low
   * packet rates groups flush by time with 1-2 packets, and the m such a group "needs" is a copy's
   * worth: measured on flapping-link (2 calls, one 30 pps video flow, links at 0.05-0.2% loss)
   * before this cap, voice paid 36% and video 70% in parity to repair 0.2% loss.
   */
  maxOverheadRatio: number;
  /**
   * FEC-aware SLA: judge a path's loss for this class after the repair FEC gives it (steering
   * stays on a lossy path while FEC keeps the class within its SLA). On for voice, whose small
   * constant-size packets FEC protects well; off by default for the others: on broadband-brownout
   * (bursty 11% loss) the random-loss model kept video on the fibre 2 s longer than raw loss did.
   */
  slaAfterFec?: boolean;
}

const OFF = { enabled: false, minM: 0, targetResidualLossRatio: 0.001, parityPlacement: 'spread', maxOverheadRatio: 0.25 } as const;

/** Defaults in CLASS_NAMES order: control, voice, video, signaling, business, default, bulk. */
export const DEFAULT_FEC_POLICIES: readonly ClassFecPolicy[] = [
  // Network control is duplicated over two paths (steer/classes.ts): FEC would add nothing.
  { ...OFF, k: 4, maxM: 2, flushMs: 10 },
  // Voice: 30% is issue 5's budget (5% loss on every path: k = 20 needs m = 5-6), in bytes on
  // the wire too: a parity datagram is ~3.5% longer than its 200-byte data packet (k, m,
  // checksum), so 20 + 6 (30% in packets) is 30.1% in bytes; 0.29 holds full groups at 20 + 5.
  // 0.025%: see "Voice's flush and aim" above.
  { enabled: true, k: 20, minM: 0, maxM: 10, flushMs: 20, targetResidualLossRatio: 0.00025, parityPlacement: 'spread', maxOverheadRatio: 0.29, slaAfterFec: true },
  { enabled: true, k: 16, minM: 0, maxM: 8, flushMs: 30, targetResidualLossRatio: 0.001, parityPlacement: 'spread', maxOverheadRatio: 0.25 },
  { ...OFF, k: 8, maxM: 4, flushMs: 20 },
  { ...OFF, k: 16, maxM: 4, flushMs: 30, targetResidualLossRatio: 0.005 },
  { ...OFF, k: 16, maxM: 4, flushMs: 30, targetResidualLossRatio: 0.005 },
  { ...OFF, k: 16, maxM: 4, flushMs: 50, targetResidualLossRatio: 0.01 },
];

/** Throws a RangeError naming the field (a programmer or config-mapping error: config.ts validates first). */
export function checkFecPolicy(p: ClassFecPolicy, where: string): void {
  const bad = (what: string): never => {
    throw new RangeError(`${where}: fec.${what}`);
  };
  if (!Number.isInteger(p.k) || p.k < 1 || p.k > FEC_MAX_K) bad(`k=${p.k} must be 1..${FEC_MAX_K}`);
  if (!Number.isInteger(p.maxM) || p.maxM < 0 || p.maxM > FEC_MAX_M) bad(`maxM=${p.maxM} must be 0..${FEC_MAX_M}`);
  if (!Number.isInteger(p.minM) || p.minM < 0 || p.minM > p.maxM) bad(`minM=${p.minM} must be 0..maxM (${p.maxM})`);
  if (!(p.flushMs >= 0 && p.flushMs <= FEC_MAX_FLUSH_MS)) bad(`flushMs=${p.flushMs} must be 0..${FEC_MAX_FLUSH_MS}`);
  if (!(p.targetResidualLossRatio > 0 && p.targetResidualLossRatio < 1)) bad(`targetResidualLossRatio=${p.targetResidualLossRatio} must be in (0, 1)`);
  if (p.parityPlacement !== 'spread' && p.parityPlacement !== 'same') bad(`parityPlacement=${String(p.parityPlacement)} must be spread or same`);
  if (!(p.maxOverheadRatio > 0 && p.maxOverheadRatio <= FEC_MAX_M)) bad(`maxOverheadRatio=${p.maxOverheadRatio} must be in (0, ${FEC_MAX_M}]`);
  // A fixed floor above the budget would be cut silently on every group: say so instead.
  if (p.enabled && p.minM / p.k > p.maxOverheadRatio + 1e-9) {
    bad(`maxOverheadRatio=${p.maxOverheadRatio} is below minM/k = ${p.minM}/${p.k}: raise maxOverheadRatio to at least ${(p.minM / p.k).toFixed(2)} or lower minM`);
  }
}
