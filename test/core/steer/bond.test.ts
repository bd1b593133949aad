/**
 * Bond scheduler (issue 17): membership (delay gap, loss, MTU), shares that follow capacity, and
 * the earliest-arrival scheduler's promise: when its model matches the paths, arrivals come in
 * sending order.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BondScheduler, type BondPath, type BondSchedulerKind } from '../../../src/core/steer/bond.ts';

const MBIT = 1_000_000;

function path(id: number, spareMbit: number, srttMs: number, lossRatio = 0, mtuBytes = 1420): BondPath {
  return { id, spareBps: spareMbit * MBIT, srttMs, lossRatio, mtuBytes };
}

/** Sends `n` packets of `size` at `gapMs` apart; returns the packets per path id. */
function spread(s: BondScheduler, n: number, size = 1400, gapMs = 0.01, startMs = 0): Map<number, number> {
  const count = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const id = s.pick(startMs + i * gapMs, size);
    count.set(id, (count.get(id) ?? 0) + 1);
  }
  return count;
}

describe('BondScheduler membership', () => {
  for (const kind of ['wrr', 'eat'] as BondSchedulerKind[]) {
    it(`${kind}: leaves out a path whose one-way delay gap is beyond the class's`, () => {
      const s = new BondScheduler({ kind, maxDelayGapMs: 25 });
      s.setPaths(0, [path(0, 100, 20), path(1, 100, 60), path(2, 100, 80)]);
      // One-way 10 / 30 / 40 ms: gaps 0, 20, 30.
      expect(s.memberIds()).toEqual([0, 1]);
      expect(s.snapshot().find((p) => p.id === 2)).toMatchObject({ member: false, reason: 'delayGap' });
      const c = spread(s, 3000);
      expect(c.get(2)).toBeUndefined();
      expect(c.get(1)).toBeGreaterThan(0);
    });

    it(`${kind}: weighs a losing path down at once, and out at the cutoff`, () => {
      const s = new BondScheduler({ kind, maxDelayGapMs: 100 });
      s.setPaths(0, [path(0, 100, 20), path(1, 100, 20)]);
      const before = spread(s, 10_000);
      expect(Math.abs(before.get(0)! - before.get(1)!)).toBeLessThanOrEqual(2);
      s.setPaths(1000, [path(0, 100, 20), path(1, 100, 20, 0.01)]);
      const after = spread(s, 10_000, 1400, 0.01, 1000);
      // 1% loss with the 5% cutoff: weight x0.8 -> 100 : 80.
      expect(after.get(1)! / after.get(0)!).toBeCloseTo(0.8, 1);
      s.setPaths(2000, [path(0, 100, 20), path(1, 100, 20, 0.05)]);
      expect(s.memberIds()).toEqual([0]);
      expect(spread(s, 100, 1400, 0.01, 2000).get(1)).toBeUndefined();
    });

    it(`${kind}: a packet larger than a path's MTU avoids it; none fits: -1`, () => {
      const s = new BondScheduler({ kind, maxDelayGapMs: 100 });
      s.setPaths(0, [path(0, 100, 20, 0, 1420), path(1, 100, 20, 0, 1280)]);
      expect(spread(s, 100, 1400).get(1)).toBeUndefined();
      expect(spread(s, 100, 1000).get(1)).toBeGreaterThan(0);
      expect(s.pick(10, 1500)).toBe(-1);
      expect(s.noPath).toBe(1);
    });

    it(`${kind}: a path without an RTT yet is not a member; no member at all: -1`, () => {
      const s = new BondScheduler({ kind, maxDelayGapMs: 100 });
      s.setPaths(0, [{ ...path(0, 100, 20), srttMs: undefined }]);
      expect(s.memberIds()).toEqual([]);
      expect(s.pick(0, 100)).toBe(-1);
    });
  }
});

describe('BondScheduler shares', () => {
  it('wrr: shares follow spare capacity exactly (bytes)', () => {
    const s = new BondScheduler({ kind: 'wrr', maxDelayGapMs: 100 });
    s.setPaths(0, [path(0, 100, 20), path(1, 50, 40), path(2, 50, 80)]);
    const c = spread(s, 4000);
    expect(c.get(0)).toBe(2000);
    expect(c.get(1)).toBe(1000);
    expect(c.get(2)).toBe(1000);
  });

  it('wrr: unknown spare capacity on any path means equal shares', () => {
    const s = new BondScheduler({ kind: 'wrr', maxDelayGapMs: 100 });
    s.setPaths(0, [path(0, 100, 20), path(1, 0, 20)]);
    const c = spread(s, 1000);
    expect(c.get(0)).toBe(500);
    expect(c.get(1)).toBe(500);
  });

  it('eat: with a capacity unknown, picks as wrr (equal shares), not by clocks at a made-up rate', () => {
    const s = new BondScheduler({ kind: 'eat', maxDelayGapMs: 100 });
    s.setPaths(0, [path(0, 100, 20), path(1, 0, 80)]);
    // Light load: eat with known rates would keep everything on path 0.
    const c = spread(s, 1000, 1400, 1.12);
    expect(c.get(0)).toBe(500);
    expect(c.get(1)).toBe(500);
  });

  it('eat: at low load keeps to the fastest path; saturated, shares follow capacity', () => {
    const s = new BondScheduler({ kind: 'eat', maxDelayGapMs: 100 });
    s.setPaths(0, [path(0, 100, 20), path(1, 100, 40), path(2, 100, 80)]);
    // 10 Mbit/s of 1400-byte packets: one every 1.12 ms, the fast path drains each in 0.112 ms.
    const light = spread(s, 2000, 1400, 1.12);
    expect(light.get(0)).toBe(2000);
    // 290 Mbit/s for 10 s: the two faster paths full (100/290 each), the slowest takes the rest.
    const n = 258_929;
    const heavy = spread(s, n, 1400, (1400 * 8) / 290e3, 10_000);
    expect(heavy.get(0)! / n).toBeGreaterThan(0.34);
    expect(heavy.get(1)! / n).toBeGreaterThan(0.34);
    expect(heavy.get(2)! / n).toBeGreaterThan(0.3);
  });
});

describe('BondScheduler eat: in-order arrivals when its model matches the paths', () => {
  it('equal-size packets over 2-3 paths arrive in sending order (random rates, delays, send times)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ mbit: fc.integer({ min: 1, max: 200 }), rttMs: fc.integer({ min: 2, max: 200 }) }), { minLength: 2, maxLength: 3 }),
        fc.array(fc.double({ min: 0, max: 2, noNaN: true }), { minLength: 1, maxLength: 500 }),
        (paths, gapsMs) => {
          const s = new BondScheduler({ kind: 'eat', maxDelayGapMs: 1000 });
          s.setPaths(0, paths.map((p, id) => path(id, p.mbit, p.rttMs)));
          // Each path: a FIFO bottleneck at its rate, then its one-way delay.
          const freeAtMs = paths.map(() => 0);
          let t = 0;
          let lastArrival = -Infinity;
          for (const gap of gapsMs) {
            t += gap;
            const id = s.pick(t, 1400);
            expect(id).toBeGreaterThanOrEqual(0);
            const p = paths[id]!;
            const done = Math.max(t, freeAtMs[id]!) + (1400 * 8) / (p.mbit * 1000);
            freeAtMs[id] = done;
            const arrival = done + p.rttMs / 2;
            expect(arrival).toBeGreaterThanOrEqual(lastArrival - 1e-9);
            lastArrival = arrival;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
