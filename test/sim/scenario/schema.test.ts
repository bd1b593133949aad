/**
 * Scenario files: validation with one-line errors naming the field and the fix, timeline
 * resolution (set / add / restore per direction), expectations, and the pieces the runners
 * share (packet factory, traffic tracker, timeline analysis, report shape).
 */
import { describe, expect, it } from 'vitest';
import { makePacket } from '../../../sim/packets.ts';
import { PacketFactory } from '../../../sim/scenario/fast-packet.ts';
import { analyzeTimeline, parseFlowMove, TrafficTracker, type SiteEvent } from '../../../sim/scenario/metrics.ts';
import { evaluateExpectations, parseExpectation } from '../../../sim/scenario/expect.ts';
import { buildReport, reportJson, reportText } from '../../../sim/scenario/report.ts';
import { listScenarios, loadScenario, parseScenario, ScenarioError, timeMs } from '../../../sim/scenario/schema.ts';
import { formatNetemSpec } from '../../../sim/netem/spec.ts';
import { planFlows } from '../../../sim/scenario/traffic.ts';
import { BraidError, ErrorCode } from '../../../src/core/errors.ts';

const BASE = `
name: t
description: a test scenario
durationS: 30
links:
  - { name: mpls, profile: mpls }
  - { name: inet, netem: { up: "delay 10ms rate 20mbit", down: "delay 12ms rate 50mbit" }, costTier: overflow }
traffic:
  - { class: voice, kind: voice, calls: 2 }
  - { class: bulk, kind: bulk, flows: 2, rateMbps: 2 }
timeline:
  - { at: 10s, link: mpls, set: "loss 100%" }
  - { at: 15s, link: inet, add: "loss 3%", direction: up }
  - { at: 20s, link: mpls, restore: true }
expect: ["voice.max_gap_ms < 400", "bulk.delivered_ratio > 99%", "events.detection_ms <= 400"]
`;

describe('health steps (issue 16: the link\'s external health target)', () => {
  it('resolve to a fault (unreachable) and a recovery (reachable) at the branch, with no netem change', () => {
    const s = parseScenario(
      BASE.replace('  - { at: 20s, link: mpls, restore: true }', '  - { at: 20s, link: mpls, restore: true }\n  - { at: 21s, link: inet, health: unreachable, target: isp-gw-1 }\n  - { at: 25s, link: inet, health: reachable }'),
      't.yaml',
    );
    const [down, up] = s.timeline.slice(3);
    expect(down).toMatchObject({ action: 'health', kind: 'fault', link: 'inet', result: {}, health: { reachable: false, target: 'isp-gw-1', site: 'a', link: 'inet' } });
    expect(up).toMatchObject({ action: 'health', kind: 'restore', health: { reachable: true, target: 'isp-gateway', site: 'a', link: 'inet' } });
    expect(down!.text).toBe('health target isp-gw-1 unreachable');
    expect(parseExpectation('events.health_down_ms < 1000', ['voice']).metric).toBe('health_down_ms');
  });
});

function errorOf(text: string): string {
  try {
    parseScenario(text, 't.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    expect((e as BraidError).code).toBe(ErrorCode.SCENARIO_INVALID);
    expect((e as BraidError).exitCode).toBe(2);
    const line = (e as BraidError).oneLine();
    expect(line).not.toContain('\n');
    return line;
  }
  throw new Error('expected a ScenarioError');
}

describe('scenario files', () => {
  it('resolves links, traffic, timeline and expectations', () => {
    const s = parseScenario(BASE, 'inline');
    expect(s.durationMs).toBe(30_000);
    expect(s.links.map((l) => [l.name, l.costTier])).toEqual([
      ['mpls', 'primary'],
      ['inet', 'overflow'],
    ]);
    expect(s.links[1]!.bandwidthBps).toEqual({ up: 20e6, down: 50e6 });
    const voice = s.traffic[0]!;
    expect([voice.flows, voice.sizeBytes, voice.pps, voice.dscp, voice.direction]).toEqual([2, 200, 50, 46, 'both']);
    const bulk = s.traffic[1]!;
    expect(bulk.direction).toBe('up');
    expect(bulk.pps).toBeCloseTo((2e6 / 8 / 1400) / 2, 6);
    // set replaces both directions; add merges onto the current spec of one direction; restore.
    expect(formatNetemSpec(s.timeline[0]!.result.up!)).toBe('loss 100%');
    expect(formatNetemSpec(s.timeline[0]!.result.down!)).toBe('loss 100%');
    expect(s.timeline[1]!.result.down).toBeUndefined();
    expect(formatNetemSpec(s.timeline[1]!.result.up!)).toBe('delay 10ms loss 3% rate 20mbit');
    expect(s.timeline[2]!.result.up).toEqual(s.links[0]!.up);
    expect(s.timeline.map((t) => t.kind)).toEqual(['fault', 'fault', 'restore']);
    expect(s.expectations[1]).toMatchObject({ subject: 'bulk', metric: 'delivered_ratio', op: '>', value: 0.99 });
    // 2 calls each way + 2 bulk flows one way.
    expect(planFlows(s).map((f) => `${f.className}:${f.origin}`)).toEqual(['voice:a', 'voice:a', 'voice:b', 'voice:b', 'bulk:a', 'bulk:a']);
  });

  it('every shipped scenario loads', () => {
    const names = listScenarios();
    expect(names).toEqual(expect.arrayContaining(['mpls-blackout', 'lte-jitter-storm', 'broadband-brownout', 'flapping-link', 'asymmetric-failure', 'all-degraded']));
    for (const n of names) {
      const s = loadScenario(n);
      expect(s.name).toBe(n);
      expect(s.expectations.length).toBeGreaterThan(2);
    }
  });

  it('names the field and the fix in one line', () => {
    expect(errorOf(BASE.replace('durationS: 30', 'durationS: 30\nduration: 5'))).toMatch(/^t\.yaml:\d+:1: duration: unknown field; fix: remove it or fix its spelling \(fields here: name, description/);
    expect(errorOf(BASE.replace('{ class: voice, kind: voice, calls: 2 }', '{ class: voice, kind: voice, calls: 2, rate: 3 }'))).toMatch(/traffic\[0\]\.rate: unknown field; fix: .*\(fields here: class, kind, calls/);
    expect(errorOf(BASE.replace('profile: mpls', 'profile: mpsl'))).toMatch(/links\[0\]\.profile: no link profile "mpsl".*fix: use one of 5g, cable/);
    expect(errorOf(BASE.replace('set: "loss 100%"', 'set: "loss 100% jitter 5ms"'))).toMatch(/timeline\[0\]\.set: netem: "loss 100% jitter 5ms": .*"jitter"/);
    expect(errorOf(BASE.replace('link: mpls, set', 'link: mlps, set'))).toMatch(/timeline\[0\]\.link: no link named "mlps"; fix: use one of mpls, inet/);
    expect(errorOf(BASE.replace('at: 10s', 'at: 10 seconds'))).toMatch(/timeline\[0\]\.at: expected a time like 10s or 1500ms, got "10 seconds"/);
    expect(errorOf(BASE.replace('at: 20s', 'at: 40s'))).toMatch(/timeline\[2\]\.at: 40 s is after the end of the run \(30 s\)/);
    expect(errorOf(BASE.replace('kind: voice, calls: 2', 'kind: voice, flows: 2'))).toMatch(/traffic\[0\]\.flows: not used by kind voice; fix: voice traffic counts calls/);
    expect(errorOf(BASE.replace('class: voice', 'class: vocie'))).toMatch(/traffic\[0\]\.class: expected a class: control, voice/);
    expect(errorOf(BASE.replace('"voice.max_gap_ms < 400"', '"voice.max_gap < 400"'))).toMatch(/expect\[0\]: "voice.max_gap < 400": no metric "max_gap"; fix: use one of sent/);
    expect(errorOf(BASE.replace('"voice.max_gap_ms < 400"', '"video.max_gap_ms < 400"'))).toMatch(/"video" is not a class with traffic in this scenario; fix: use events or one of voice, bulk/);
    expect(errorOf(BASE.replace('"voice.max_gap_ms < 400"', '"voice max gap small"'))).toMatch(/is not SUBJECT.METRIC OP NUMBER/);
    expect(errorOf(BASE.replace('  - { name: mpls, profile: mpls }', '  - { name: mpls }'))).toMatch(/links\[0\]: needs exactly one of profile or netem/);
    expect(errorOf(BASE.replace('restore: true', 'restore: true, set: "delay 1ms"'))).toMatch(/timeline\[2\]: needs exactly one of set, add, restore or health/);
    expect(errorOf(BASE.replace('restore: true', 'restore: true, target: gw'))).toMatch(/timeline\[2\]\.target: only for health steps/);
    expect(errorOf(BASE.replace('restore: true', 'health: unreachable, direction: up'))).toMatch(/timeline\[2\]\.direction: not used by health steps/);
    expect(errorOf(BASE.replace('restore: true', 'health: down'))).toMatch(/timeline\[2\]\.health: expected unreachable or reachable/);
    expect(errorOf(BASE.replace('durationS: 30', 'durationS: "thirty"'))).toMatch(/durationS: expected the run length in seconds, got "thirty"/);
    expect(errorOf('name: [')).toMatch(/^t\.yaml:1:7: not valid YAML/);
    expect(errorOf(BASE.replace('at: 10s', 'at: 10 seconds'))).toMatch(/^t\.yaml:\d+:\d+: timeline\[0\]\.at: /);
    expect(errorOf(BASE.replace('name: t\n', ''))).toMatch(/name: missing/);
  });

  it('parses times and expectation values', () => {
    expect(timeMs('s', 'f', '10s')).toBe(10_000);
    expect(timeMs('s', 'f', '1500ms')).toBe(1500);
    expect(timeMs('s', 'f', '1.5s')).toBe(1500);
    expect(timeMs('s', 'f', '2m')).toBe(120_000);
    expect(timeMs('s', 'f', 3)).toBe(3000);
    expect(parseExpectation('voice.loss_ratio < 1%', ['voice']).value).toBeCloseTo(0.01);
    const results = evaluateExpectations(
      [parseExpectation('voice.lost <= 3', ['voice']), parseExpectation('voice.reroute_ms < 500', ['voice']), parseExpectation('voice.p99_ms < 5', ['voice'])],
      (_s, m) => (m === 'lost' ? 3 : m === 'reroute_ms' ? Infinity : undefined),
    );
    expect(results.map((r) => r.pass)).toEqual([true, false, false]);
    expect(results[2]!.note).toMatch(/has no value/);
  });
});

describe('shared measurement pieces', () => {
  it('PacketFactory builds exactly what makePacket builds, and matches() spots any flipped byte', () => {
    for (const protocol of [6, 17] as const) {
      for (const sizeBytes of [60, 200, 1400]) {
        const spec = { src: [10, 1, 0, 2] as [number, number, number, number], dst: [10, 2, 0, 2] as [number, number, number, number], srcPort: 1234, dstPort: 5000, dscp: 46, protocol, sizeBytes, flowId: 7 };
        const f = new PacketFactory(spec);
        for (const seq of [0, 1, 255, 256, 70_000, 2 ** 31]) {
          const want = makePacket({ ...spec, seq });
          expect(Buffer.from(f.make(seq)).equals(Buffer.from(want))).toBe(true);
          expect(Buffer.from(f.makeShared(seq)).equals(Buffer.from(want))).toBe(true);
          expect(f.matches(want, seq)).toBe(true);
          expect(f.matches(want, seq + 1)).toBe(false);
          for (const i of [5, 30, sizeBytes - 1]) {
            const bad = want.slice();
            bad[i] = bad[i]! ^ 1;
            expect(f.matches(bad, seq)).toBe(false);
          }
        }
      }
    }
  });

  it('TrafficTracker counts loss, duplicates, misdelivery and the longest gap', () => {
    const t = new TrafficTracker([{ flowId: 1, className: 'voice', origin: 'a', sizeBytes: 200 }]);
    for (let seq = 0; seq < 10; seq++) t.recordSend(1, seq, seq * 20);
    for (const seq of [0, 1, 2, 6, 7, 8, 9]) t.recordDelivery(1, seq, seq * 20 + 10, 'b', true, 200);
    t.recordDelivery(1, 9, 195, 'b', true, 200); // a duplicate
    t.recordDelivery(1, 5, 200, 'a', true, 200); // back at the sender
    const s = t.classStats('voice', 200, 1);
    expect([s.sent, s.delivered, s.lost, s.duplicated]).toEqual([10, 7, 3, 1]);
    expect(s.maxGapMs).toBe(80); // 2 -> 6 delivered at 50 and 130
    expect(s.latencyP50Ms).toBe(10);
    expect(t.anomalyTotal).toBe(1);
    expect(t.lostBetween('voice', 60, 100)).toBe(3);
  });

  it('analyzeTimeline finds detection, reroute and the loss of the switch', () => {
    const s = parseScenario(BASE, 'inline');
    const ev = (atMs: number, site: 'a' | 'b', kind: SiteEvent['kind'], message: string, link?: string): SiteEvent => ({ atMs, site, kind, message, ...(link ? { link } : {}) });
    const events: SiteEvent[] = [
      ev(10_310, 'b', 'linkDown', 'mpls: up -> down (nothing heard for 300 ms)', 'mpls'),
      ev(10_310, 'b', 'flowMoved', 'voice: mpls -> inet (mpls down: nothing heard for 300 ms) [2 flows]'),
      ev(10_320, 'a', 'flowMoved', 'voice: mpls -> inet (mpls down: nothing heard for 300 ms) [2 flows]'),
      ev(21_000, 'a', 'linkUp', 'mpls: down -> up (10 good probes in a row)', 'mpls'),
      ev(21_000, 'a', 'flowMoved', 'voice: inet -> mpls (mpls recovered) [2 flows]'),
    ];
    expect(parseFlowMove(events[1]!.message)).toEqual({ className: 'voice', from: ['mpls'], to: ['inet'], reason: 'mpls down: nothing heard for 300 ms' });
    const steps = analyzeTimeline({
      timeline: s.timeline,
      events,
      classes: ['voice', 'bulk'],
      endMs: s.durationMs,
      activeLinksAt: () => ({ voice: ['mpls'], bulk: ['inet'] }),
      rttMsAt: () => 30,
      lostBetween: (_c, from, to) => Math.round((to - from) / 10),
    });
    expect(steps[0]).toMatchObject({ detectionMs: 310, detectedBy: 'b: mpls: up -> down (nothing heard for 300 ms)' });
    expect(steps[0]!.classes.voice).toMatchObject({ onLink: true, movedMs: 320, from: 'mpls', to: 'inet', lostDuringSwitch: 35 });
    expect(steps[0]!.classes.bulk).toMatchObject({ onLink: false });
    expect(steps[1]!.detectionMs).toBe(Infinity); // the inet fault: nobody reacted
    expect(steps[2]).toMatchObject({ kind: 'restore', detectionMs: 1000 });
    expect(steps[2]!.classes.voice!.movedMs).toBe(1000);

    const report = buildReport({ scenario: s, mode: 'virtual', backend: 'userspace', seed: 1, wallMs: 100, steps, classes: [], edgeEvents: events, notes: [] });
    const json = reportJson(report);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json); // plain JSON: no Infinity, no undefined
    expect((json.events as Array<{ detected: boolean; detectionMs: number | null }>)[1]).toMatchObject({ detected: false, detectionMs: null });
    expect(reportText(report)).toMatch(/detected after never ms/);
  });
});
