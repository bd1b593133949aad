/**
 * Issue 17: `braid status` (JSON and text) and the dashboard's flows view show, per bonded flow,
 * its share per link, and per bonded class the resequencing depth, hold times and timeouts. The
 * snapshots come from a real bonded run in the World (1% loss on one link: timeouts happen).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { render } from 'ink-testing-library';
import { formatStatusText, statusJson } from '../../src/cli/status.ts';
import { FlowsPanel } from '../../src/ui/components/flows-panel.tsx';
import { DEFAULT_POLICIES } from '../../src/core/steer/classes.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';
import { checkSchema } from './json-schema.ts';

const schema = JSON.parse(readFileSync(new URL('../../docs/status-schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;

function bondedRun(equalizeDelay = false): { a: EdgeSnapshot; b: EdgeSnapshot } {
  const policies = DEFAULT_POLICIES.map((p) => (p.name === 'default' ? { ...p, strategy: 'bond' as const, ...(equalizeDelay ? { bondEqualizeDelay: true } : {}) } : p));
  const w = new World({ seed: 17, links: [{ name: 'mpls', delayMs: 10 }, { name: 'inet', delayMs: 25, lossRatio: 0.01 }], edge: { policies } });
  w.every(0.5, { startMs: 1500, count: 4000 }, (i) => w.a.sendTun(makePacket({ ...flowSpec(3, 1000), seq: i })));
  w.runFor(5000);
  return { a: w.a.edge.snapshot(w.nowMs), b: w.b.edge.snapshot(w.nowMs) };
}

describe('braid status and the dashboard for bonded traffic', () => {
  const { a, b } = bondedRun();

  it('JSON: the bonded flow has a share per link, the class its bond and resequencing; it validates against the schema', () => {
    const flow = a.topFlows.find((f) => f.class === 'default')!;
    expect(flow.bond!.shares.map((s) => s.link).sort()).toEqual(['inet', 'mpls']);
    const sum = flow.bond!.shares.reduce((x, s) => x + s.ratio, 0);
    expect(sum).toBeCloseTo(1, 6);
    const sent = a.bond!.find((c) => c.class === 'default')!;
    expect(sent.links.filter((l) => l.member).map((l) => l.link).sort()).toEqual(['inet', 'mpls']);
    const got = b.bond!.find((c) => c.class === 'default')!;
    expect(got.delivered).toBeGreaterThan(3900);
    expect(got.maxDepth).toBeGreaterThan(0);
    expect(got.timeouts + got.evidenceSkips).toBeGreaterThan(0);
    expect(got.holdMaxMs).toBeLessThanOrEqual(500);
    for (const snap of [a, b]) {
      const report = checkSchema(schema, JSON.parse(statusJson(snap)));
      expect(report.errors).toEqual([]);
      expect(report.undocumented, 'bond fields missing from docs/status-schema.json').toEqual([]);
    }
  });

  it('bond.equalizeDelay: the class shows its holds per link and waits; JSON validates, text has them', () => {
    const eq = bondedRun(true).b;
    const got = eq.bond!.find((c) => c.class === 'default')!;
    expect(got.equalize).toBeDefined();
    // mpls 10 ms, inet 25 ms one way: mpls's packets wait 15 ms, inet's none.
    expect(got.equalize!.holdMs[0]).toBeCloseTo(15, 0);
    expect(got.equalize!.holdMs[1]).toBe(0);
    expect(got.equalize!.held).toBeGreaterThan(0);
    const report = checkSchema(schema, JSON.parse(statusJson(eq)));
    expect(report.errors).toEqual([]);
    expect(report.undocumented, 'equalize fields missing from docs/status-schema.json').toEqual([]);
    expect(formatStatusText(eq)).toMatch(/equalize hold [\d.]+ ?ms\/0/);
    expect(b.bond!.find((c) => c.class === 'default')!.equalize, 'a class without the option shows none').toBeUndefined();
  });

  it('text: the top flow shows its links with shares; a bonded classes section shows the resequencing', () => {
    const text = formatStatusText(b);
    expect(text).toMatch(/bonded classes/);
    expect(text).toMatch(/default: reseq bound [\d.]+ ?ms, depth \d+ \(max [1-9]\d*\), held .* \d+ timeouts/);
    const sender = formatStatusText(a);
    expect(sender).toMatch(/bond (mpls|inet) \d+% (mpls|inet) \d+%/);
  });

  it('dashboard flows view: shares per link and the resequencing line', () => {
    const r = render(<FlowsPanel snapshot={b} columns={160} theme={{ color: false }} topRows={5} />);
    expect(r.lastFrame()).toMatch(/bond default: reseq bound [\d.]+ ?ms, depth/);
    const s = render(<FlowsPanel snapshot={a} columns={160} theme={{ color: false }} topRows={5} />);
    expect(s.lastFrame()).toMatch(/bond (mpls|inet) \d+% (mpls|inet) \d+%/);
  });
});
