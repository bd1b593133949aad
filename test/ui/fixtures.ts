/** Fixed snapshots for the dashboard tests: a site in the middle of an MPLS failover. */
import type { ClassStatus } from '../../src/control/control-socket.ts';
import { DROP_REASONS, type DropReason, type EdgeEvent, type EdgeSnapshot, type LinkSnapshot } from '../../src/core/types.ts';

export function link(id: number, name: string, over: Partial<LinkSnapshot> = {}): LinkSnapshot {
  return {
    id,
    name,
    state: 'up',
    tier: 'primary',
    remote: `198.51.100.${id + 7}:5190${id}`,
    rttMs: 20 + id * 20,
    rttP50Ms: 19 + id * 20,
    rttP99Ms: 30 + id * 25,
    jitterMs: 1 + id * 3,
    txJitterMs: 1 + id * 3,
    txLossRatio: 0,
    rxLossRatio: 0,
    txLossLongRatio: 0,
    rxLossLongRatio: 0,
    txLossTotalRatio: 0,
    rxLossTotalRatio: 0,
    lastHeardAgoMs: 20,
    flaps: 0,
    suppressed: false,
    txRateBps: 5_000_000,
    flows: 4,
    txPackets: 10_000,
    txBytes: 9_000_000,
    rxPackets: 8_000,
    rxBytes: 2_000_000,
    txDataPackets: 9_500,
    rxDataPackets: 7_600,
    peerLinkName: name,
    ...over,
  };
}

const CLASS_ROWS: Array<[string, string]> = [
  ['control', 'duplicate'],
  ['voice', 'best'],
  ['video', 'best'],
  ['signaling', 'best'],
  ['business', 'balance'],
  ['default', 'balance'],
  ['bulk', 'balance'],
];

export const FAILOVER_EVENT = 'voice: mpls -> inet (mpls loss 4.1% > 1.0%) [8 flows]';

export function events(count: number): EdgeEvent[] {
  const base: EdgeEvent[] = [
    { atMs: 10_020, kind: 'sla', link: 'mpls', message: 'voice: mpls out of SLA (loss 4.1% > 1.0%)' },
    { atMs: 10_020, kind: 'flowMoved', link: 'mpls', message: FAILOVER_EVENT },
    { atMs: 10_300, kind: 'pathState', link: 'mpls', message: 'mpls: up -> down (nothing heard for 300 ms)' },
  ];
  const out: EdgeEvent[] = [];
  for (let i = 0; i < count - base.length; i++) out.push({ atMs: 1000 + i * 100, kind: 'sla', link: 'lte', message: `lte: filler event ${i}` });
  return [...out, ...base];
}

export function failoverSnapshot(over: Partial<EdgeSnapshot> = {}): EdgeSnapshot {
  const classes: ClassStatus[] = CLASS_ROWS.map(([name, strategy]) => ({ name, strategy, flows: 0, activeLinks: [], txPackets: 0, txBytes: 0, moves: 0 }));
  classes[1] = { ...classes[1]!, flows: 8, activeLinks: ['inet'], txPackets: 5_528, txBytes: 1_105_600, moves: 8, fecK: 8, fecM: 2, fecRecovered: 1234, fecUnrecoverable: 3, residualLossRatio: 0.0004 };
  classes[5] = { ...classes[5]!, flows: 6, activeLinks: ['inet', 'lte'], txPackets: 16_566, txBytes: 23_192_400, moves: 1 };
  const drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  drops.malformed = 2;
  return {
    nowMs: 12_000,
    site: 'branch-1',
    links: [
      link(0, 'mpls', { state: 'down', txLossRatio: 1, rxLossRatio: 1, flows: 0, flaps: 1, lastHeardAgoMs: 2000, txRateBps: 3000 }),
      link(1, 'inet', { flows: 10, txLossRatio: 0.0036, txRateBps: 14_300_000 }),
      link(2, 'lte', { state: 'degraded', tier: 'backup', flows: 4, txLossRatio: 0.021, rxLossRatio: 0.004 }),
    ],
    classes,
    flows: 14,
    flowMoves: 9,
    topFlows: [
      { flow: '10.1.0.20:51000 > 10.2.0.9:443 tcp', class: 'default', links: 'inet', packets: 12_004, bytes: 16_805_600, ageMs: 40_000, rateBps: 3_361_120 },
      { flow: '10.1.0.31:16384 > 10.2.0.44:16384 udp', class: 'voice', links: 'inet', packets: 2_764, bytes: 552_800, ageMs: 55_280, rateBps: 80_000 },
      { flow: '10.1.0.8 > 10.2.0.1 icmp', class: 'default', links: 'lte', packets: 12, bytes: 1_008, ageMs: 11_000, rateBps: 733 },
    ],
    tunPacketsIn: 22_094,
    deliveredPackets: 9_375,
    duplicatesSuppressed: 12,
    session: { encrypted: true, established: true, ageMs: 83_000, cipher: 'chacha20-poly1305', handshakeAttempts: 1, handshakeDrops: { badMac1: 3 }, underLoad: false },
    drops,
    recentEvents: events(40),
    ...over,
  };
}
