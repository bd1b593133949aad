/**
 * snapshot(): the Endpoint's counters and state for the operator surface (status, dashboard,
 * metrics) and the tests. Paths are listed per peer (`links`, each naming its peer) and each peer
 * is summarised `wg show` style (`peers`); classes add up every peer's traffic of the class.
 */
import type { Endpoint } from './endpoint.ts';
import { LONG_WINDOW_MS, SHORT_WINDOW_MS } from './pathmon/path-stats.ts';
import { effectiveState, pathName, pathUsable } from './pathmon/path.ts';
import type { Peer } from './peer.ts';
import { totalQueueDrops } from './qos/egress.ts';
import { CLASS_NAMES } from './steer/classes.ts';
import { bondStatus } from './peer-bond.ts';
import { TOP_FLOWS } from './steer/steering.ts';
import { IDLE_PROBE_INTERVAL_MS } from './peer-idle.ts';
import type { ClassSnapshot, EdgeSnapshot, FlowSnapshot, LinkSnapshot, PathRtt, PeerSnapshot } from './types.ts';

/**
 * Each path's state and smoothed RTT, the paths and labels of buildSnapshot's `links` (the peer
 * named on a single-peer edge too): what the metrics sample every second, at a fraction of a
 * snapshot's cost (no loss windows, percentiles, flows or classes; ~2,000 paths at a 1,000-spoke hub).
 * A function beside buildSnapshot rather than an Endpoint method: endpoint.ts is at the core's
 * 600-line limit (test/core/core-purity.test.ts).
 */
export function buildPathRtts(ep: Endpoint): PathRtt[] {
  const out: PathRtt[] = [];
  for (const peer of ep.peersByName.values()) {
    for (const p of peer.paths) {
      if (!p.hasEndpoint && p.remoteLink < 0) continue;
      out.push({ link: p.name, peer: peer.name, state: effectiveState(p), srttMs: p.stats.srttMs });
    }
  }
  return out;
}

export function buildSnapshot(ep: Endpoint, nowMs: number): EdgeSnapshot {
  const steps = snapshotSteps(ep, nowMs);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * buildSnapshot one peer at a time: the generator yields after each peer's paths and after each
 * peer's summary, and returns the snapshot. A shell that must not hold its thread for the whole
 * walk (a 1,000-spoke hub's snapshot took 20-40 ms: /metrics) runs a few steps per turn of its
 * loop, passing next() the time of the step: each peer is read at its own time (the snapshot's
 * `nowMs` is the first), so a path heard between two steps is not heard "-3 ms ago". Between steps
 * the edge may change: a peer removed meanwhile is still read from its last state.
 */
export function* snapshotSteps(ep: Endpoint, nowMs: number): Generator<void, EdgeSnapshot, number | undefined> {
  let now = nowMs;
  const peers = [...ep.peersByName.values()];
  const many = peers.length !== 1;
  const links: LinkSnapshot[] = [];
  const flowsPerClass = CLASS_NAMES.map(() => 0);
  const activePerClass = CLASS_NAMES.map(() => new Set<string>());
  let flows = 0;
  let flowMoves = 0;
  let duplicates = 0;
  let topFlows: FlowSnapshot[] = [];
  for (const peer of peers) {
    const flowsPerPath = peer.paths.map(() => 0);
    for (const f of peer.steering.flows.values()) {
      if (flowsPerPath[f.path] !== undefined) flowsPerPath[f.path]!++;
      flowsPerClass[f.classId]!++;
      const a = peer.paths[f.path];
      if (a) activePerClass[f.classId]!.add(a.name);
      const b = f.path2 >= 0 ? peer.paths[f.path2] : undefined;
      if (b) activePerClass[f.classId]!.add(b.name);
    }
    flows += peer.steering.flows.size;
    flowMoves += peer.steering.flowMoves;
    duplicates += peer.duplicatesSuppressed;
    topFlows = topFlows.concat(peer.steering.topFlows(now, many ? peer.name : undefined));
    for (const p of peer.paths) {
      if (!p.hasEndpoint && p.remoteLink < 0) continue;
      const link = ep.links[p.linkId]!;
      const sched = link.sched;
      links.push({
        id: p.linkId,
        name: p.name,
        ...(many ? { peer: peer.name, pathId: p.id } : {}),
        state: effectiveState(p),
        tier: p.tier,
        remote: p.hasEndpoint ? formatRemote(p.remote) : 'learning',
        rttMs: p.stats.srttMs,
        rttP50Ms: p.stats.rttPercentileMs(50),
        rttP99Ms: p.stats.rttPercentileMs(99),
        jitterMs: p.stats.jitterMs,
        txJitterMs: p.stats.peerJitterMs,
        txLossRatio: p.stats.txLossRatio(now, SHORT_WINDOW_MS),
        rxLossRatio: p.stats.rxLossRatio(now, SHORT_WINDOW_MS),
        txLossLongRatio: p.stats.txLossRatio(now, LONG_WINDOW_MS),
        rxLossLongRatio: p.stats.rxLossRatio(now, LONG_WINDOW_MS),
        txLossTotalRatio: p.stats.txLossTotalRatio(),
        rxLossTotalRatio: p.stats.rxLossTotalRatio(),
        lastHeardAgoMs: p.sm.lastHeardMs === undefined ? undefined : now - p.sm.lastHeardMs,
        flaps: p.sm.flaps,
        suppressed: p.sm.suppressed,
        txRateBps: p.txRateBps,
        txPackets: p.txPackets,
        txBytes: p.txBytes,
        rxPackets: p.rxPackets,
        rxBytes: p.rxBytes,
        txDataPackets: p.txDataPackets,
        rxDataPackets: p.rxDataPackets,
        flows: flowsPerPath[p.id]!,
        peerLinkName: p.peerLinkName,
        ...(sched ? { shaperRateBps: sched.rateBps, queuedPackets: sched.queuedPackets, queueDrops: totalQueueDrops(sched) } : {}),
        ...(peer.fecTxList.length > 0 ? { fecParitySent: p.fecParitySent } : {}),
        pathMtuBytes: p.pmtu.currentPmtu,
        usableMtuBytes: p.usableMtuBytes,
        pmtuPhase: p.pmtu.phase,
        pmtuProbes: p.pmtu.probesSent,
        pmtuProbesLost: p.pmtu.probesLost,
        pmtuBlackHoles: p.pmtu.blackHoles,
      });
    }
    now = (yield) ?? now;
  }
  topFlows.sort((a, b) => b.bytes - a.bytes);
  const classes: ClassSnapshot[] = ep.policies().map((pol, i) => ({
    name: pol.name,
    strategy: pol.strategy,
    flows: flowsPerClass[i]!,
    activeLinks: [...activePerClass[i]!].sort((a, b) => linkOrder(ep, a) - linkOrder(ep, b)),
    txPackets: sum(peers, (p) => p.classTx[i]!.packets),
    txBytes: sum(peers, (p) => p.classTx[i]!.bytes),
    moves: sum(peers, (p) => p.steering.classMoves[i]!),
    outerDscp: pol.outerDscp,
    ...classFec(now, peers, i),
    ...classQueue(ep, i),
  }));
  const peerSnaps: PeerSnapshot[] = [];
  for (const p of peers) {
    peerSnaps.push(peerSnapshot(ep, p, now));
    now = (yield) ?? now;
  }
  const first = peers[0];
  const sessions = ep.sessions;
  const ps = first && sessions ? sessions.peerSnapshot(now, first.name) : undefined;
  const counters = sessions?.counters(now);
  const handshakeDrops: Record<string, number> = {};
  if (counters) for (const [k, v] of Object.entries(counters.handshakeDrops)) if (v > 0) handshakeDrops[k] = v;
  return {
    nowMs,
    site: ep.site,
    links,
    classes,
    flows,
    flowMoves,
    topFlows: topFlows.slice(0, TOP_FLOWS),
    tunPacketsIn: ep.tunPacketsIn,
    deliveredPackets: ep.deliveredPackets,
    duplicatesSuppressed: duplicates,
    session: sessions
      ? {
          encrypted: true,
          established: ps?.hasSession ?? false,
          ageMs: ps?.sessionAgeMs,
          cipher: ps?.cipher,
          handshakeAttempts: ps?.handshakeAttempts ?? 0,
          handshakeDrops,
          underLoad: counters!.underLoad,
        }
      : { encrypted: false, established: false, ageMs: undefined, cipher: undefined, handshakeAttempts: 0, handshakeDrops: {} },
    drops: { ...ep.drops },
    recentEvents: ep.events.recent.slice(),
    peers: peerSnaps,
    ...bondStatus(peers, many),
    ...(ep.rules.size > 0 ? { rules: ep.rules.counters() } : {}),
  };
}

export function peerSnapshot(ep: Endpoint, peer: Peer, nowMs: number): PeerSnapshot {
  let pathsUp = 0;
  let paths = 0;
  let worstRttMs: number | undefined;
  let worstTxLossRatio: number | undefined;
  for (const p of peer.paths) {
    if (!p.hasEndpoint) continue;
    paths++;
    if (!pathUsable(p)) continue;
    pathsUp++;
    const rtt = p.stats.srttMs;
    if (rtt !== undefined && (worstRttMs === undefined || rtt > worstRttMs)) worstRttMs = rtt;
    const loss = p.stats.txLossRatio(nowMs, SHORT_WINDOW_MS);
    if (loss !== undefined && (worstTxLossRatio === undefined || loss > worstTxLossRatio)) worstTxLossRatio = loss;
  }
  const s = ep.sessions?.peerSnapshot(nowMs, peer.name);
  return {
    name: peer.name,
    ...(peer.siteName !== undefined ? { site: peer.siteName } : {}),
    prefixes: [...peer.config.prefixes],
    pathsUp,
    paths,
    state: paths === 0 ? 'idle' : pathsUp > 0 ? 'up' : 'down',
    probeIntervalMs: peer.idle.slow ? IDLE_PROBE_INTERVAL_MS : ep.probeIntervalMs,
    session: {
      established: ep.sessions ? (s?.hasSession ?? false) : true,
      ...(s?.sessionAgeMs !== undefined ? { ageMs: s.sessionAgeMs } : {}),
      ...(s?.cipher !== undefined ? { cipher: s.cipher } : {}),
      handshakeAttempts: s?.handshakeAttempts ?? 0,
    },
    txPackets: peer.txInnerPackets,
    txBytes: peer.txInnerBytes,
    rxPackets: peer.rxInnerPackets,
    rxBytes: peer.rxInnerBytes,
    forwardedPackets: peer.forwardedPackets,
    sourceNotAllowed: peer.sourceNotAllowed,
    duplicatesSuppressed: peer.duplicatesSuppressed,
    flows: peer.steering.flows.size,
    flowMoves: peer.steering.flowMoves,
    ...(worstRttMs !== undefined ? { worstRttMs } : {}),
    ...(worstTxLossRatio !== undefined ? { worstTxLossRatio } : {}),
  };
}

/** The paths of one peer by name, for `braid status --peer` (pathName shows the far end's link). */
export function pathLabels(peer: Peer): string[] {
  return peer.paths.map((p) => pathName(p));
}

function classFec(nowMs: number, peers: readonly Peer[], classId: number): Partial<ClassSnapshot> {
  let out: Partial<ClassSnapshot> = {};
  // The peer that protected the most packets speaks for k, m and the loss figures; counters add up.
  let lead = -1;
  for (const peer of peers) {
    const tx = peer.fecTx[classId];
    if (tx !== undefined) {
      const s = tx.snapshot(nowMs, peer.classWireBytes[classId]!) as Partial<ClassSnapshot>;
      const protectedPackets = s.fecProtectedPackets ?? 0;
      if (lead < 0) out = { ...s };
      else {
        if (protectedPackets > lead) out = { ...out, fecK: s.fecK, fecM: s.fecM, fecLossRatio: s.fecLossRatio, fecCongested: s.fecCongested } as Partial<ClassSnapshot>;
        for (const k of ['fecProtectedPackets', 'fecParitySent', 'fecParityBytes', 'fecDataWireBytes', 'fecTooLarge', 'fecParityCapped'] as const) out[k] = (out[k] ?? 0) + (s[k] ?? 0);
        out.fecOverheadRatio = (out.fecDataWireBytes ?? 0) > 0 ? (out.fecParityBytes ?? 0) / out.fecDataWireBytes! : 0;
      }
      lead = Math.max(lead, protectedPackets);
    }
    const rx = peer.fecRx.snapshot(classId);
    if (rx !== undefined) {
      out.fecRecovered = (out.fecRecovered ?? 0) + rx.fecRecovered;
      out.fecUnrecoverable = (out.fecUnrecoverable ?? 0) + rx.fecUnrecoverable;
      out.fecMalformed = (out.fecMalformed ?? 0) + rx.fecMalformed;
      out.fecLateOriginals = (out.fecLateOriginals ?? 0) + rx.fecLateOriginals;
      if (rx.residualLossRatio !== undefined) out.residualLossRatio = Math.max(out.residualLossRatio ?? 0, rx.residualLossRatio);
    }
  }
  return out;
}

function classQueue(ep: Endpoint, classId: number): Partial<ClassSnapshot> {
  let any = false;
  let drops = 0;
  let sent = 0;
  let delaySum = 0;
  let delayMax = 0;
  for (const l of ep.links) {
    const c = l.sched?.counters[classId];
    if (c === undefined) continue;
    any = true;
    drops += c.dropped;
    sent += c.sent;
    delaySum += c.delaySumMs;
    if (c.delayMaxMs > delayMax) delayMax = c.delayMaxMs;
  }
  return any ? { queueDrops: drops, queueDelayAvgMs: sent > 0 ? delaySum / sent : 0, queueDelayMaxMs: delayMax } : {};
}

function sum(peers: readonly Peer[], f: (p: Peer) => number): number {
  let n = 0;
  for (const p of peers) n += f(p);
  return n;
}

function linkOrder(ep: Endpoint, name: string): number {
  const i = ep.links.findIndex((l) => l.name === name);
  return i < 0 ? 99 : i;
}

function formatRemote(e: { address: string; port: number }): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
