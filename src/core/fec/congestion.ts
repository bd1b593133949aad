/**
 * Is a path's delay inflated, i.e. is a queue building on it? FEC's congestion test
 * (DESIGN.md "FEC": back off when loss looks like congestion) convicts loss as congestion only
 * while the delay is inflated: random loss does not queue, congestion does.
 *
 * Inflated means: srtt above the path's queue-free RTT by more than
 *   max(QUEUE_DELAY_MIN_MS, QUEUE_DELAY_RATIO x base, QUEUE_DELAY_JITTERS x rttJitter).
 *
 * The base is a low percentile of the recent RTT samples (PathStats.rttBaseMs), not the all-time
 * minimum, and the scale is the RTT's own sample-to-sample variation (PathStats.rttJitterMs, both
 * directions), not the one-way RFC 3550 jitter of one direction. Why (issue 16, measured with
 * sim/tools/fec-single-link.ts): on one link with `delay 10ms 2ms distribution normal` and 5%
 * random loss, srtt sat ~8.5 ms above the all-time minimum (the minimum of a few hundred normal
 * samples is ~3 sigma below the mean) while 3 x the one-way jitter was ~6.8 ms: the path read as
 * congested 397 ticks of 400, m was capped at 1 and voice lost 2.2% after FEC instead of < 0.1%.
 * With normal delay variation of sigma (RTT), srtt - p10 is ~1.3 sigma and 3 x mean|dRTT| is
 * ~3.4 sigma, so random jitter no longer convicts, while a queue adds its whole depth to srtt
 * (the p10 of 30 s of samples follows a standing queue only after ~27 s).
 */

/** A queue shorter than this is not congestion (scheduling noise, a probe behind a data burst). */
export const QUEUE_DELAY_MIN_MS = 5;
/** ... nor one under this fraction of the base RTT (long paths). */
export const QUEUE_DELAY_RATIO = 0.2;
/** ... nor one within this many mean |RTT differences| (the path's own delay variation). */
export const QUEUE_DELAY_JITTERS = 3;
/** Fewer RTT samples than this (1 s of probes) say nothing about a queue: no verdict. */
export const QUEUE_DELAY_MIN_SAMPLES = 10;

export interface QueueDelayInput {
  /** Smoothed RTT now; undefined before any sample. */
  srttMs: number | undefined;
  /** The path's queue-free RTT (PathStats.rttBaseMs); undefined before any sample. */
  baseRttMs: number | undefined;
  /** Mean |difference| between successive RTT samples (PathStats.rttJitterMs). */
  rttJitterMs: number;
  /** RTT samples behind those figures (PathStats.rttSampleCount). */
  rttSamples: number;
}

/** Whether a queue is building on the path (see the file comment). False while unmeasured. */
export function queueDelayInflated(input: QueueDelayInput): boolean {
  const { srttMs, baseRttMs, rttJitterMs, rttSamples } = input;
  if (!(rttSamples >= QUEUE_DELAY_MIN_SAMPLES)) return false;
  if (srttMs === undefined || baseRttMs === undefined || !Number.isFinite(srttMs) || !Number.isFinite(baseRttMs)) return false;
  const jitter = Number.isFinite(rttJitterMs) && rttJitterMs > 0 ? rttJitterMs : 0;
  return srttMs - baseRttMs > Math.max(QUEUE_DELAY_MIN_MS, baseRttMs * QUEUE_DELAY_RATIO, QUEUE_DELAY_JITTERS * jitter);
}
