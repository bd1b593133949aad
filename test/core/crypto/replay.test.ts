import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REJECT_AFTER_MESSAGES, REPLAY_RING_WORDS } from '../../../src/core/crypto/constants.ts';
import { ReplayWindow } from '../../../src/core/crypto/replay.ts';

/** Reference model: a set of seen counters and the largest one; accept iff new and within the window. */
class ModelWindow {
  private readonly seen = new Set<number>();
  private greatest = 0;
  constructor(private readonly windowSize: number) {}
  update(counter: number): boolean {
    if (!(Number.isInteger(counter) && counter >= 0 && counter < REJECT_AFTER_MESSAGES)) return false;
    if (counter <= this.greatest && this.greatest - counter >= this.windowSize) return false;
    if (this.seen.has(counter)) return false;
    this.seen.add(counter);
    this.greatest = Math.max(this.greatest, counter);
    return true;
  }
}

describe('ReplayWindow (RFC 6479)', () => {
  it('has a window of at least 8192 packets by default', () => {
    const window = new ReplayWindow();
    expect(window.windowSize).toBe((REPLAY_RING_WORDS - 1) * 32);
    expect(window.windowSize).toBeGreaterThanOrEqual(8192);
  });

  it('accepts any order of distinct counters that fit in the window exactly once', () => {
    const window0 = new ReplayWindow();
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 40 }),
        fc.uniqueArray(fc.nat({ max: window0.windowSize - 1 }), { minLength: 1, maxLength: 400 }),
        (base, offsets) => {
          const window = new ReplayWindow();
          for (const offset of offsets) {
            expect(window.check(base + offset)).toBe(true);
            expect(window.update(base + offset)).toBe(true);
          }
          for (const offset of offsets) {
            expect(window.check(base + offset)).toBe(false);
            expect(window.update(base + offset)).toBe(false);
          }
        },
      ),
    );
  });

  it('agrees with the reference model on arbitrary sequences (reordering, replays, jumps)', () => {
    const ringWords = 8; // small ring so sequences hit every edge: window 224
    const step = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: -300, max: 40 }) }, // near the front, often behind
      { weight: 1, arbitrary: fc.integer({ min: 200, max: 2000 }) }, // jumps past the whole ring
      { weight: 1, arbitrary: fc.constant(0) }, // exact replays of the front
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 600 }), (steps) => {
        const window = new ReplayWindow(ringWords);
        const model = new ModelWindow(window.windowSize);
        let front = 1000;
        for (const delta of steps) {
          const counter = Math.max(0, front + delta);
          const expected = model.update(counter);
          expect(window.check(counter)).toBe(expected);
          expect(window.update(counter)).toBe(expected);
          front = Math.max(front, counter);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('rejects counters that fell out of the window, accepts the oldest one still inside', () => {
    fc.assert(
      fc.property(fc.integer({ min: 20_000, max: 2 ** 50 }), (greatest) => {
        const window = new ReplayWindow();
        expect(window.update(greatest)).toBe(true);
        expect(window.check(greatest - window.windowSize)).toBe(false);
        expect(window.update(greatest - window.windowSize)).toBe(false);
        expect(window.check(greatest - window.windowSize + 1)).toBe(true);
        expect(window.update(greatest - window.windowSize + 1)).toBe(true);
      }),
    );
  });

  it('check does not change state; update after a failed check changes nothing', () => {
    const window = new ReplayWindow();
    expect(window.check(10)).toBe(true);
    expect(window.check(10)).toBe(true);
    expect(window.update(10)).toBe(true);
    expect(window.check(10)).toBe(false);
    expect(window.greatestCounter).toBe(10);
  });

  it('clears stale bits when jumping far ahead', () => {
    const window = new ReplayWindow();
    for (let c = 0; c < 100; c++) window.update(c);
    const far = 10_000_000;
    expect(window.update(far)).toBe(true);
    // Same ring slots as 0..99 but a different lap: must be fresh.
    const lap = window.windowSize + 32; // ring length in counters
    for (let c = far - 1; c > far - 64; c--) expect(window.check(c)).toBe(true);
    expect(window.check(far - lap + 5)).toBe(false); // out of the window
    expect(window.check(0)).toBe(false);
  });

  it('handles counters near 2^60 and rejects 2^60 and above (REJECT_AFTER_MESSAGES)', () => {
    const window = new ReplayWindow();
    const near = 2 ** 60 - 2 ** 12; // exactly representable
    expect(window.update(near)).toBe(true);
    expect(window.update(near)).toBe(false);
    expect(window.check(near - 2 ** 8)).toBe(true);
    expect(window.update(near - 2 ** 8)).toBe(true);
    expect(window.check(2 ** 60 - 2 ** 8)).toBe(true);
    expect(window.check(REJECT_AFTER_MESSAGES)).toBe(false);
    expect(window.update(REJECT_AFTER_MESSAGES)).toBe(false);
    expect(window.update(2 ** 62)).toBe(false);
    expect(window.greatestCounter).toBe(near);
  });

  it('rejects non-integers, negatives and NaN', () => {
    const window = new ReplayWindow();
    for (const bad of [-1, 0.5, Number.NaN, Infinity, -Infinity]) {
      expect(window.check(bad)).toBe(false);
      expect(window.update(bad)).toBe(false);
    }
    expect(window.update(0)).toBe(true);
    expect(window.update(0)).toBe(false);
  });

  it('refuses a ring size that is not a power of two', () => {
    expect(() => new ReplayWindow(100)).toThrow();
    expect(() => new ReplayWindow(1)).toThrow();
  });
});
