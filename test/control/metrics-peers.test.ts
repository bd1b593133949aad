/**
 * Metrics on a hub: per-path series carry a `peer` label, per-peer series (state, transfer,
 * forwarded, sourceNotAllowed, session), the stated series counts per peer and per path, and the
 * switch that leaves per-path series out for fleets.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildDemoWorld } from '../../src/cli/demo.ts';
import { BraidMetrics, PATH_SERIES, PEER_SERIES } from '../../src/control/metrics.ts';
import { parseConfigText } from '../../src/control/config.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';
import { World } from '../../sim/world.ts';
import { makePacket } from '../../sim/packets.ts';
import { parseExposition } from './prom-text.ts';

function hubWorld(): World {
  const w = new World({
    seed: 9,
    sites: [
      { name: 'hub', role: 'hub', links: ['mpls', 'inet'], prefixes: ['10.1.0.0/16'] },
      { name: 's1', links: ['mpls', 'inet'], prefixes: ['10.2.0.0/16'] },
      { name: 's2', links: ['inet'], prefixes: ['10.3.0.0/16'] },
    ],
    connections: [
      { a: 's1.mpls', b: 'hub.mpls', delayMs: 15 },
      { a: 's1.inet', b: 'hub.inet', delayMs: 10 },
      { a: 's2.inet', b: 'hub.inet', delayMs: 12 },
    ],
  });
  w.run(2000);
  // s1 -> s2 through the hub: the hub counts them as forwarded from s1.
  w.every(20, { startMs: 2000, count: 50 }, (i) => w.site('s1').sendTun(makePacket({ src: [10, 2, 0, 2], dst: [10, 3, 0, 2], srcPort: 4000, dstPort: 5000, dscp: 0, sizeBytes: 300, flowId: 1, seq: i })));
  w.run(4000);
  return w;
}

describe('metrics on a hub', () => {
  it('per-path series name their peer; per-peer series mirror the peer snapshot', async () => {
    const w = hubWorld();
    const snap = (): EdgeSnapshot => w.site('hub').edge.snapshot(w.nowMs);
    const metrics = new BraidMetrics(snap);
    metrics.sample();
    const m = parseExposition(await metrics.render());
    const s = snap();
    expect(s.links.length).toBe(3);
    for (const l of s.links) {
      const pl = { link: l.name, peer: l.peer! };
      expect(m.value('braid_path_state', { ...pl, state: l.state })).toBe(1);
      expect(m.value('braid_link_bytes_total', { ...pl, direction: 'tx' })).toBe(l.txBytes);
      expect(m.value('braid_path_srtt_seconds', pl)).toBeCloseTo(l.rttMs! / 1000, 9);
      expect(m.value('braid_path_rtt_seconds_count', pl)).toBe(1);
    }
    // inet is a path to both spokes: one series each.
    expect(m.find('braid_path_srtt_seconds', { link: 'inet' }).map((x) => x.labels.peer).sort()).toEqual(['s1', 's2']);
    for (const p of s.peers!) {
      expect(m.value('braid_peer_state', { peer: p.name, state: p.state })).toBe(1);
      expect(m.find('braid_peer_state', { peer: p.name }).filter((x) => x.value === 1)).toHaveLength(1);
      expect(m.value('braid_peer_paths_up', { peer: p.name })).toBe(p.pathsUp);
      expect(m.value('braid_peer_bytes_total', { peer: p.name, direction: 'rx' })).toBe(p.rxBytes);
      expect(m.value('braid_peer_packets_total', { peer: p.name, direction: 'tx' })).toBe(p.txPackets);
      expect(m.value('braid_peer_forwarded_packets_total', { peer: p.name })).toBe(p.forwardedPackets);
      expect(m.value('braid_peer_source_not_allowed_total', { peer: p.name })).toBe(p.sourceNotAllowed);
      expect(m.value('braid_peer_session_established', { peer: p.name })).toBe(1);
      expect(m.value('braid_peer_session_age_seconds', { peer: p.name })).toBeCloseTo(p.session.ageMs! / 1000, 9);
      expect(m.value('braid_peer_flows', { peer: p.name })).toBe(p.flows);
    }
    expect(m.value('braid_peer_forwarded_packets_total', { peer: 's1' })).toBe(50);
    expect(m.value('braid_peer_bytes_total', { peer: 's2', direction: 'tx' })).toBeGreaterThan(0);

    // The counts the docs state: series per peer (no link label) and per path (both labels).
    const braid = m.samples.filter((x) => x.name.startsWith('braid_'));
    const perPeer = braid.filter((x) => x.labels.peer === 's2' && x.labels.link === undefined);
    expect(perPeer).toHaveLength(PEER_SERIES);
    const perPath = braid.filter((x) => x.labels.peer === 's2' && x.labels.link === 'inet');
    expect(perPath).toHaveLength(PATH_SERIES);
  });

  it('a single-peer edge labels its paths with the one peer', async () => {
    const w = buildDemoWorld(1, 5);
    w.run(2000);
    const s = w.a.edge.snapshot(w.nowMs);
    expect(s.peers).toHaveLength(1);
    const m = parseExposition(await new BraidMetrics(() => w.a.edge.snapshot(w.nowMs)).render());
    expect(m.find('braid_path_state', { link: 'mpls', peer: s.peers![0]!.name })).toHaveLength(4);
  });

  it('pathSeries: false leaves only per-peer series (the fleet switch)', async () => {
    const w = hubWorld();
    const metrics = new BraidMetrics(() => w.site('hub').edge.snapshot(w.nowMs), { pathSeries: false });
    metrics.sample();
    const m = parseExposition(await metrics.render());
    expect(m.samples.filter((x) => x.labels.link !== undefined)).toEqual([]);
    expect(m.find('braid_peer_state', { peer: 's1' })).toHaveLength(3);
  });

  it('promtool check metrics stays clean with peers', async (ctx) => {
    if (spawnSync('promtool', ['--version']).status !== 0) {
      ctx.skip('promtool not installed');
      return;
    }
    const w = hubWorld();
    const metrics = new BraidMetrics(() => w.site('hub').edge.snapshot(w.nowMs));
    metrics.sample();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: await metrics.render(), encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.split('\n').filter((l) => l.startsWith('braid_'))).toEqual([]);
  });
});

describe('metrics.pathSeries in the config', () => {
  it('is optional, a boolean, and reaches the config braid up passes to the exporter', () => {
    const base = readFileSync(new URL('../../profiles/examples/site-a.yaml', import.meta.url), 'utf8').replace(/^metrics:.*(\n[ \t]+.*)*/m, '');
    expect(parseConfigText(base, 'a.yaml').metrics?.pathSeries).toBeUndefined();
    expect(parseConfigText(`${base}\nmetrics:\n  pathSeries: false\n`, 'a.yaml').metrics?.pathSeries).toBe(false);
    expect(() => parseConfigText(`${base}\nmetrics:\n  pathSeries: sometimes\n`, 'a.yaml')).toThrow(/metrics\.pathSeries/);
  });
});

describe('shaper series on a hub', () => {
  it('are per local link (the shaper is shared by every peer), once per link, not per path', async () => {
    const w = hubWorld();
    const snap = (): EdgeSnapshot => {
      const s = w.site('hub').edge.snapshot(w.nowMs);
      s.links = s.links.map((l) => (l.name === 'inet' ? { ...l, shaperRateBps: 80e6, queuedPackets: 2, queueDrops: 5 } : l));
      return s;
    };
    const m = parseExposition(await new BraidMetrics(snap).render());
    expect(m.find('braid_link_shaper_rate_bytes_per_second')).toHaveLength(1);
    expect(m.value('braid_link_shaper_rate_bytes_per_second', { link: 'inet' })).toBe(10e6);
    expect(m.find('braid_link_queue_drops_total')).toHaveLength(1);
    expect(m.find('braid_link_queue_drops_total')[0]!.labels.peer).toBeUndefined();
  });
});
