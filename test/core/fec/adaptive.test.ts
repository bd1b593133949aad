import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AdaptiveParity,
  binomialTailAbove,
  effectiveLossRatio,
  requiredParity,
} from '../../../src/core/fec/adaptive.ts';

/** Exact binomial tail by direct sum with binomial coefficients, as a reference. */
function referenceTail(n: number, p: number, m: number): number {
  let c = 1; // C(n, 0)
  let tail = 0;
  for (let j = 0; j <= n; j++) {
    if (j > m) tail += c * p ** j * (1 - p) ** (n - j);
    c = (c * (n - j)) / (j + 1);
  }
  return tail;
}

describe('binomial tail', () => {
  it('matches the textbook sum', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.double({ min: 0, max: 0.5, noNaN: true }), fc.nat(64), (n, p, m) => {
        const got = binomialTailAbove(n, p, m);
        const want = referenceTail(n, p, m);
        expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-12 + 1e-9 * want);
      }),
    );
  });

  it('k = 8, p = 5%: the worked example in adaptive.ts', () => {
    expect(binomialTailAbove(10, 0.05, 2)).toBeCloseTo(0.01150, 5);
    expect(binomialTailAbove(11, 0.05, 3)).toBeCloseTo(0.0015523, 7);
    expect(binomialTailAbove(12, 0.05, 4)).toBeCloseTo(0.00018395, 8);
  });

  it('edges: no loss, certain loss, m >= n', () => {
    expect(binomialTailAbove(10, 0, 0)).toBe(0);
    expect(binomialTailAbove(10, 0.3, 10)).toBe(0);
    expect(binomialTailAbove(10, 1, 3)).toBeGreaterThan(0.99);
  });
});

describe('requiredParity', () => {
  it('5% loss, k = 8, target 0.1% -> m = 4', () => {
    expect(requiredParity(8, 0.05, 0.001, 32)).toBe(4);
  });

  it('0% loss -> m = 0', () => {
    expect(requiredParity(8, 0, 0.001, 32)).toBe(0);
  });

  it('1% loss, k = 8, target 0.1% -> m = 2; 20% loss -> more than 4', () => {
    expect(requiredParity(8, 0.01, 0.001, 32)).toBe(2);
    expect(requiredParity(8, 0.2, 0.001, 32)).toBeGreaterThan(4);
  });

  it('caps at maxM when the target cannot be met', () => {
    expect(requiredParity(8, 0.6, 1e-6, 4)).toBe(4);
  });

  it('is the smallest m meeting the target, and never decreases as loss grows (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        fc.constantFrom(1e-2, 1e-3, 1e-4, 1e-5),
        (k, p1, p2, target) => {
          const m = requiredParity(k, p1, target, 32);
          if (m < 32) expect(binomialTailAbove(k + m, p1, m)).toBeLessThan(target);
          if (m > 0) expect(binomialTailAbove(k + m - 1, p1, m - 1)).toBeGreaterThanOrEqual(target);
          const [lo, hi] = p1 <= p2 ? [p1, p2] : [p2, p1];
          expect(requiredParity(k, lo, target, 32)).toBeLessThanOrEqual(requiredParity(k, hi, target, 32));
        },
      ),
    );
  });
});

describe('effectiveLossRatio', () => {
  it('is the share-weighted mean of the paths in use', () => {
    expect(effectiveLossRatio([0.1, 0])).toBeCloseTo(0.05);
    expect(effectiveLossRatio([0.1, 0], [3, 1])).toBeCloseTo(0.075);
    expect(effectiveLossRatio([])).toBe(0);
    expect(effectiveLossRatio([Number.NaN, -1, 0.02])).toBeCloseTo(0.02 / 3);
  });
});

describe('AdaptiveParity', () => {
  const cfg = { k: 8, targetLossRatio: 0.001, decreaseHoldMs: 5000 };

  it('stays off on a clean path and turns on with the binomial m when loss appears', () => {
    const a = new AdaptiveParity(cfg);
    expect(a.update(0, { pathLossRatios: [0] })).toBe(0);
    expect(a.update(1000, { pathLossRatios: [0.0005] })).toBe(0);
    expect(a.update(2000, { pathLossRatios: [0.05] })).toBe(4);
  });

  it('does not flap around the threshold: on at 0.2%, off only after 5 s below 0.1%', () => {
    const a = new AdaptiveParity(cfg);
    expect(a.onAboveLossRatio).toBeCloseTo(0.002);
    expect(a.offBelowLossRatio).toBeCloseTo(0.001);
    expect(a.update(0, { pathLossRatios: [0.0015] })).toBe(0); // between thresholds, still off
    expect(a.update(1000, { pathLossRatios: [0.0025] })).toBe(1);
    expect(a.update(2000, { pathLossRatios: [0.0015] })).toBe(1); // between thresholds, stays on
    expect(a.update(3000, { pathLossRatios: [0.0005] })).toBe(1);
    expect(a.update(7000, { pathLossRatios: [0.0005] })).toBe(1);
    expect(a.update(8000, { pathLossRatios: [0.0005] })).toBe(0);
  });

  it('raises m at once and lowers it only after the lower need held, to the highest need seen', () => {
    const a = new AdaptiveParity(cfg);
    expect(a.update(0, { pathLossRatios: [0.05] })).toBe(4);
    expect(a.update(1000, { pathLossRatios: [0.2] })).toBeGreaterThan(4);
    const high = a.m;
    expect(a.update(2000, { pathLossRatios: [0.01] })).toBe(high);
    expect(a.update(3000, { pathLossRatios: [0.05] })).toBe(high);
    expect(a.update(7000, { pathLossRatios: [0.01] })).toBe(4); // the 5% seen during the hold still needs 4
    expect(a.update(8000, { pathLossRatios: [0.01] })).toBe(4); // a new hold starts here
    expect(a.update(12_000, { pathLossRatios: [0.01] })).toBe(4);
    expect(a.update(13_000, { pathLossRatios: [0.01] })).toBe(2);
  });

  it('caps m when loss rose together with our sending rate (congestion backoff)', () => {
    const a = new AdaptiveParity(cfg);
    expect(a.update(0, { pathLossRatios: [0.02], sendRateBps: 10e6 })).toBe(2);
    // Loss up from 2% to 8% while we sent 50% more: likely our own queue.
    expect(a.update(1000, { pathLossRatios: [0.08], sendRateBps: 15e6 })).toBe(1);
    expect(a.congested(1000)).toBe(true);
    // Same loss at a steady rate later: the cap holds for congestionHoldMs, then lifts.
    expect(a.update(5000, { pathLossRatios: [0.08], sendRateBps: 15e6 })).toBe(1);
    expect(a.update(11_001, { pathLossRatios: [0.08], sendRateBps: 15e6 })).toBeGreaterThan(4);
  });

  it('loss rising at a steady rate is not congestion', () => {
    const a = new AdaptiveParity(cfg);
    a.update(0, { pathLossRatios: [0.02], sendRateBps: 10e6 });
    expect(a.update(1000, { pathLossRatios: [0.08], sendRateBps: 10e6 })).toBeGreaterThan(4);
    expect(a.congested(1000)).toBe(false);
  });

  it('the caller can assert congestion itself', () => {
    const a = new AdaptiveParity({ ...cfg, congestionMaxM: 2 });
    expect(a.update(0, { pathLossRatios: [0.1], congested: true })).toBe(2);
  });

  it('mixes the paths in use by share', () => {
    const a = new AdaptiveParity(cfg);
    // 10% on one of two equally used paths = 5% per shard.
    expect(a.update(0, { pathLossRatios: [0.1, 0] })).toBe(4);
    expect(a.lossRatio).toBeCloseTo(0.05);
  });

  it('rejects bad configuration loudly', () => {
    expect(() => new AdaptiveParity({ k: 0, targetLossRatio: 0.01 })).toThrow(RangeError);
    expect(() => new AdaptiveParity({ k: 8, targetLossRatio: 0 })).toThrow(RangeError);
    expect(() => new AdaptiveParity({ k: 8, targetLossRatio: 0.01, onAboveLossRatio: 0.001, offBelowLossRatio: 0.01 })).toThrow(
      RangeError,
    );
  });
});
