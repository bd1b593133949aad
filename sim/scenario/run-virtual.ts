/**
 * Runs a scenario in virtual time: two core Edges in one World, each link direction a userspace
 * netem engine, the traffic mix as tagged inner packets, the timeline as scheduled spec changes.
 *
 * Stages: build the World from the scenario's links and policies -> schedule every flow's packets
 * (send times recorded by seq) -> schedule, per timeline step, a snapshot of which links each
 * class uses and then the spec change -> run to the end plus a drain period -> measure
 * (TrafficTracker, analyzeTimeline) -> report with expectations.
 *
 * Deterministic: one seed (the --seed option, else the scenario's, else 1) drives everything.
 */
import { performance } from 'node:perf_hooks';
import type { ClassName } from '../../src/core/steer/classes.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';
import { formatNetemSpec } from '../netem/spec.ts';
import { readPacketTag } from '../packets.ts';
import { PacketFactory } from './fast-packet.ts';
import { World } from '../world.ts';
import { analyzeTimeline, TrafficTracker, type SiteEvent, type SiteName } from './metrics.ts';
import { buildReport, edgeClassNumbers, type ScenarioReport } from './report.ts';
import type { Scenario } from './schema.ts';
import { classActivity, classesOf, packetSpecOf, planFlows } from './traffic.ts';
import { nativeAeadFactory } from '../../src/io/native-aead.ts';

// The simulator is shell-side: it gives its Edges the addon's AEAD (OpenSSL contexts kept per
// key, the same bytes as node:crypto), ~3x faster in virtual time (flapping-link: 29x -> 93x
// real time before the slab buffers; node:crypto when the addon is not built).
const nativeAead = nativeAeadFactory();

export interface VirtualRunOptions {
  seed?: number;
  /** Called every `progressEveryMs` of virtual time with how far the run is. */
  onProgress?: (doneMs: number, totalMs: number) => void;
  progressEveryMs?: number;
  /**
   * Run the overlay unencrypted: speed comparisons only (it separates the simulator's own cost
   * from the Edge's per-packet AEAD). Scenario reports are made with encryption on.
   */
  insecurePlaintext?: boolean;
}

/** Virtual runs so far in this process (the first one pays for the JIT's warm-up). */
let virtualRunsInProcess = 0;

/** After the traffic stops, the world runs this much longer so packets in flight land. */
export const DRAIN_MS = 3000;

export interface VirtualRun {
  report: ScenarioReport;
  world: World;
}

export function runVirtual(scenario: Scenario, options: VirtualRunOptions = {}): VirtualRun {
  const seed = options.seed ?? scenario.seed ?? 1;
  const wallStart = performance.now();
  const world = new World({
    seed,
    recordDeliveries: false,
    ...(options.insecurePlaintext ? { insecurePlaintext: true } : {}),
    ...(nativeAead ? { aead: nativeAead.factory } : {}),
    edge: { policies: scenario.policies },
    links: scenario.links.map((l) => ({
      name: l.name,
      abNetem: formatNetemSpec(l.up),
      baNetem: formatNetemSpec(l.down),
      costTier: l.costTier,
      ...(l.bandwidthBps ? { bandwidthBps: l.bandwidthBps.up } : {}),
    })),
  });
  const flows = planFlows(scenario);
  const tracker = new TrafficTracker(flows);
  const factories = new Map<number, PacketFactory>(flows.map((f) => [f.flowId, new PacketFactory(packetSpecOf(f))]));

  // Traffic: each flow ticks at its interval; the packet's send time is recorded by seq.
  for (const f of flows) {
    const factory = factories.get(f.flowId)!;
    const site = f.origin === 'a' ? world.a : world.b;
    world.every(f.intervalMs, { startMs: f.firstMs, untilMs: f.stopMs }, (seq) => {
      tracker.recordSend(f.flowId, seq, world.nowMs);
      site.sendTun(factory.makeShared(seq));
    });
  }
  const deliver = (site: SiteName) => (bytes: Uint8Array, atMs: number): void => {
    const tag = readPacketTag(bytes);
    if (!tag) return;
    const intact = factories.get(tag.flowId)?.matches(bytes, tag.seq) ?? false;
    tracker.recordDelivery(tag.flowId, tag.seq, atMs, site, intact, bytes.length);
  };
  world.a.onDeliver = deliver('a');
  world.b.onDeliver = deliver('b');

  // Timeline: snapshot first (same time, scheduled earlier, so it runs first), then the change.
  const before: { a: EdgeSnapshot; b: EdgeSnapshot }[] = [];
  scenario.timeline.forEach((step, i) => {
    world.at(step.atMs, () => {
      before[i] = { a: world.a.edge.snapshot(world.nowMs), b: world.b.edge.snapshot(world.nowMs) };
    });
    for (const d of ['up', 'down'] as const) {
      const spec = step.result[d];
      if (spec) world.setNetemAt(step.atMs, step.link, formatNetemSpec(spec), d === 'up' ? 'ab' : 'ba');
    }
  });

  const endMs = scenario.durationMs + DRAIN_MS;
  const every = options.progressEveryMs ?? 10_000;
  for (let t = 0; t < endMs; ) {
    t = Math.min(endMs, t + every);
    world.run(t);
    options.onProgress?.(Math.min(t, scenario.durationMs), scenario.durationMs);
  }
  const wallMs = performance.now() - wallStart;

  const events: SiteEvent[] = [
    ...world.a.events.map((e) => ({ ...e, site: 'a' as const })),
    ...world.b.events.map((e) => ({ ...e, site: 'b' as const })),
  ].sort((x, y) => x.atMs - y.atMs);
  const classes = classesOf(scenario);
  const steps = analyzeTimeline({
    timeline: scenario.timeline,
    events,
    classes,
    endMs: scenario.durationMs,
    activeLinksAt: (i, site) => activeLinks(before[i]?.[site]),
    rttMsAt: (i, link) => before[i]?.a.links.find((l) => l.name === link)?.rttMs,
    lostBetween: (c, from, to) => tracker.lostBetween(c, from, to),
  });
  const finalSnaps = [world.a.edge.snapshot(world.nowMs), world.b.edge.snapshot(world.nowMs)];
  const sentByClass = new Map<string, number>();
  const stats = classes.map((c) => {
    const { activeMs, directions } = classActivity(scenario, c);
    const s = tracker.classStats(c, activeMs, directions);
    sentByClass.set(c, s.sent ?? 0);
    return s;
  });
  for (const s of stats) Object.assign(s, edgeClassNumbers(finalSnaps, s.className, sentByClass));
  const notes: string[] = [];
  if (!finalSnaps.some((s) => s.classes.some((c) => 'fecRecovered' in c))) notes.push('recovered: these edges report no per-class FEC counters (0 shown)');
  if (tracker.anomalyTotal > 0) notes.push(`${tracker.anomalyTotal} misdelivered packets, e.g. ${tracker.anomalies[0]}`);
  if (virtualRunsInProcess++ === 0) {
    // A fresh process runs its first scenario partly in V8's interpreter: flapping-link (60 s)
    // takes ~1.15 s cold and 0.28-0.33 s once the JIT has warmed up (test/sim/scenario/speed.test.ts).
    notes.push('speed: the first run in a fresh process includes the JIT warm-up (~0.6-0.9 s); warm runs of a 60 s, 3-link scenario go 180-220x real time');
  }
  const report = buildReport({ scenario, mode: 'virtual', backend: 'userspace', seed, wallMs, steps, classes: stats, edgeEvents: events, notes });
  return { report, world };
}

export function activeLinks(snap: EdgeSnapshot | undefined): Partial<Record<ClassName, string[]>> | undefined {
  if (!snap) return undefined;
  const out: Partial<Record<ClassName, string[]>> = {};
  for (const c of snap.classes) out[c.name as ClassName] = c.activeLinks;
  return out;
}
