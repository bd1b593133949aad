/**
 * FEC's "is a queue building?" test (fec/congestion.ts) over PathStats' RTT figures: random delay
 * variation must not read as a queue (it capped voice's m at 1 on a jittery lossy link, issue 16),
 * a real queue must.
 */
import { describe, expect, it } from 'vitest';
import { queueDelayInflated, QUEUE_DELAY_MIN_SAMPLES } from '../../../src/core/fec/congestion.ts';
import { PathStats } from '../../../src/core/pathmon/path-stats.ts';
import { SeededRng } from '../../../src/core/rng.ts';

function normal(rng: SeededRng): number {
  const u1 = Math.max(rng.nextFloat(), 1e-12);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * rng.nextFloat());
}

function inflated(s: PathStats): boolean {
  return queueDelayInflated({ srttMs: s.srttMs, baseRttMs: s.rttBaseMs(), rttJitterMs: s.rttJitterMs, rttSamples: s.rttSampleCount });
}

/** The test the edge used before: srtt against the all-time minimum, 3 x one-way RFC 3550 jitter. */
function oldInflated(s: PathStats, oneWayJitterMs: number): boolean {
  const base = s.minRttMs;
  return s.srttMs !== undefined && s.srttMs - base > Math.max(5, base * 0.2, 3 * oneWayJitterMs);
}

describe('queue delay test for FEC congestion back-off', () => {
  it('normal delay variation (2 ms each way, like cable) is not a queue: 0 verdicts in 60 s, where the minimum-RTT test convicted most ticks', () => {
    for (const sigmaMs of [2, 5]) {
      const s = new PathStats();
      const rng = new SeededRng(16 + sigmaMs);
      let now = 0;
      let verdicts = 0;
      let oldVerdicts = 0;
      const oneWayJitterMs = (2 * sigmaMs) / Math.sqrt(Math.PI); // what RFC 3550 converges to
      for (let i = 0; i < 600; i++) {
        now += 100;
        s.onRttSample(Math.max(0, 20 + sigmaMs * normal(rng) + sigmaMs * normal(rng)));
        if (inflated(s)) verdicts++;
        if (i >= 100 && oldInflated(s, oneWayJitterMs)) oldVerdicts++;
      }
      expect(verdicts).toBe(0);
      expect(oldVerdicts).toBeGreaterThan(100); // the cause, shown: the minimum sinks with every sample
    }
  });

  it('a queue building 30 ms on top of the same variation is inflated within a second', () => {
    const s = new PathStats();
    const rng = new SeededRng(5);
    for (let i = 0; i < 300; i++) s.onRttSample(20 + 2 * normal(rng) + 2 * normal(rng));
    expect(inflated(s)).toBe(false);
    let firstAt = -1;
    for (let i = 0; i < 20; i++) {
      const queueMs = Math.min(30, 3 * (i + 1)); // 3 ms more per probe, up to 30 ms
      s.onRttSample(20 + queueMs + 2 * normal(rng) + 2 * normal(rng));
      if (firstAt < 0 && inflated(s)) firstAt = i;
    }
    expect(firstAt).toBeGreaterThanOrEqual(0);
    expect(firstAt).toBeLessThan(10);
  });

  it('gives no verdict before a second of samples, nor without srtt', () => {
    expect(queueDelayInflated({ srttMs: 100, baseRttMs: 10, rttJitterMs: 0, rttSamples: QUEUE_DELAY_MIN_SAMPLES - 1 })).toBe(false);
    expect(queueDelayInflated({ srttMs: 100, baseRttMs: 10, rttJitterMs: 0, rttSamples: QUEUE_DELAY_MIN_SAMPLES })).toBe(true);
    expect(queueDelayInflated({ srttMs: undefined, baseRttMs: 10, rttJitterMs: 0, rttSamples: 100 })).toBe(false);
    // Thresholds: 5 ms, 20% of the base, 3 x the RTT variation, whichever is largest.
    expect(queueDelayInflated({ srttMs: 14.9, baseRttMs: 10, rttJitterMs: 0, rttSamples: 100 })).toBe(false);
    expect(queueDelayInflated({ srttMs: 15.1, baseRttMs: 10, rttJitterMs: 0, rttSamples: 100 })).toBe(true);
    expect(queueDelayInflated({ srttMs: 119, baseRttMs: 100, rttJitterMs: 0, rttSamples: 100 })).toBe(false);
    expect(queueDelayInflated({ srttMs: 25, baseRttMs: 10, rttJitterMs: 6, rttSamples: 100 })).toBe(false);
    expect(queueDelayInflated({ srttMs: 29, baseRttMs: 10, rttJitterMs: 6, rttSamples: 100 })).toBe(true);
  });
});
