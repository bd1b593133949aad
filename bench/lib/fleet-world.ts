// The fleet benches' World (bench/fleet.ts figures, bench/fleet-heap.ts attribution): one hub and
// `spokes` spokes with 2 paths each (mpls 10-16 ms, inet 18-28 ms one way), every site a real core
// Endpoint, encrypted with the native AEAD when the addon loads and with the cipher `braid up` picks
// on this box (`cipher: auto`: AES-256-GCM when the CPU has AES instructions, as it tells the World).
// Also its traffic (every tenth spoke: voice up, business down) and, for the parallel World
// (sim/parallel.ts), how its sites split into partitions and the partition module's exports.
import { World, type WorldConnectionConfig, type WorldPartition, type WorldSiteConfig } from '../../sim/world.ts';
import type { PartitionSpec } from '../../sim/parallel.ts';
import { PacketFactory } from '../../sim/scenario/fast-packet.ts';
import { nativeAeadFactory } from '../../src/io/native-aead.ts';
import { hasAesInstructions } from '../../src/io/cpu-features.ts';

/** Spoke i (1-based): prefix 10.(1 + i/256).(i%256).0/24; `host` picks the address in it (.5: the LAN host). */
export const spokeAddr = (i: number, host: number): [number, number, number, number] => [10, 1 + (i >> 8), i & 255, host];
export const spokeName = (i: number): string => `s${i}`;

export function buildFleetWorld(spokes: number, seed: number, partition?: WorldPartition): World {
  const sites: WorldSiteConfig[] = [{ name: 'hub', role: 'hub', links: ['mpls', 'inet'], prefixes: ['10.0.0.0/8'], coversSpokes: true }];
  const connections: WorldConnectionConfig[] = [];
  for (let i = 1; i <= spokes; i++) {
    const a = spokeAddr(i, 0);
    sites.push({ name: spokeName(i), role: 'spoke', links: ['mpls', 'inet'], prefixes: [`${a.join('.')}/24`], coversSpokes: false });
    connections.push({ a: `${spokeName(i)}.mpls`, b: 'hub.mpls', delayMs: 10 + (i % 7) }, { a: `${spokeName(i)}.inet`, b: 'hub.inet', delayMs: 18 + (i % 11) });
  }
  const aead = nativeAeadFactory();
  return new World({ seed, recordDeliveries: false, sites, connections, ...(aead ? { aead: aead.factory } : {}), aesAccelerated: hasAesInstructions(process.env.BRAID_CPUINFO), ...(partition ? { partition } : {}) });
}

const EF = 46;
const AF21 = 18;
/** The busy spokes: every tenth (1, 11, 21, ...). */
export const busySpokes = (spokes: number): number[] => Array.from({ length: Math.floor(spokes / 10) }, (_, k) => 1 + k * 10);

/**
 * 10% of the spokes: voice up (200 B / 20 ms, EF), business down (1,000 B / 40 ms, AF21), from
 * `startMs` for `durationMs`. Flow j of n starts j/n of its interval later than the first: calls
 * that started at different times, not 100 in phase (the same packets per second; in phase, each
 * 20 ms tick was 100 seals in one instant, which is neither a fleet nor fair to a parallel run).
 * One packet template per flow, patched per packet (seq, IP ID, checksum): building each packet
 * from scratch (makePacket) was 5-7% of the traffic window's profile; makeShared's one buffer per
 * flow is safe because handleTunPacket copies what it keeps (src/core/endpoint.ts buffer
 * contract). The ticks only call sendTun (enginesViaWorld: the World need not re-read 1,001
 * sites' deadlines after each). In a partition, flows whose sender another partition runs are
 * left out (sendTun on a stand-in would do nothing anyway).
 */
export function startFleetTraffic(w: World, spokes: number, startMs: number, durationMs: number): void {
  const end = startMs + durationMs;
  const hub = w.site('hub');
  const busy = busySpokes(spokes);
  busy.forEach((i, j) => {
    const spoke = w.site(spokeName(i));
    if (!spoke.remote) {
      const voice = new PacketFactory({ src: spokeAddr(i, 5), dst: [10, 0, 0, 5], srcPort: 50_000, dstPort: 3479, sizeBytes: 200, dscp: EF, flowId: i });
      w.every(20, { startMs: startMs + (20 * j) / busy.length, untilMs: end, enginesViaWorld: true }, (k) => spoke.sendTun(voice.makeShared(k)));
    }
    if (!hub.remote) {
      const business = new PacketFactory({ src: [10, 0, 0, 5], dst: spokeAddr(i, 5), srcPort: 443, dstPort: 50_001, sizeBytes: 1000, dscp: AF21, flowId: 10_000 + i });
      w.every(40, { startMs: startMs + 7 + (40 * j) / busy.length, untilMs: end, enginesViaWorld: true }, (k) => hub.sendTun(business.makeShared(k)));
    }
  });
}

/**
 * Which partition runs a fleet site. The hub is about 40-45% of the World's work with traffic
 * (timed around its engine calls) and cannot be split, so partition 0 takes the hub and one group
 * of ten spokes (one busy, nine idle) in `hubGroupEvery`; the others share the rest round robin.
 * With 2 partitions and 1 group in 25 their run times in the traffic window were 836-934 and
 * 872-919 ms per 5 simulated s (1 in 12: 1,138-1,402 against 1,037-1,347).
 */
export function fleetPartitionOf(spec: PartitionSpec, hubGroupEvery = 25): (site: string) => number {
  return (site) => {
    if (spec.count === 1 || site === 'hub') return 0;
    const group = Math.floor((Number(site.slice(1)) - 1) / 10);
    if (group % hubGroupEvery === 0) return 0;
    return 1 + (group % (spec.count - 1));
  };
}

/** Arguments of the fleet's partition module (sim/parallel.ts `args`). */
export interface FleetPartitionArgs {
  spokes: number;
  seed: number;
  hubGroupEvery?: number;
}

// ---- the partition module's exports (ParallelWorld.start({ module: this file })) ----

export function buildPartition(spec: PartitionSpec, args: FleetPartitionArgs): World {
  return buildFleetWorld(args.spokes, args.seed, { index: spec.index, of: fleetPartitionOf(spec, args.hubGroupEvery) });
}

export function startTraffic(w: World, a: { spokes: number; startMs: number; durationMs: number }): void {
  startFleetTraffic(w, a.spokes, a.startMs, a.durationMs);
}

/** This partition's view: inner packets delivered at the hub and at the busy spokes, established hub peers (hub's partition only). */
export function fleetCounts(w: World, a: { spokes: number }): { hubDelivered: number; busyDelivered: number; established: number; nowMs: number } {
  const hub = w.site('hub');
  let busyDelivered = 0;
  for (const i of busySpokes(a.spokes)) busyDelivered += w.site(spokeName(i)).deliveredCount;
  const established = hub.remote ? 0 : (hub.edge.snapshot(w.nowMs).peers ?? []).filter((p) => p.session.established).length;
  return { hubDelivered: hub.deliveredCount, busyDelivered, established, nowMs: w.nowMs };
}

/**
 * This partition's sites, each as (name, inner packets delivered, its engine's snapshot as JSON):
 * two runs that give the same list ran the same (test/sim/parallel.test.ts).
 */
export function fleetFingerprint(w: World): [string, number, string][] {
  return w.sites.filter((s) => !s.remote).map((s) => [s.name, s.deliveredCount, JSON.stringify(s.edge.snapshot(w.nowMs))]);
}
