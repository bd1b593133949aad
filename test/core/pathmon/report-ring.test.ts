import { describe, expect, it } from 'vitest';
import { LONG_WINDOW_MS, PathStats, SHORT_WINDOW_MS } from '../../../src/core/pathmon/path-stats.ts';
import { lossUpperBound } from '../../../src/core/pathmon/loss-bounds.ts';
import { ReportRing, REPORTS_KEPT, SENT_MARK_SPAN_MS, SentMarks } from '../../../src/core/pathmon/report-ring.ts';

/** The tx-loss queries as they were over a plain array of the last 320 reports (before the ring). */
class Reference {
  reports: { atMs: number; received: number; highestSeq: number }[] = [];
  push(atMs: number, received: number, highestSeq: number): void {
    const last = this.reports[this.reports.length - 1];
    if (last && ((highestSeq - last.highestSeq) | 0) < 0) return;
    this.reports.push({ atMs, received, highestSeq });
    if (this.reports.length > 320) this.reports.shift();
  }
  window(nowMs: number, windowMs: number): { first: { received: number; highestSeq: number }; last: { received: number; highestSeq: number } } | undefined {
    const n = this.reports.length;
    if (n < 2) return undefined;
    const last = this.reports[n - 1]!;
    if (nowMs - last.atMs > windowMs + LONG_WINDOW_MS) return undefined;
    let first = last;
    for (let i = n - 2; i >= 0; i--) {
      first = this.reports[i]!;
      if (last.atMs - first.atMs >= windowMs) break;
    }
    return { first, last };
  }
  counts(nowMs: number, windowMs: number): { lost: number; sent: number } | undefined {
    const w = this.window(nowMs, windowMs);
    if (!w) return undefined;
    const sent = (w.last.highestSeq - w.first.highestSeq) >>> 0;
    if (sent < 10) return undefined;
    return { lost: sent - Math.min((w.last.received - w.first.received) >>> 0, sent), sent };
  }
  best(nowMs: number, minWindowMs: number, maxWindowMs: number, z: number): number {
    const n = this.reports.length;
    let best = 1;
    if (n < 2) return best;
    const last = this.reports[n - 1]!;
    if (nowMs - last.atMs > minWindowMs + LONG_WINDOW_MS) return best;
    for (let i = n - 2; i >= 0; i--) {
      const first = this.reports[i]!;
      if (nowMs - first.atMs > maxWindowMs) break;
      if (last.atMs - first.atMs < minWindowMs) continue;
      const sent = (last.highestSeq - first.highestSeq) >>> 0;
      if (sent === 0) continue;
      const ub = lossUpperBound(sent - Math.min((last.received - first.received) >>> 0, sent), sent, z);
      if (ub < best) best = ub;
    }
    return best;
  }
}

describe('ReportRing (PathStats tx-loss reports)', () => {
  it('answers every tx-loss query as the plain array did, through fast, idle and fast again', () => {
    let seed = 7;
    const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const s = new PathStats();
    const ref = new Reference();
    let t = 1000;
    let sent = 0;
    let received = 0;
    let checks = 0;
    // Phases: 100 ms reports (fills the ring to 320), 2 s reports for 2 minutes (idle), 100 ms again.
    for (const [intervalMs, count] of [[100, 600], [2000, 60], [100, 400], [7000, 20]] as const) {
      for (let k = 0; k < count; k++) {
        t += intervalMs * (0.5 + rand());
        const n = Math.floor(rand() * 20);
        sent += n;
        received += n - (rand() < 0.3 ? Math.floor(rand() * 3) : 0);
        // Now and then a stale (reordered) report.
        const hi = rand() < 0.05 ? sent - 5 : sent;
        s.onPeerReport(t, received >>> 0, hi >>> 0);
        ref.push(t, received >>> 0, hi >>> 0);
        for (const now of [t, t + 50, t + 5000]) {
          for (const w of [SHORT_WINDOW_MS, 3000, 10_000, LONG_WINDOW_MS]) {
            expect(s.txLossCounts(now, w)).toEqual(ref.counts(now, w));
            const r = ref.window(now, w);
            const lr = s.txLossRatio(now, w);
            if (r === undefined || ((r.last.highestSeq - r.first.highestSeq) >>> 0) < 10) expect(lr).toBeUndefined();
            else expect(lr).toBeDefined();
            checks++;
          }
          for (const [minW, maxW] of [[5000, 5000], [5000, 20_000], [10_000, LONG_WINDOW_MS]] as const) expect(s.txLossBestUpperBound(now, minW, maxW, 1)).toBe(ref.best(now, minW, maxW, 1));
        }
      }
    }
    expect(checks).toBeGreaterThan(10_000);
  });

  it('windowStart finds the window the backwards scan found, also when a caller\'s time went back', () => {
    const scan = (r: ReportRing, windowMs: number): number => {
      const n = r.length;
      if (n < 2) return 0;
      let i = n - 2;
      for (; i > 0; i--) if (r.atMsOf(n - 1) - r.atMsOf(i) >= windowMs) break;
      return i;
    };
    let seed = 3;
    const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (const backwards of [false, true]) {
      const r = new ReportRing();
      let t = 0;
      let checks = 0;
      for (let k = 0; k < 800; k++) {
        // Equal times now and then; with `backwards`, a step back in time once in a while.
        t += backwards && rand() < 0.05 ? -300 * rand() : rand() < 0.1 ? 0 : 200 * rand();
        r.push(t, k, k);
        for (const w of [0, 1, SHORT_WINDOW_MS, 3000, 10_000, LONG_WINDOW_MS, 1e9]) {
          expect(r.windowStart(w)).toBe(scan(r, w));
          checks++;
        }
      }
      expect(checks).toBe(5600);
    }
  });

  it('grows with the report rate, stays within REPORTS_KEPT, and shrinks when reports slow down', () => {
    const r = new ReportRing();
    const cap = (): number => (r as unknown as { atMs: Float64Array | undefined }).atMs?.length ?? 0;
    expect(cap()).toBe(0);
    let t = 0;
    for (let i = 0; i < 1000; i++) r.push((t += 50), i, i);
    expect(r.length).toBe(REPORTS_KEPT);
    expect(cap()).toBe(REPORTS_KEPT);
    expect(r.at(-1)).toEqual({ atMs: t, received: 999, highestSeq: 999 });
    expect(r.at(0)!.highestSeq).toBe(1000 - REPORTS_KEPT);
    // Idle: one report every 2 s; what no 30 s window reaches goes, and the arrays shrink.
    for (let i = 0; i < 60; i++) r.push((t += 2000), 1000 + i, 1000 + i);
    expect(r.length).toBeLessThanOrEqual(17);
    expect(cap()).toBeLessThanOrEqual(64);
    expect(r.atMsOf(1)).toBeGreaterThanOrEqual(t - 30_000);
  });
});

describe('SentMarks (what we had sent when)', () => {
  it('answers every question about the last SENT_MARK_SPAN_MS as a full 256-mark ring, and keeps few marks on a quiet path', () => {
    // The ring as it was: the last 256 marks, one per 10 ms at most.
    const ref: { t: number; s: number }[] = [];
    const refNote = (t: number, s: number): void => {
      const last = ref[ref.length - 1];
      if (last && t - last.t < 10) last.s = s;
      else {
        ref.push({ t, s });
        if (ref.length > 256) ref.shift();
      }
    };
    const refBy = (at: number): number | undefined => {
      for (let i = ref.length - 1; i >= 0; i--) if (ref[i]!.t <= at) return ref[i]!.s;
      return undefined;
    };
    let seed = 11;
    const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const m = new SentMarks();
    let t = 0;
    let seq = 0;
    let maxQuiet = 0;
    for (const [gapMs, count] of [[3, 3000], [1000, 100], [25, 500], [2000, 50]] as const) {
      for (let k = 0; k < count; k++) {
        t += gapMs * (0.5 + rand());
        seq++;
        m.note(t, seq);
        refNote(t, seq);
        for (let q = 0; q < 5; q++) {
          const at = t - rand() * SENT_MARK_SPAN_MS;
          expect(m.sentBy(at)).toBe(refBy(at));
        }
        if (gapMs >= 1000 && k > 10) maxQuiet = Math.max(maxQuiet, m.length);
      }
    }
    // A mark a second or so: the marks of the last 2.56 s and one before.
    expect(maxQuiet).toBeLessThanOrEqual(6);
  });
});
