/**
 * Scenarios with sites (a hub and branches): the schema resolves sites, connections, traffic
 * between any two sites, steps on a branch link (one connection) or a hub link (every connection
 * to it), scoped expectations; the shipped hub-and-branches and branch-to-branch run in virtual
 * time and their per-site figures say what the issue asks (only branch 1 moves; branch-to-branch
 * voice gap under 400 ms).
 */
import { describe, expect, it } from 'vitest';
import { BraidError } from '../../../src/core/errors.ts';
import { formatNetemSpec } from '../../../sim/netem/spec.ts';
import { evaluateExpectations, parseExpectation } from '../../../sim/scenario/expect.ts';
import { analyzeTimeline, type SiteEvent } from '../../../sim/scenario/metrics.ts';
import { reportJson, reportText } from '../../../sim/scenario/report.ts';
import { runVirtual } from '../../../sim/scenario/run-virtual.ts';
import { loadScenario, parseScenario, ScenarioError } from '../../../sim/scenario/schema.ts';
import { planFlows } from '../../../sim/scenario/traffic.ts';
import { nativeAeadFactory } from '../../../src/io/native-aead.ts';

const AEAD = nativeAeadFactory()?.factory;
const WITH_AEAD = AEAD ? { aead: AEAD } : {};

const SITES = `
name: t
description: a hub and two branches
durationS: 30
sites:
  - { name: hub, role: hub, links: [{ name: mpls }, { name: inet, costTier: overflow }] }
  - name: b1
    links:
      - { name: mpls, profile: mpls, to: hub.mpls }
      - { name: lte, netem: { up: "delay 30ms", down: "delay 25ms" }, to: hub.inet, nat: true }
  - { name: b2, links: [{ name: inet, profile: cable, to: hub.inet }] }
traffic:
  - { class: voice, kind: voice, calls: 2, from: b1, to: b2 }
  - { class: bulk, kind: bulk, rateMbps: 2, from: b2, to: hub }
timeline:
  - { at: 10s, link: b1.mpls, set: "loss 100%" }
  - { at: 12s, link: hub.inet, add: "loss 5%", direction: up }
  - { at: 20s, link: hub.inet, restore: true }
expect: ["voice.max_gap_ms < 400", "b2.voice.moves == 0", "b1>b2.voice.max_gap_ms < 400", "hub.bulk.lost < 10"]
`;

function errorOf(text: string): string {
  try {
    parseScenario(text, 't.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    return (e as BraidError).oneLine();
  }
  throw new Error('expected a ScenarioError');
}

describe('scenario files with sites', () => {
  it('resolves sites, their connections, prefixes and traffic between sites', () => {
    const s = parseScenario(SITES, 't.yaml');
    expect(s.sites!.map((x) => [x.name, x.role, x.prefix])).toEqual([
      ['hub', 'hub', '10.1.0.0/16'],
      ['b1', 'spoke', '10.2.0.0/16'],
      ['b2', 'spoke', '10.3.0.0/16'],
    ]);
    expect(s.connections!.map((c) => [c.name, `${c.from.site}.${c.from.link}`, `${c.to.site}.${c.to.link}`, c.costTier])).toEqual([
      ['b1.mpls', 'b1.mpls', 'hub.mpls', 'primary'],
      ['b1.lte', 'b1.lte', 'hub.inet', 'primary'],
      ['b2.inet', 'b2.inet', 'hub.inet', 'overflow'],
    ]);
    // The links of the report are the connections.
    expect(s.links.map((l) => l.name)).toEqual(['b1.mpls', 'b1.lte', 'b2.inet']);
    expect(s.sites![1]!.links.map((l) => [l.name, l.nat, l.bandwidthBps])).toEqual([
      ['mpls', false, 20e6],
      ['lte', true, undefined],
    ]);
    expect(s.sites![0]!.links.map((l) => [l.name, l.costTier, l.to])).toEqual([
      ['mpls', 'primary', undefined],
      ['inet', 'overflow', undefined],
    ]);
    const flows = planFlows(s);
    expect(flows.filter((f) => f.className === 'voice').map((f) => `${f.origin}>${f.dest}`)).toEqual(['b1>b2', 'b1>b2', 'b2>b1', 'b2>b1']);
    expect(flows.filter((f) => f.className === 'bulk').map((f) => `${f.origin}>${f.dest}`)).toEqual(['b2>hub']);
  });

  it('a branch link step changes its one connection; a hub link step every connection to it, "up" being what the hub sends', () => {
    const s = parseScenario(SITES, 't.yaml');
    const [blackout, hubLoss, hubRestore] = s.timeline;
    expect(blackout!.connections!.map((c) => [c.name, c.up, formatNetemSpec(c.result.up!), formatNetemSpec(c.result.down!)])).toEqual([['b1.mpls', 'ab', 'loss 100%', 'loss 100%']]);
    // hub.inet up = what the hub sends = the "ba" (down) direction of each branch connection.
    expect(hubLoss!.connections!.map((c) => [c.name, c.up, c.result.up && formatNetemSpec(c.result.up), c.result.down])).toEqual([
      ['b1.lte', 'ba', 'delay 25ms loss 5%', undefined],
      ['b2.inet', 'ba', 'limit 10000 delay 10ms 2ms distribution normal loss 5% rate 300mbit', undefined],
    ]);
    // Restore puts each connection back to its own spec, in the hub's terms (up = their down).
    expect(hubRestore!.connections!.map((c) => [c.name, formatNetemSpec(c.result.up!), formatNetemSpec(c.result.down!)])).toEqual([
      ['b1.lte', 'delay 25ms', 'delay 30ms'],
      ['b2.inet', 'limit 10000 delay 10ms 2ms distribution normal loss 0.2% rate 300mbit', 'delay 10ms 2ms distribution normal loss 0.2% rate 20mbit'],
    ]);
  });

  it('names the field and the fix in one line', () => {
    expect(errorOf(SITES.replace('from: b1, to: b2', 'from: b1, to: b9'))).toMatch(/traffic\[0\]\.to: no site named "b9"; fix: use one of hub, b1, b2/);
    expect(errorOf(SITES.replace('from: b1, to: b2', 'from: b1'))).toMatch(/traffic\[0\]\.to: missing: a scenario with sites needs both ends/);
    expect(errorOf(SITES.replace('from: b1, to: b2', 'from: b1, to: b1'))).toMatch(/traffic\[0\]\.to: is the same site as from/);
    expect(errorOf(SITES.replace('to: hub.mpls', 'to: hub.mlps'))).toMatch(/sites\[1\]\.links\[0\]\.to: site hub has no link "mlps"; fix: use one of hub\.mpls, hub\.inet/);
    expect(errorOf(SITES.replace('to: hub.mpls', 'to: hub'))).toMatch(/sites\[1\]\.links\[0\]\.to: "hub" is not SITE\.LINK/);
    expect(errorOf(SITES.replace('link: b1.mpls, set', 'link: mpls, set'))).toMatch(/timeline\[0\]\.link: "mpls" is not SITE\.LINK of this scenario; fix: use one of hub\.mpls, hub\.inet, b1\.mpls/);
    expect(errorOf(SITES.replace('{ name: mpls }, { name: inet', '{ name: mpls, profile: mpls }, { name: inet'))).toMatch(/sites\[0\]\.links\[0\]: has an impairment but no to:/);
    expect(errorOf(SITES.replace('{ name: mpls }, { name: inet', '{ name: mpls }, { name: dsl }, { name: inet'))).toMatch(/hub\.dsl connects to nothing/);
    expect(errorOf(SITES.replace('"b2.voice.moves == 0"', '"b9.voice.moves == 0"'))).toMatch(/expect\[1\]: "b9.voice.moves == 0": no site named "b9"/);
    expect(errorOf(SITES.replace('durationS: 30', 'durationS: 30\nlinks: [{ name: mpls, profile: mpls }]'))).toMatch(/give links \(two sites\) or sites, not both/);
    expect(errorOf(SITES.replace('{ name: b2, links', '{ name: b2, colour: red, links'))).toMatch(/sites\[2\]\.colour: unknown field; fix: .*\(fields here: name, role, links\)/);
  });

  it('scoped expectations: SITE.CLASS.METRIC and FROM>TO.CLASS.METRIC, only in scenarios with sites', () => {
    expect(parseExpectation('b2.voice.moves == 0', ['voice'], ['hub', 'b2'])).toMatchObject({ scope: { site: 'b2' }, subject: 'voice', metric: 'moves', op: '==', value: 0 });
    expect(parseExpectation('b1>b2.voice.max_gap_ms < 400', ['voice'], ['b1', 'b2'])).toMatchObject({ scope: { from: 'b1', to: 'b2' }, subject: 'voice', metric: 'max_gap_ms', op: '<', value: 400 });
    expect(parseExpectation('voice.max_gap_ms>400', ['voice'], ['b1'])).toMatchObject({ subject: 'voice', op: '>', value: 400 });
    expect(() => parseExpectation('b2.voice.moves == 0', ['voice'])).toThrow(/this scenario has no sites/);
    expect(() => parseExpectation('b2.events.count == 0', ['voice'], ['b2'])).toThrow(/events are not scoped/);
    const results = evaluateExpectations([parseExpectation('b2.voice.moves == 0', ['voice'], ['b2']), parseExpectation('voice.moves == 0', ['voice'], ['b2'])], (_s, _m, scope) =>
      scope ? 0 : 3,
    );
    expect(results.map((r) => r.pass)).toEqual([true, false]);
  });

  it('analyzeTimeline with sites: detection and reroute only from the ends of the faulted connections, by site and peer', () => {
    const s = parseScenario(SITES, 't.yaml');
    const ev = (site: string, atMs: number, fields: Partial<SiteEvent>): SiteEvent => ({ site, atMs, kind: 'flowMoved', message: '', ...fields });
    const events: SiteEvent[] = [
      // b2's own inet path hiccups: not about b1.mpls, must not count as detection.
      ev('b2', 10_050, { kind: 'pathState', link: 'inet', peer: 'hub', message: 'inet: up -> down (x)' }),
      // The hub's mpls path toward b1 goes down; then b1 and the hub move voice.
      ev('hub', 10_300, { kind: 'pathState', link: 'mpls', peer: 'b1', message: 'b1 mpls: up -> down (nothing heard)' }),
      ev('b1', 10_310, { class: 'voice', peer: 'hub', from: 'mpls', to: 'lte', reason: 'mpls down: nothing heard', flows: 2 }),
      ev('hub', 10_330, { class: 'voice', peer: 'b1', from: 'mpls', to: 'inet', reason: 'mpls down: nothing heard', flows: 2 }),
      // The hub moves voice toward b2 off mpls: another end, not the fault's.
      ev('hub', 10_200, { class: 'voice', peer: 'b2', from: 'mpls', to: 'inet', reason: 'mpls down', flows: 1 }),
    ];
    const [step] = analyzeTimeline({
      timeline: s.timeline.slice(0, 1),
      events,
      classes: ['voice'],
      endMs: 30_000,
      activeLinksAt: () => undefined,
      endsOf: () => [
        { site: 'b1', link: 'mpls', peer: 'hub' },
        { site: 'hub', link: 'mpls', peer: 'b1' },
      ],
      activeLinksAtEnd: () => ({ voice: ['mpls'] }),
      rttMsAt: () => 30,
      lostBetween: () => 0,
    });
    expect(step!.detectionMs).toBe(300);
    expect(step!.detectedBy).toBe('hub: b1 mpls: up -> down (nothing heard)');
    expect(step!.classes.voice!.movedMs).toBe(330);
    expect(step!.classes.voice!.ends).toEqual([
      { site: 'b1', peer: 'hub', movedMs: 310 },
      { site: 'hub', peer: 'b1', movedMs: 330 },
    ]);
  });
});

describe('shipped scenarios with sites, in virtual time', () => {
  it('hub-and-branches: branch 1 moves off MPLS within 400 ms; branches 2 and 3 see no gap and no move', () => {
    const { report, world } = runVirtual(loadScenario('hub-and-branches'), WITH_AEAD);
    console.log(reportText(report));
    expect(report.expectations.filter((e) => !e.pass).map((e) => `${e.text} (actual ${e.actual})`)).toEqual([]);
    const pairs = reportJson(report)['pairs'] as { from: string; to: string; class: string; maxGapMs: number; faultMoves: number; rerouteMs: number | null }[];
    const b1 = pairs.filter((p) => p.from === 'b1' || p.to === 'b1');
    const others = pairs.filter((p) => p.from !== 'b1' && p.to !== 'b1');
    // Branch 1 (both directions of its voice and business) moved, fast; nobody else moved while
    // the fault lasted (LTE's own loss bursts may move a flow some other time) or stalled.
    expect(b1.filter((p) => p.rerouteMs !== null).length).toBeGreaterThan(0);
    for (const p of b1) if (p.rerouteMs !== null) expect(p.rerouteMs, `${p.from}>${p.to} ${p.class}`).toBeLessThan(400);
    expect(others.map((p) => p.faultMoves)).toEqual(others.map(() => 0));
    for (const p of others) expect(p.maxGapMs, `${p.from}>${p.to} ${p.class}`).toBeLessThan(150);
    // The hub never knew an address of a branch: every path it uses was learned.
    expect(world.site('hub').peerConfigs.every((p) => p.endpoints === undefined)).toBe(true);
    expect(report.notes.filter((n) => /misdelivered|no connection leads/.test(n))).toEqual([]);
  }, 120_000);

  it('branch-to-branch: voice between two branches through the hub keeps its gap under 400 ms when the hub MPLS port goes dark', () => {
    const { report } = runVirtual(loadScenario('branch-to-branch'), WITH_AEAD);
    console.log(reportText(report));
    expect(report.expectations.filter((e) => !e.pass).map((e) => `${e.text} (actual ${e.actual})`)).toEqual([]);
    const voice = report.pairs!.filter((p) => p.className === 'voice');
    expect(voice.map((p) => `${p.from}>${p.to}`).sort()).toEqual(['b1>b2', 'b2>b1']);
    for (const p of voice) {
      // Both legs ran on MPLS (the fault hit this pair) and the gap stayed under 400 ms.
      expect(p.rerouteMs, `${p.from}>${p.to}`).toBeLessThan(400);
      expect(p.maxGapMs, `${p.from}>${p.to}`).toBeLessThan(400);
      expect(p.delivered).toBeGreaterThan(0.97 * p.sent!);
    }
  }, 120_000);
});
