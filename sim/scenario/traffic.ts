/**
 * The flows a scenario's traffic mix turns into, for both runners: one entry per flow and
 * direction, with a scenario-unique flow id that every packet carries (with its sequence number)
 * so receivers can tell loss, duplicates, corruption and misdelivery apart.
 *
 * Flows of one item are phase-staggered over one packet interval, so 4 calls do not all send in
 * the same millisecond.
 */
import type { ClassName } from '../../src/core/steer/classes.ts';
import type { UdpPacketSpec } from '../packets.ts';
import type { FlowInfo, SiteName } from './metrics.ts';
import type { Scenario, TrafficKind } from './schema.ts';

export interface FlowPlan extends FlowInfo {
  dest: string;
  trafficIndex: number;
  kind: TrafficKind;
  dscp: number;
  pps: number;
  intervalMs: number;
  /** First packet (scenario ms). */
  firstMs: number;
  /** No packet at or after this. */
  stopMs: number;
}

/** Inner addresses of the two sites' LANs (virtual time; real time uses the TUN addresses). */
export const SITE_LAN: Record<SiteName, [number, number, number, number]> = { a: [10, 1, 0, 2], b: [10, 2, 0, 2] };

export function planFlows(scenario: Scenario): FlowPlan[] {
  const out: FlowPlan[] = [];
  let nextId = 1;
  for (const t of scenario.traffic) {
    const origins: string[] = t.direction === 'both' ? [t.from, t.to] : t.direction === 'up' ? [t.from] : [t.to];
    for (const origin of origins) {
      const dest = origin === t.from ? t.to : t.from;
      for (let f = 0; f < t.flows; f++) {
        const intervalMs = 1000 / t.pps;
        out.push({
          flowId: nextId++,
          className: t.className,
          origin,
          dest,
          sizeBytes: t.sizeBytes,
          trafficIndex: t.index,
          kind: t.kind,
          dscp: t.dscp,
          pps: t.pps,
          intervalMs,
          firstMs: t.startMs + (intervalMs * f) / t.flows + (origin === t.to ? intervalMs / (2 * t.flows) : 0),
          stopMs: t.stopMs,
        });
      }
    }
  }
  return out;
}

/** Number of packets a flow sends: first, first + interval, ... before stopMs. */
export function packetsOf(f: FlowPlan): number {
  return Math.max(0, Math.ceil((f.stopMs - f.firstMs) / f.intervalMs));
}

/** Inner host address of each site: SITE_LAN (two sites) or the scenario's site hosts. */
export function siteHosts(scenario: Scenario): Record<string, [number, number, number, number]> {
  if (!scenario.sites) return { ...SITE_LAN };
  return Object.fromEntries(scenario.sites.map((s) => [s.name, s.host]));
}

/** The virtual-time packet spec of a flow (makePacket adds seq). */
export function packetSpecOf(f: FlowPlan, hosts: Record<string, [number, number, number, number]> = SITE_LAN): Omit<UdpPacketSpec, 'seq'> {
  const src = hosts[f.origin]!;
  const dst = hosts[f.dest]!;
  return {
    src,
    dst,
    srcPort: 10000 + (f.flowId % 50000),
    dstPort: f.kind === 'bulk' ? 5201 : 5000,
    dscp: f.dscp,
    protocol: f.kind === 'bulk' ? 6 : 17,
    sizeBytes: f.sizeBytes,
    flowId: f.flowId,
  };
}

/** Classes with traffic, in scenario order. */
export function classesOf(scenario: Scenario): ClassName[] {
  return [...new Set(scenario.traffic.map((t) => t.className))];
}

/** How long a class's traffic ran and in how many directions (for throughput per direction). */
export function classActivity(scenario: Scenario, className: ClassName): { activeMs: number; directions: number } {
  const items = scenario.traffic.filter((t) => t.className === className);
  const activeMs = Math.max(0, ...items.map((t) => t.stopMs - t.startMs));
  const directions = items.some((t) => t.direction === 'both') ? 2 : new Set(items.map((t) => t.direction)).size;
  return { activeMs, directions };
}
