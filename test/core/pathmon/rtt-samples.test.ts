import { describe, expect, it } from 'vitest';
import { RTT_SAMPLES_KEPT, RttSamples } from '../../../src/core/pathmon/rtt-samples.ts';
import { SeededRng } from '../../../src/core/rng.ts';

/** The percentile over the last RTT_SAMPLES_KEPT samples, from the plain list. */
function reference(samples: number[], p: number): number {
  const recent = samples.slice(-RTT_SAMPLES_KEPT).sort((a, b) => a - b);
  return recent[Math.min(recent.length - 1, Math.max(0, Math.ceil((p / 100) * recent.length) - 1))]!;
}

describe('RttSamples (grows to RTT_SAMPLES_KEPT, issue 12)', () => {
  it('gives the percentiles of the last RTT_SAMPLES_KEPT samples at every size it passes through', () => {
    const rng = new SeededRng(7);
    const r = new RttSamples();
    const other = new RttSamples(); // shares the sort buffer: its sorts must not leak into r's figures
    const all: number[] = [];
    expect(r.percentileMs(50)).toBeUndefined();
    for (let i = 1; i <= 1000; i++) {
      const v = 10 + (rng.nextU32() % 10_000) / 100;
      r.add(v);
      other.add(v * 3);
      all.push(v);
      expect(r.last()).toBe(v);
      if ([1, 15, 16, 17, 33, 255, 256, 257, 299, 300, 301, 599, 1000].includes(i)) {
        for (const p of [10, 50, 99, 75]) {
          other.percentileMs(p);
          expect(r.percentileMs(p)).toBe(reference(all, p));
        }
      }
    }
    expect(r.count).toBe(1000);
  });
});
