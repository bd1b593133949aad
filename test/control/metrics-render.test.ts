/**
 * render() writes the per-path and per-peer families and the RTT histogram itself, in slices
 * (a 1,000-spoke hub's scrape held its only thread ~550-800 ms through prom-client): these tests
 * hold its text to prom-client's own (registry.metrics() on the same snapshot), check that
 * concurrent scrapes share one render, that a removed peer's series go, and that sample() reads
 * the light RTT source (buildPathRtts) instead of a snapshot.
 */
import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { buildFleetWorld } from '../../bench/lib/fleet-world.ts';
import { buildDemoWorld } from '../../src/cli/demo.ts';
import { BraidMetrics, RTT_BUCKETS_SECONDS, pathLabels, startMetricsServer, type RttSource } from '../../src/control/metrics.ts';
import { buildPathRtts, buildSnapshot, snapshotSteps } from '../../src/core/snapshot.ts';
import type { EdgeSnapshot, PathRtt } from '../../src/core/types.ts';
import { parseExposition } from './prom-text.ts';

/** The text's families by name (families are apart by a blank line; the first line is `# HELP name ...`). */
function families(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of text.replace(/\n$/, '').split('\n\n')) out.set(/^# HELP (\S+)/.exec(f)![1]!, f);
  return out;
}

/**
 * render() against prom-client's registry.metrics() on the same snapshot: the same families in the
 * same order, and every braid_ family line for line (process_* and nodejs_* are read live twice:
 * CPU time and memory move between the two calls).
 */
async function expectSameAsPromClient(m: BraidMetrics): Promise<string> {
  const ours = await m.render();
  const theirs = await m.registry.metrics();
  const a = families(ours);
  const b = families(theirs);
  expect([...a.keys()]).toEqual([...b.keys()]);
  let braid = 0;
  for (const [name, text] of b) {
    if (!name.startsWith('braid_')) continue;
    expect(a.get(name), name).toBe(text);
    braid++;
  }
  expect(braid).toBeGreaterThan(20);
  return ours;
}

/** A hub of `spokes` spokes after 6 s, its snapshot frozen: both renderings read the very same one. */
function fleetHub(spokes: number): { snap: EdgeSnapshot; rtts: () => PathRtt[] } {
  const w = buildFleetWorld(spokes, 12);
  w.runFor(6000);
  const hub = w.site('hub').edge;
  return { snap: hub.snapshot(w.nowMs), rtts: () => buildPathRtts(hub) };
}

describe('render() writes what prom-client writes', () => {
  it('on a hub with many peers: every per-path and per-peer family and the RTT histogram, line for line', async () => {
    const { snap, rtts } = fleetHub(150);
    expect(snap.links.length).toBe(300);
    // Labels that need escaping, a NaN and a missing value: the formatting corners.
    const s: EdgeSnapshot = {
      ...snap,
      links: snap.links.map((l, i) => (i === 0 ? { ...l, peer: 'we"ird\\peer\nname' } : i === 1 ? { ...l, jitterMs: NaN, rttP99Ms: undefined, txRateBps: NaN } : l)),
      peers: snap.peers!.map((p, i) => (i === 0 ? { ...p, name: 'we"ird\\peer\nname' } : p)),
    };
    let t = 0;
    const rttSource: RttSource = () => ({ nowMs: ++t, paths: rtts() });
    const m = new BraidMetrics(() => s, { rttSource });
    for (let k = 0; k < 3; k++) m.sample();
    const text = await expectSameAsPromClient(m);
    const e = parseExposition(text);
    expect(e.find('braid_path_state', { state: 'up' })).toHaveLength(300);
    expect(e.find('braid_peer_state', { peer: 'we"ird\\peer\nname' })).toHaveLength(3);
    expect(e.find('braid_path_rtt_seconds_count').length).toBeGreaterThan(250);
  });

  it('on a single-peer edge (paths labelled with the one peer)', async () => {
    const w = buildDemoWorld(2, 20);
    w.run(3000);
    const s = w.a.edge.snapshot(w.nowMs);
    expect(s.links[0]!.peer).toBeUndefined();
    const m = new BraidMetrics(() => s);
    m.sample();
    const e = parseExposition(await expectSameAsPromClient(m));
    expect(e.find('braid_path_srtt_seconds', { peer: s.peers![0]!.name })).toHaveLength(s.links.length);
  });

  it('with pathSeries: false (per-peer series only)', async () => {
    const { snap } = fleetHub(20);
    const m = new BraidMetrics(() => snap, { pathSeries: false });
    m.sample();
    const e = parseExposition(await expectSameAsPromClient(m));
    expect(e.samples.filter((x) => x.labels.link !== undefined)).toEqual([]);
    expect(e.find('braid_peer_state')).toHaveLength(60);
  });

  it('when two paths share their labels, prom-client writes those families (a gauge keeps the last value, a counter adds up)', async () => {
    const { snap } = fleetHub(3);
    const dup = { ...snap.links[0]!, txBytes: 1000, flows: 7 };
    const s: EdgeSnapshot = { ...snap, links: [...snap.links, dup] };
    const m = new BraidMetrics(() => s);
    const e = parseExposition(await expectSameAsPromClient(m));
    const pl = pathLabels(s, dup);
    expect(e.value('braid_link_bytes_total', { ...pl, direction: 'tx' })).toBe(snap.links[0]!.txBytes + 1000);
    expect(e.value('braid_link_flows', pl)).toBe(7);
  });

  it('the RTT histogram is the one a prom-client Histogram fed the same RTTs writes', async () => {
    const w = buildDemoWorld(2, 20);
    w.run(3000);
    const s = w.a.edge.snapshot(w.nowMs);
    const peer = s.peers![0]!.name;
    // RTTs on every bucket edge, between edges, above the last one; a down path is not observed.
    const rtts = [0.5, 2, 2.0001, 30, 75, 149.9, 2000, 2500, 1e-3];
    let i = 0;
    const m = new BraidMetrics(() => s, {
      rttSource: () => ({ nowMs: i, paths: [{ link: 'mpls', peer, state: 'up', srttMs: rtts[i] }, { link: 'inet', peer, state: i % 2 ? 'down' : 'degraded', srttMs: rtts[i]! * 2 }] }),
    });
    const reg = new Registry();
    reg.setDefaultLabels({ site: s.site });
    const ref = new Histogram({ name: 'braid_path_rtt_seconds', help: 'Path smoothed RTT, sampled every 1 s while the path is not down.', labelNames: ['link', 'peer'], buckets: RTT_BUCKETS_SECONDS, registers: [reg] });
    for (i = 0; i < rtts.length; i++) {
      m.sample();
      m.sample(); // the same time again: not observed twice
      ref.observe({ link: 'mpls', peer }, rtts[i]! / 1000);
      if (i % 2 === 0) ref.observe({ link: 'inet', peer }, (rtts[i]! * 2) / 1000);
    }
    expect(families(await m.render()).get('braid_path_rtt_seconds')).toBe(await reg.getSingleMetricAsString('braid_path_rtt_seconds'));
  });
});

describe('scrapes and samples', () => {
  it('the server writes render()\'s text family by family (chunked), and HEAD gets no body', async () => {
    const { snap } = fleetHub(40);
    const server = await startMetricsServer('127.0.0.1:0', () => snap, { sampleIntervalMs: 3_600_000 });
    try {
      const r = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const served = await r.text();
      expect(served.endsWith('}\n') || /\d\n$/.test(served)).toBe(true);
      const a = families(served);
      const b = families(await server.metrics.render());
      expect([...a.keys()]).toEqual([...b.keys()]);
      for (const [name, text] of b) if (name.startsWith('braid_')) expect(a.get(name), name).toBe(text);
      const head = await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
    } finally {
      await server.close();
    }
  });

  it('scrapes that arrive during a render share it: one snapshot, one text', async () => {
    const { snap } = fleetHub(20);
    let snapshots = 0;
    const m = new BraidMetrics(() => {
      snapshots++;
      return snap;
    });
    snapshots = 0;
    const [a, b, c] = await Promise.all([m.render(), m.render(), m.render()]);
    expect(snapshots).toBe(1);
    expect(b).toBe(a);
    expect(c).toBe(a);
    // Once it is done, the next scrape renders afresh.
    await m.render();
    expect(snapshots).toBe(2);
  });

  it("a removed peer's series disappear, its RTT histogram included", async () => {
    const w = buildFleetWorld(3, 12);
    w.runFor(6000);
    const hub = w.site('hub').edge;
    let gone: string | undefined;
    const snap = (): EdgeSnapshot => {
      const s = hub.snapshot(w.nowMs);
      return { ...s, links: s.links.filter((l) => l.peer !== gone), peers: s.peers!.filter((p) => p.name !== gone) };
    };
    const m = new BraidMetrics(snap, { rttSource: () => ({ nowMs: w.nowMs, paths: buildPathRtts(hub).filter((p) => p.peer !== gone) }) });
    m.sample();
    let e = parseExposition(await m.render());
    expect(e.samples.filter((x) => x.labels.peer === 's2').length).toBeGreaterThan(100);
    gone = 's2';
    w.runFor(1000);
    m.sample();
    e = parseExposition(await m.render());
    expect(e.samples.filter((x) => x.labels.peer === 's2')).toEqual([]);
    expect(e.find('braid_path_rtt_seconds_count', { peer: 's1' })).toHaveLength(2);
    expect(e.value('braid_path_rtt_seconds_count', { peer: 's1', link: 'inet' })).toBe(2);
  });

  it('a scrape takes its snapshot in steps (snapshotSteps): the same text as from one snapshot, each peer read at its step\'s time', async () => {
    const w = buildFleetWorld(30, 12);
    w.runFor(6000);
    const hub = w.site('hub').edge;
    // Stepped with no new time, it is buildSnapshot's snapshot.
    const whole = buildSnapshot(hub, w.nowMs);
    let steps = 0;
    const it = snapshotSteps(hub, w.nowMs);
    let r = it.next();
    for (; !r.done; r = it.next()) steps++;
    expect(steps).toBe(60);
    expect(r.value).toEqual(whole);
    // Given a later time at each step, the later peers' paths are read at it.
    const later = snapshotSteps(hub, w.nowMs);
    let rl = later.next();
    for (let k = 1; !rl.done; k++) rl = later.next(w.nowMs + k);
    const byPeer = new Map(whole.links.map((l) => [`${l.name}/${l.peer}`, l.lastHeardAgoMs!]));
    const s2 = rl.value.links.filter((l) => l.peer === 's2');
    expect(s2.map((l) => l.lastHeardAgoMs! - byPeer.get(`${l.name}/${l.peer}`)!)).toEqual([1, 1]);
    // render() runs the steps: the same braid_ text as from the whole snapshot.
    const stepped = new BraidMetrics(() => whole, { snapshotSteps: () => snapshotSteps(hub, w.nowMs) });
    const plain = new BraidMetrics(() => whole);
    const a = families(await stepped.render());
    const b = families(await plain.render());
    for (const [name, text] of b) if (name.startsWith('braid_')) expect(a.get(name), name).toBe(text);
  });

  it('sample() reads the light RTT source, not a snapshot, and observes what it lists', async () => {
    const w = buildFleetWorld(4, 12);
    w.runFor(6000);
    const hub = w.site('hub').edge;
    let snapshots = 0;
    const m = new BraidMetrics(
      () => {
        snapshots++;
        return hub.snapshot(w.nowMs);
      },
      { rttSource: () => ({ nowMs: w.nowMs, paths: buildPathRtts(hub) }) },
    );
    snapshots = 0;
    const seen: number[][] = [];
    for (let k = 0; k < 3; k++) {
      w.runFor(1000);
      m.sample();
      seen.push(buildPathRtts(hub).map((p) => p.srttMs!));
    }
    expect(snapshots).toBe(0);
    const e = parseExposition(await m.render());
    const s = hub.snapshot(w.nowMs);
    // The source lists the snapshot's paths with the snapshot's labels and RTTs.
    expect(buildPathRtts(hub).map((p) => [p.link, p.peer, p.state, p.srttMs])).toEqual(s.links.map((l) => [l.name, l.peer, l.state, l.rttMs]));
    buildPathRtts(hub).forEach((p, i) => {
      const labels = { link: p.link, peer: p.peer };
      expect(e.value('braid_path_rtt_seconds_count', labels)).toBe(3);
      expect(e.value('braid_path_rtt_seconds_sum', labels)).toBeCloseTo((seen[0]![i]! + seen[1]![i]! + seen[2]![i]!) / 1000, 12);
    });
  });
});
