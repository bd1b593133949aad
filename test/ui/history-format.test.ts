import { describe, expect, it } from 'vitest';
import { cell, fmtBpsShort, fmtMs, fmtRatio, fmtUptime, rttScale, sparkline } from '../../src/ui/format.ts';
import { HISTORY_MAX_SAMPLES, HISTORY_WINDOW_MS, HistoryStore } from '../../src/ui/hooks/use-history.ts';
import { planClassTable, planLinkTable } from '../../src/ui/layout.ts';
import { colorEnabled } from '../../src/ui/theme.ts';
import { failoverSnapshot, link } from './fixtures.ts';

describe('HistoryStore', () => {
  it('keeps 60 s per link, folds snapshots closer than 250 ms, and caps every ring', () => {
    const h = new HistoryStore();
    for (let t = 0; t <= 200_000; t += 100) h.push(failoverSnapshot({ nowMs: t, links: [link(0, 'mpls', { rttMs: t / 1000 })] }));
    const s = h.samples('mpls');
    expect(s.length).toBeLessThanOrEqual(HISTORY_MAX_SAMPLES);
    expect(s[0]!.atMs).toBeGreaterThanOrEqual(s.at(-1)!.atMs - HISTORY_WINDOW_MS);
    expect(s.at(-1)!.atMs).toBeGreaterThan(199_000);
    expect(s[1]!.atMs - s[0]!.atMs).toBeGreaterThanOrEqual(250);
  });

  it('is idempotent per snapshot time, resets when the edge restarts, forgets removed links', () => {
    const h = new HistoryStore();
    const snap = failoverSnapshot({ nowMs: 5000 });
    h.push(snap);
    h.push(snap);
    expect(h.samples('inet')).toHaveLength(1);
    h.push(failoverSnapshot({ nowMs: 1000, links: [link(1, 'inet')] }));
    expect(h.samples('inet')).toHaveLength(1);
    expect(h.samples('inet')[0]!.atMs).toBe(1000);
    expect(h.samples('mpls')).toHaveLength(0);
  });

  it('buckets: rtt mean, loss worst, down time a gap; receive rate from byte deltas', () => {
    const h = new HistoryStore();
    h.push(failoverSnapshot({ nowMs: 1000, links: [link(0, 'a', { rttMs: 10, txLossRatio: 0.5, rxBytes: 0 })] }));
    h.push(failoverSnapshot({ nowMs: 1500, links: [link(0, 'a', { rttMs: 30, txLossRatio: 0, rxBytes: 125_000 })] }));
    h.push(failoverSnapshot({ nowMs: 60_000, links: [link(0, 'a', { state: 'down', rttMs: 30, rxBytes: 250_000 })] }));
    const s = h.series('a', 60, 60_000);
    expect(s.rttMs[1]).toBe(20);
    expect(s.lossRatio[1]).toBe(0.5);
    expect(s.rttMs[59]).toBeUndefined();
    expect(h.rxRateBps('a')).toBeCloseTo((125_000 * 8) / 58.5, 3);
  });
});

describe('formatting', () => {
  it('keeps numbers short and honest', () => {
    expect([fmtMs(undefined), fmtMs(4.25), fmtMs(245.2), fmtMs(1240)]).toEqual(['-', '4.3ms', '245ms', '1.24s']);
    expect([fmtRatio(undefined), fmtRatio(0), fmtRatio(0.0036), fmtRatio(0.041), fmtRatio(1)]).toEqual(['-', '0.0%', '0.36%', '4.1%', '100%']);
    expect([fmtBpsShort(0), fmtBpsShort(692_000), fmtBpsShort(14_300_000), fmtBpsShort(1.2e9)]).toEqual(['0', '692k', '14.3M', '1.20G']);
    expect([fmtUptime(12_340), fmtUptime(245_200), fmtUptime(3_845_000)]).toEqual(['12.3s', '4:05.2', '1:04:05']);
    expect([cell('abcdef', 4), cell('ab', 4, true)]).toEqual(['abc~', '  ab']);
  });

  it('sparklines: blanks for gaps, lowest bar at the scale minimum, steady RTT stays low', () => {
    expect(sparkline([0, 0.5, 1, undefined], 1)).toBe('▁▅█ ');
    const flat = rttScale([24, 24.1, 23.9]);
    expect(sparkline([24, 24.1, 23.9], flat.maxValue, flat.minValue)).toMatch(/^[▁▂]{3}$/);
  });
});

describe('layout', () => {
  it('80 columns: no secondary columns, short sparklines; 160: everything', () => {
    expect(planLinkTable(80, ['mpls', 'inet', 'lte'])).toEqual({ wide: false, nameWidth: 5, sparkWidth: 7 });
    const wide = planLinkTable(160, ['mpls', 'inet', 'lte']);
    expect(wide.wide).toBe(true);
    expect(wide.sparkWidth).toBeGreaterThan(20);
    expect(planClassTable(80, false).showDscp).toBe(false);
    expect(planClassTable(160, false).showDscp).toBe(true);
  });
});

describe('colour', () => {
  it('follows NO_COLOR, FORCE_COLOR, TERM=dumb and the TTY', () => {
    expect(colorEnabled({}, true)).toBe(true);
    expect(colorEnabled({}, false)).toBe(false);
    expect(colorEnabled({ NO_COLOR: '1' }, true)).toBe(false);
    expect(colorEnabled({ NO_COLOR: '' }, true)).toBe(true);
    expect(colorEnabled({ TERM: 'dumb' }, true)).toBe(false);
    expect(colorEnabled({ FORCE_COLOR: '1' }, false)).toBe(true);
  });
});
