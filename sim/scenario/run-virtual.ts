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
import { World, type Site } from '../world.ts';
import type { Endpoint } from '../../src/core/endpoint.ts';
import { analyzeTimeline, eventPeer, faultWindows, flowMoveOf, flowsMoved, movesIn, TrafficTracker, type FlowInfo, type SiteEvent, type SiteName, type StepEnd, type StepResult } from './metrics.ts';
import { buildReport, edgeClassNumbers, type ClassReport, type PairReport, type ScenarioReport } from './report.ts';
import type { ExpectScope } from './expect.ts';
import type { Scenario, ScenarioStep } from './schema.ts';
import { classActivity, classesOf, packetSpecOf, planFlows, siteHosts } from './traffic.ts';
import type { AeadFactory } from '../../src/core/crypto/transport.ts';

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
  /**
   * The data AEAD the engines seal and open with (sim/ imports nothing from src/io: the shell
   * injects it). `braid sim run` and the tests pass the addon's (src/io/native-aead.ts: OpenSSL
   * contexts kept per key, the same bytes as node:crypto, ~3x faster in virtual time); default
   * the core's node:crypto one.
   */
  aead?: AeadFactory;
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
  if (scenario.sites) return runVirtualSites(scenario, options);
  const seed = options.seed ?? scenario.seed ?? 1;
  const wallStart = performance.now();
  const world = new World({
    seed,
    recordDeliveries: false,
    ...(options.insecurePlaintext ? { insecurePlaintext: true } : {}),
    ...(options.aead ? { aead: options.aead } : {}),
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
    if (step.health) scheduleHealth(world, world.a, step.atMs, step.health);
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
    // takes ~1.15 s cold and 0.28-0.33 s once the JIT has warmed up (bench/sim-speed.ts).
    notes.push('speed: the first run in a fresh process includes the JIT warm-up (~0.6-0.9 s); warm runs of a 60 s, 3-link scenario go 180-220x real time');
  }
  const report = buildReport({ scenario, mode: 'virtual', backend: 'userspace', seed, wallMs, steps, classes: stats, edgeEvents: events, notes });
  return { report, world };
}

/**
 * A health step: at `atMs` the site's engine hears what its health prober (io/health.ts in
 * `braid up`) would say about the link's external target.
 */
function scheduleHealth(world: World, site: Site<Endpoint>, atMs: number, health: NonNullable<ScenarioStep['health']>): void {
  const linkId = site.linkNames.indexOf(health.link);
  if (linkId < 0) throw new Error(`health step: site ${site.name} has no link "${health.link}" (have: ${site.linkNames.join(', ')})`);
  world.at(atMs, () => {
    site.edge.setLinkHealth(world.nowMs, linkId, health.reachable, health.target);
    world.drain(site);
  });
}

export function activeLinks(snap: EdgeSnapshot | undefined): Partial<Record<ClassName, string[]>> | undefined {
  if (!snap) return undefined;
  const out: Partial<Record<ClassName, string[]>> = {};
  for (const c of snap.classes) out[c.name as ClassName] = c.activeLinks;
  return out;
}

// ---- many sites ---------------------------------------------------------------------------

/** A site with a link behind NAT keeps its mappings open like a WireGuard peer would (25 s). */
const NAT_KEEPALIVE_MS = 25_000;

/**
 * The many-site run: one Endpoint per site in an N-site World, connections from the scenario's
 * `to:` links, traffic between any two sites, timeline steps on connections (a hub link's step on
 * every connection to it), and figures per class and per site pair.
 */
function runVirtualSites(scenario: Scenario, options: VirtualRunOptions): VirtualRun {
  const seed = options.seed ?? scenario.seed ?? 1;
  const wallStart = performance.now();
  const sites = scenario.sites!;
  const connections = scenario.connections!;
  const world = new World({
    seed,
    recordDeliveries: false,
    ...(options.insecurePlaintext ? { insecurePlaintext: true } : {}),
    ...(options.aead ? { aead: options.aead } : {}),
    endpoint: { policies: scenario.policies },
    sites: sites.map((site) => ({
      name: site.name,
      role: site.role,
      prefixes: [site.prefix],
      links: site.links.map((l) => ({ name: l.name, costTier: l.costTier, ...(l.bandwidthBps ? { bandwidthBps: l.bandwidthBps } : {}), ...(l.nat ? { nat: true } : {}) })),
      ...(site.links.some((l) => l.nat) ? { persistentKeepaliveMs: NAT_KEEPALIVE_MS } : {}),
    })),
    connections: connections.map((c) => ({
      name: c.name,
      a: `${c.from.site}.${c.from.link}`,
      b: `${c.to.site}.${c.to.link}`,
      abNetem: formatNetemSpec(c.up),
      baNetem: formatNetemSpec(c.down),
    })),
  });
  const hosts = siteHosts(scenario);
  const flows = planFlows(scenario);
  const tracker = new TrafficTracker(flows);
  const factories = new Map<number, PacketFactory>(flows.map((f) => [f.flowId, new PacketFactory(packetSpecOf(f, hosts))]));
  for (const f of flows) {
    const factory = factories.get(f.flowId)!;
    const site = world.site(f.origin);
    world.every(f.intervalMs, { startMs: f.firstMs, untilMs: f.stopMs }, (seq) => {
      tracker.recordSend(f.flowId, seq, world.nowMs);
      site.sendTun(factory.makeShared(seq));
    });
  }
  for (const site of world.sites) {
    site.onDeliver = (bytes, atMs) => {
      const tag = readPacketTag(bytes);
      if (!tag) return;
      const intact = factories.get(tag.flowId)?.matches(bytes, tag.seq) ?? false;
      tracker.recordDelivery(tag.flowId, tag.seq, atMs, site.name, intact, bytes.length);
    };
  }

  const before: Map<string, EdgeSnapshot>[] = [];
  scenario.timeline.forEach((step, i) => {
    world.at(step.atMs, () => {
      before[i] = new Map(world.sites.map((x) => [x.name, x.edge.snapshot(world.nowMs)]));
    });
    if (step.health) scheduleHealth(world, world.site(step.health.site), step.atMs, step.health);
    for (const c of step.connections ?? []) {
      for (const d of ['up', 'down'] as const) {
        const spec = c.result[d];
        if (!spec) continue;
        const dir = d === 'up' ? c.up : c.up === 'ab' ? 'ba' : 'ab';
        world.setNetemAt(step.atMs, c.name, formatNetemSpec(spec), dir);
      }
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

  const events: SiteEvent[] = world.sites.flatMap((x) => x.events.map((e) => ({ ...e, site: x.name }))).sort((x, y) => x.atMs - y.atMs);
  const classes = classesOf(scenario);
  /** Both ends of each connection a step changes: the link at each site, toward the other site. */
  const endsOf = (i: number): StepEnd[] =>
    (scenario.timeline[i]!.connections ?? []).flatMap((c) => {
      const ends = world.connectionEnds(c.name);
      const [aSite, aLink] = ends.a.split('.') as [string, string];
      const [bSite, bLink] = ends.b.split('.') as [string, string];
      // The core names a path by its local link, "local>far" when the far link is named otherwise.
      const path = (local: string, far: string): string => (local === far ? local : `${local}>${far}`);
      return [
        { site: aSite, link: path(aLink, bLink), peer: bSite },
        { site: bSite, link: path(bLink, aLink), peer: aSite },
      ];
    });
  const steps = analyzeTimeline({
    timeline: scenario.timeline,
    events,
    classes,
    endMs: scenario.durationMs,
    activeLinksAt: () => undefined,
    endsOf,
    activeLinksAtEnd: (i, end) => activeLinksToward(before[i]?.get(end.site!), end.peer),
    rttMsAt: (i) => {
      const end = endsOf(i)[0];
      return end ? before[i]?.get(end.site!)?.links.find((l) => l.name === end.link || l.name === end.link.split('>')[0])?.rttMs : undefined;
    },
    lostBetween: (c, from, to) => tracker.lostBetween(c, from, to),
  });
  const finalSnaps = world.sites.map((x) => x.edge.snapshot(world.nowMs));
  const sentByClass = new Map<string, number>();
  const stats = classes.map((c) => {
    const { activeMs, directions } = classActivity(scenario, c);
    const st = tracker.classStats(c, activeMs, directions);
    sentByClass.set(c, st.sent ?? 0);
    return st;
  });
  for (const st of stats) Object.assign(st, edgeClassNumbers(finalSnaps, st.className, sentByClass));

  const hubs = new Set(sites.filter((x) => x.role === 'hub').map((x) => x.name));
  const scoped = (c: (typeof classes)[number], scope: ExpectScope): ClassReport | undefined => {
    const only = (f: FlowInfo): boolean => (scope.site !== undefined ? f.origin === scope.site || f.dest === scope.site : f.origin === scope.from && f.dest === scope.to);
    if (!flows.some((f) => f.className === c && only(f))) return undefined;
    const { activeMs } = classActivity(scenario, c);
    const st = tracker.classStats(c, activeMs, 1, only);
    // Moves: decisions at the scope's site(s) about this class, and other sites' decisions toward them.
    const movesHere = (e: SiteEvent): boolean => {
      const peer = eventPeer(e);
      if (scope.site !== undefined) return e.site === scope.site || peer === scope.site;
      if (e.site === scope.from) return peer === undefined || peer === scope.to || hubs.has(peer);
      return hubs.has(e.site) && e.site !== scope.from && peer === scope.to;
    };
    let moves = 0;
    for (const e of events) if (e.kind === 'flowMoved' && flowMoveOf(e)?.className === c && movesHere(e)) moves += flowsMoved(e);
    const faultMoves = movesIn(events, c, faultWindows(steps, scenario.durationMs), movesHere);
    // Ends that carry the scope's flows: at the site or toward it; for from > to, at `from` toward
    // `to` (or a hub) and at a hub toward `to`.
    const inScope = (end: { site: string; peer: string | undefined }): boolean =>
      scope.site !== undefined
        ? end.site === scope.site || end.peer === scope.site
        : (end.site === scope.from && (end.peer === scope.to || (end.peer !== undefined && hubs.has(end.peer)))) || (hubs.has(end.site) && end.peer === scope.to);
    const { rerouteMs, lostDuringSwitch } = scopedReroute(steps, c, inScope, (from, to) => tracker.lostBetween(c, from, to, only));
    return { ...st, moves, faultMoves, detectionMs: undefined, rerouteMs, lostDuringSwitch };
  };
  const pairs: PairReport[] = [];
  const seen = new Set<string>();
  for (const f of flows) {
    const key = `${f.origin}>${f.dest}>${f.className}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const r = scoped(f.className, { from: f.origin, to: f.dest });
    if (r) pairs.push({ ...r, from: f.origin, to: f.dest });
  }
  const notes: string[] = [];
  if (tracker.anomalyTotal > 0) notes.push(`${tracker.anomalyTotal} misdelivered packets, e.g. ${tracker.anomalies[0]}`);
  const unroutable = world.sites.filter((x) => x.unroutable > 0).map((x) => `${x.name} ${x.unroutable}`);
  if (unroutable.length > 0) notes.push(`datagrams sent to endpoints no connection leads to: ${unroutable.join(', ')}`);
  virtualRunsInProcess++;
  const report = buildReport({ scenario, mode: 'virtual', backend: 'userspace', seed, wallMs, steps, classes: stats, edgeEvents: events, notes, scoped, pairs });
  return { report, world };
}

/** Links a class uses at a site toward one peer: the peer's own class table when the snapshot has one, else the site's. */
function activeLinksToward(snap: EdgeSnapshot | undefined, peer: string | undefined): Partial<Record<ClassName, string[]>> | undefined {
  if (!snap) return undefined;
  // PeerSnapshot has no class table today; read one if it grows one.
  const peers = (snap as unknown as { peers?: { name: string; classes?: { name: string; activeLinks: string[] }[] }[] }).peers;
  const p = peer === undefined ? undefined : peers?.find((x) => x.name === peer);
  if (p?.classes) {
    const out: Partial<Record<ClassName, string[]>> = {};
    for (const c of p.classes) out[c.name as ClassName] = c.activeLinks;
    return out;
  }
  return activeLinks(snap);
}

/** A class's slowest reroute over the fault steps' ends in a scope, and what its scoped flows lost meanwhile. */
function scopedReroute(
  steps: StepResult[],
  c: ClassName,
  inScope: (end: { site: string; peer: string | undefined }) => boolean,
  lostBetween: (fromMs: number, toMs: number) => number,
): { rerouteMs: number | undefined; lostDuringSwitch: number | undefined } {
  let rerouteMs: number | undefined;
  let lost: number | undefined;
  for (const step of steps) {
    if (step.kind !== 'fault') continue;
    const ends = step.classes[c]?.ends?.filter(inScope) ?? [];
    if (ends.length === 0) continue;
    const worst = Math.max(...ends.map((e) => e.movedMs));
    rerouteMs = Math.max(rerouteMs ?? 0, worst);
    lost = (lost ?? 0) + lostBetween(step.atMs, Number.isFinite(worst) ? step.atMs + worst : step.atMs + 10_000);
  }
  return { rerouteMs, lostDuringSwitch: lost };
}
