/**
 * report() past the seen-bitmap (rx-marks.ts): over ~41,000 packets a second on one path the
 * sequence numbers between the settled one and the newest outgrow the 4,096-bit bitmap. The old
 * count then took every newer packet as settled, and when the rate fell a loss-free path read
 * 10-60% loss for a second. The sender's view (1 - d(received) / d(highestSeq) between reports
 * 1 s apart) must read the real loss at any rate and through rate changes.
 */
import { describe, expect, it } from 'vitest';
import { PathStats } from '../../../src/core/pathmon/path-stats.ts';
import { SeededRng } from '../../../src/core/rng.ts';

/** Feeds `perMs(t)` packets each ms for `ms`, losing each with `loss`, swapping neighbours with `swap`; reports every 100 ms. */
function run(ms: number, perMs: (t: number) => number, loss = 0, swap = 0, seed = 7): { windows: { fromMs: number; loss: number; expected: number }[]; lost: number; sent: number } {
  const s = new PathStats();
  const rng = new SeededRng(seed);
  let seq = 0;
  let lost = 0;
  const reports: { t: number; r: number; h: number }[] = [];
  for (let t = 0; t < ms; t++) {
    const n = perMs(t);
    const batch: number[] = [];
    for (let i = 0; i < n; i++) {
      const q = seq++;
      if (loss > 0 && rng.nextFloat() < loss) lost++;
      else batch.push(q);
    }
    for (let i = 0; i + 1 < batch.length; i += 2) if (swap > 0 && rng.nextFloat() < swap) [batch[i], batch[i + 1]] = [batch[i + 1]!, batch[i]!];
    batch.forEach((q, i) => s.onReceiveSeq(t + i / Math.max(1, n), q));
    if (t % 100 === 0) {
      const r = s.report(t);
      reports.push({ t, r: r.received, h: r.highestSeq });
    }
  }
  const windows = [];
  for (let i = 10; i < reports.length; i++) {
    const a = reports[i - 10]!;
    const b = reports[i]!;
    const expected = (b.h - a.h) >>> 0;
    windows.push({ fromMs: a.t, expected, loss: expected > 0 ? 1 - ((b.r - a.r) >>> 0) / expected : 0 });
  }
  return { windows, lost, sent: seq };
}

describe('PathStats report at high packet rates', () => {
  it('no loss: every 1 s window reads 0 through 130 -> 1 -> 60 packets/ms (the old count read up to 60%)', () => {
    const { windows } = run(6000, (t) => (t < 2000 ? 130 : t < 3000 ? 1 : 60));
    for (const w of windows) expect(Math.abs(w.loss), `window from ${w.fromMs} ms`).toBeLessThan(0.001);
  });

  it('2% random loss at 100 packets/ms, then 1: windows read 2% (within 0.4 pp), never far off when the rate falls', () => {
    const { windows } = run(5000, (t) => (t < 3000 ? 100 : 1), 0.02);
    for (const w of windows.filter((x) => x.expected > 20_000)) expect(Math.abs(w.loss - 0.02), `window from ${w.fromMs} ms`).toBeLessThan(0.004);
    for (const w of windows) expect(w.loss, `window from ${w.fromMs} ms`).toBeLessThan(0.05);
  });

  it('reordering (neighbours swapped) at 80 packets/ms is not loss', () => {
    const { windows } = run(4000, () => 80, 0, 0.3);
    for (const w of windows) expect(Math.abs(w.loss), `window from ${w.fromMs} ms`).toBeLessThan(0.001);
  });
});
