/**
 * Loss confidence bounds (pathmon/loss-bounds.ts) against the exact Clopper-Pearson bounds,
 * computed here from the binomial distribution by bisection.
 */
import { describe, expect, it } from 'vitest';
import { lossLowerBound, lossUpperBound } from '../../../src/core/pathmon/loss-bounds.ts';

/** P(X <= k) for X ~ Binomial(n, p), summed in log space. */
function binomCdf(k: number, n: number, p: number): number {
  if (p <= 0) return 1;
  if (p >= 1) return k >= n ? 1 : 0;
  let logTerm = n * Math.log(1 - p); // P(X = 0)
  let sum = Math.exp(logTerm);
  for (let i = 1; i <= k; i++) {
    logTerm += Math.log((n - i + 1) / i) + Math.log(p / (1 - p));
    sum += Math.exp(logTerm);
  }
  return Math.min(1, sum);
}

/** One-sided Clopper-Pearson bound with tail probability `alpha`. */
function clopperPearson(k: number, n: number, alpha: number, upper: boolean): number {
  if (upper && k === n) return 1;
  if (!upper && k === 0) return 0;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    // upper: the p at which P(X <= k) = alpha; lower: the p at which P(X >= k) = alpha.
    const tail = upper ? binomCdf(k, n, mid) : 1 - binomCdf(k - 1, n, mid);
    if (upper ? tail > alpha : tail < alpha) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

const Z95 = 1.645;
const Z84 = 1;
const ALPHA = { [Z95]: 0.05, [Z84]: 0.1587 } as Record<number, number>;

describe('loss confidence bounds (Wilson with continuity correction)', () => {
  const cases: [number, number][] = [
    [0, 60], [0, 186], [0, 400], [1, 125], [1, 332], [3, 630], [7, 630], [9, 634], [12, 2100], [27, 2100], [5, 10], [50, 1000],
  ];
  for (const z of [Z95, Z84]) {
    it(`stay within 25% (or 0.05 points) of the exact Clopper-Pearson bounds at z = ${z}, on the safe side of the point estimate`, () => {
      for (const [k, n] of cases) {
        const up = lossUpperBound(k, n, z);
        const low = lossLowerBound(k, n, z);
        const cpUp = clopperPearson(k, n, ALPHA[z]!, true);
        const cpLow = clopperPearson(k, n, ALPHA[z]!, false);
        expect(up, `upper ${k}/${n}`).toBeGreaterThanOrEqual(k / n);
        expect(low, `lower ${k}/${n}`).toBeLessThanOrEqual(k / n);
        expect(Math.abs(up - cpUp), `upper ${k}/${n}: ${up} vs ${cpUp}`).toBeLessThan(Math.max(0.25 * cpUp, 0.0005));
        if (k > 0) expect(Math.abs(low - cpLow), `lower ${k}/${n}: ${low} vs ${cpLow}`).toBeLessThan(Math.max(0.25 * cpLow, 0.0005));
        else expect(low).toBe(0);
      }
    });
  }

  it('the figures steering relies on: 9 of 634 is not surely over 0.8%; 0 of 186 is likely under 1%, 1 of 125 is not', () => {
    expect(lossLowerBound(9, 634, Z95)).toBeLessThan(0.008);
    expect(lossLowerBound(27, 2100, Z95)).toBeGreaterThan(0.008); // 1.3% over 10 s of voice
    expect(lossUpperBound(0, 186, Z84)).toBeLessThan(0.01);
    expect(lossUpperBound(0, 185, Z84)).toBeGreaterThan(0.01);
    expect(lossUpperBound(1, 125, Z84)).toBeGreaterThan(0.01);
  });

  it('degenerate counts: nothing sent proves nothing; all lost is surely lost', () => {
    expect(lossUpperBound(0, 0, Z84)).toBe(1);
    expect(lossLowerBound(0, 0, Z84)).toBe(0);
    expect(lossUpperBound(10, 10, Z84)).toBe(1);
    expect(lossLowerBound(10, 10, Z84)).toBeGreaterThan(0.8);
  });
});
