/**
 * PathStats pieces steering leans on for SLA exits and re-entry: the short-window jitter view
 * and the evidence-based loss used for re-entry.
 */
import { describe, expect, it } from 'vitest';
import { PathStats } from '../../../src/core/pathmon/path-stats.ts';

/** Probes every 100 ms with the given one-way transit (ms) per probe. */
function probes(stats: PathStats, transitsMs: number[], startMs = 0): number {
  let t = startMs;
  for (const transit of transitsMs) {
    t += 100;
    stats.onProbeArrival(t + transit, t);
  }
  return t + transitsMs[transitsMs.length - 1]!;
}

describe('PathStats jitter view', () => {
  it('one late probe does not read as a storm; a storm shows within a second', () => {
    const calm = new PathStats();
    // 30 probes at 20 ms, one of them 200 ms late: two large |D| (in and out of the spike).
    const transits = Array.from({ length: 30 }, (_, i) => (i === 25 ? 220 : 20));
    const end = probes(calm, transits);
    expect(calm.jitterRecentMs(end, 1000)).toBeLessThan(1);
    expect(calm.jitterViewMs(end)).toBeGreaterThan(calm.jitterRecentMs(end, 1000)!); // the EWMA did take the spike

    const storm = new PathStats();
    let t = probes(storm, Array.from({ length: 30 }, () => 20));
    // Then alternating 20 / 120 ms: |D| = 100 every probe. After one second (10 probes):
    t = probes(storm, Array.from({ length: 10 }, (_, i) => (i % 2 ? 120 : 20)), t - 20);
    expect(storm.jitterRecentMs(t, 1000)).toBeGreaterThan(80);
    expect(storm.jitterMs).toBeLessThan(60); // RFC 3550's 1/16 gain is still climbing
    expect(storm.jitterViewMs(t)).toBeGreaterThan(80);
  });

  it('reports 0 before any probe and at least 1 us once measured (0 is "unknown" on the wire)', () => {
    const s = new PathStats();
    s.onReceiveSeq(0, 1);
    expect(s.report(0).jitterUs).toBe(0);
    probes(s, [10, 10, 10]);
    expect(s.report(400).jitterUs).toBe(1);
  });

  it('tx jitter is the peer\'s report while fresh, our own view otherwise', () => {
    const s = new PathStats();
    probes(s, [10, 30, 10, 30, 10, 30, 10, 30]);
    s.onPeerJitter(1000, 2500);
    expect(s.txJitterMs(1500)).toBe(2.5);
    expect(s.txJitterMs(2100)).toBe(s.jitterViewMs(2100)); // the report is more than 1 s old
    expect(s.jitterViewMs(2100)).toBeGreaterThan(5); // ours: the 10 -> 30 ms swings above, not 2.5
    s.onPeerJitter(2200, 0); // "unknown" does not overwrite
    expect(s.peerJitterMs).toBe(2.5);
  });
});

describe('PathStats loss evidence for SLA re-entry', () => {
  /** Peer reports every 100 ms: `perReport` packets sent, `lostEvery`-th lost. */
  function feed(s: PathStats, reports: number, perReport: number, lostEvery: number): number {
    let sent = 0;
    let received = 0;
    let t = 0;
    for (let r = 0; r < reports; r++) {
      t += 100;
      for (let i = 0; i < perReport; i++) {
        sent++;
        if (sent % lostEvery !== 0) received++;
      }
      s.onPeerReport(t, received, sent);
    }
    return t;
  }

  it('wants the packets the threshold needs: 50 probes are not enough to judge 0.8%', () => {
    const s = new PathStats();
    const now = feed(s, 60, 1, 1_000_000); // 6 s of an idle path, 60 probes, none lost
    expect(s.txLossEvidence(now, 5000, 30_000, 125)).toBeUndefined();
    expect(s.txLossEvidence(now, 5000, 30_000, 50)).toBe(0);
  });

  it('looks back further to find the packets, but never past maxWindowMs', () => {
    const s = new PathStats();
    const now = feed(s, 200, 1, 50); // 20 s at 10/s, 2% lost
    const loss = s.txLossEvidence(now, 5000, 30_000, 125)!;
    expect(loss).toBeGreaterThan(0.01);
    expect(loss).toBeLessThan(0.03);
    expect(s.txLossEvidence(now, 5000, 8000, 125)).toBeUndefined();
  });

  it('under traffic the minimum window is enough', () => {
    const s = new PathStats();
    const now = feed(s, 100, 20, 1000); // 200 packets/s, 0.1% lost
    const loss = s.txLossEvidence(now, 5000, 30_000, 125)!;
    expect(loss).toBeLessThan(0.008);
  });
});
