import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { REJECT_AFTER_MESSAGES, REPLAY_FIRST_WORDS, REPLAY_RING_WORDS } from '../../../src/core/crypto/constants.ts';
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

describe('ReplayWindow grows only as far as its holes need (issue 12)', () => {
  it('agrees with the reference model from a 2-word start to a 64-word ring (loss, reordering, replays, jumps)', () => {
    const step = fc.oneof(
      { weight: 40, arbitrary: fc.constant(1) }, // in order: full words leave the ring
      { weight: 1, arbitrary: fc.integer({ min: 2, max: 3 }) }, // a lost counter: the ring grows
      { weight: 3, arbitrary: fc.integer({ min: -2100, max: 40 }) }, // late, replayed, near the window's end
      { weight: 1, arbitrary: fc.integer({ min: 60, max: 2500 }) }, // jumps, some past the whole window
      { weight: 1, arbitrary: fc.constant(0) }, // exact replays of the front
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 1500 }), fc.nat({ max: 2 ** 20 }), (steps, start) => {
        const window = new ReplayWindow(64, 2);
        const model = new ModelWindow(window.windowSize);
        let front = start;
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

  it('agrees with the reference model when packets come late by up to more than the window, or twice, or never', () => {
    const fate = fc.oneof(
      { weight: 30, arbitrary: fc.constant(0) }, // on time
      { weight: 2, arbitrary: fc.integer({ min: 1, max: 2200 }) }, // late by this many places (window 2016)
      { weight: 1, arbitrary: fc.constant(-1) }, // lost
      { weight: 1, arbitrary: fc.constant(-2) }, // duplicated, the copy 5 places later
    );
    fc.assert(
      fc.property(fc.array(fate, { minLength: 100, maxLength: 3000 }), fc.nat({ max: 2 ** 20 }), (fates, start) => {
        const arrivals: [number, number][] = [];
        fates.forEach((f, i) => {
          if (f === -1) return;
          arrivals.push([i + Math.max(0, f), start + i]);
          if (f === -2) arrivals.push([i + 5, start + i]);
        });
        arrivals.sort((a, b) => a[0] - b[0]);
        const window = new ReplayWindow(64, 2);
        const model = new ModelWindow(window.windowSize);
        for (const [, counter] of arrivals) {
          const expected = model.update(counter);
          expect(window.check(counter)).toBe(expected);
          expect(window.update(counter)).toBe(expected);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('keeps its first size for an in-order session, grows to span a hole, and reaches full size at most', () => {
    const inOrder = new ReplayWindow();
    for (let c = 0; c < 100_000; c++) expect(inOrder.update(c)).toBe(true);
    expect(inOrder.ringWords).toBe(REPLAY_FIRST_WORDS);
    const holed = new ReplayWindow();
    for (let c = 0; c < 1000; c++) if (c !== 10) holed.update(c);
    expect(holed.ringWords).toBe(32); // counter 10 (block 0) to 999 (block 31): 32 words
    expect(holed.check(10)).toBe(true);
    expect(holed.check(11)).toBe(false);
    for (let c = 1000; c < 40_000; c++) holed.update(c);
    expect(holed.ringWords).toBe(REPLAY_RING_WORDS);
    expect(holed.check(10)).toBe(false); // out of the window now
  });

  it('after growing, the counters of words that left the ring full are still refused', () => {
    const window = new ReplayWindow();
    for (let c = 0; c < 1000; c++) window.update(c);
    expect(window.ringWords).toBe(REPLAY_FIRST_WORDS);
    for (let c = 1001; c < 1300; c++) window.update(c); // 1000 lost
    expect(window.ringWords).toBe(16);
    for (const c of [0, 500, 999, 1001]) expect(window.check(c)).toBe(false);
    expect(window.check(1000)).toBe(true);
  });

  it('a jump over unseen counters still inside the window keeps them acceptable', () => {
    const window = new ReplayWindow();
    for (let c = 0; c < 128; c++) window.update(c); // 4 full words: nothing in the ring asks it to grow
    expect(window.update(5000)).toBe(true);
    for (const c of [128, 1234, 4999]) expect(window.check(c)).toBe(true);
    expect(window.check(127)).toBe(false);
  });
});
