/**
 * The peers part of `braid status`, `wg show` style: one block per remote site (state, endpoint per
 * path, latest handshake, transfer, prefixes, forwarded packets), and for a hub with many peers a
 * summary first (counts by state, the worst peers by loss and RTT) with blocks only for the worst.
 * Pure functions of an EdgeSnapshot (already sanitised by the caller), shared with the dashboard.
 */
import type { EdgeSnapshot, LinkSnapshot, PeerSnapshot } from '../core/types.ts';
import { fmtBytes, fmtCount, fmtMs, fmtRatio, fmtUptime } from '../ui/format.ts';

/** Above this many peers the text starts with a summary and shows blocks for the worst peers only. */
export const PEER_SUMMARY_THRESHOLD = 20;
/** Peer blocks (and summary rows) shown without --all on an edge over the threshold. */
export const WORST_PEERS_SHOWN = 10;

/** The peers of a snapshot; an old single-peer snapshot without `peers` has none. */
export function peersOf(snap: EdgeSnapshot): readonly PeerSnapshot[] {
  return snap.peers ?? [];
}

/**
 * The paths of one peer. Links name their peer when the edge has several; on a single-peer edge
 * they carry no `peer` and all belong to the one peer.
 */
export function pathsOf(snap: EdgeSnapshot, peer: string): LinkSnapshot[] {
  const many = snap.links.some((l) => l.peer !== undefined);
  return many ? snap.links.filter((l) => l.peer === peer) : peersOf(snap).length <= 1 ? snap.links.slice() : [];
}

const STATE_RANK: Record<PeerSnapshot['state'], number> = { down: 0, up: 1, idle: 2 };

/**
 * Worst first: peers with paths but none usable, then usable peers by tx loss, then by RTT, then
 * peers with no endpoint yet (a spoke not deployed is less urgent than one that fell over). Ties
 * by name, so the order is stable between runs.
 */
export function comparePeersWorstFirst(a: PeerSnapshot, b: PeerSnapshot): number {
  const r = STATE_RANK[a.state] - STATE_RANK[b.state];
  if (r !== 0) return r;
  const loss = (b.worstTxLossRatio ?? 0) - (a.worstTxLossRatio ?? 0);
  if (loss !== 0) return loss;
  const rtt = (b.worstRttMs ?? 0) - (a.worstRttMs ?? 0);
  if (rtt !== 0) return rtt;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function worstPeers(snap: EdgeSnapshot, n: number): PeerSnapshot[] {
  return [...peersOf(snap)].sort(comparePeersWorstFirst).slice(0, Math.max(0, n));
}

export interface PeerCounts {
  total: number;
  up: number;
  down: number;
  idle: number;
  /** Peers whose session is not established (encrypted edges). */
  noSession: number;
  /** Peers with some path not usable (pathsUp < paths). */
  degradedPaths: number;
}

export function countPeers(snap: EdgeSnapshot): PeerCounts {
  const c: PeerCounts = { total: 0, up: 0, down: 0, idle: 0, noSession: 0, degradedPaths: 0 };
  for (const p of peersOf(snap)) {
    c.total++;
    c[p.state]++;
    if (!p.session.established) c.noSession++;
    if (p.pathsUp < p.paths) c.degradedPaths++;
  }
  return c;
}

/** "1,000 peers: 980 up, 15 down, 5 idle; 12 with a path out; 3 without a session". */
export function peerCountsText(c: PeerCounts): string {
  const parts = [`${fmtCount(c.up)} up`, `${fmtCount(c.down)} down`, `${fmtCount(c.idle)} idle`];
  const extra: string[] = [];
  if (c.degradedPaths > 0) extra.push(`${fmtCount(c.degradedPaths)} with a path out`);
  if (c.noSession > 0) extra.push(`${fmtCount(c.noSession)} without a session`);
  return `${fmtCount(c.total)} peer${c.total === 1 ? '' : 's'}: ${parts.join(', ')}${extra.length ? `; ${extra.join(', ')}` : ''}`;
}

/**
 * The snapshot as seen from one peer: its summary, its paths, the flows going to it and its
 * events; edge-wide figures (classes, drops, totals) stay. Undefined when there is no such peer.
 */
export function selectPeer(snap: EdgeSnapshot, name: string): EdgeSnapshot | undefined {
  const peer = peersOf(snap).find((p) => p.name === name);
  if (!peer) return undefined;
  const single = peersOf(snap).length === 1;
  return {
    ...snap,
    peers: [peer],
    links: pathsOf(snap, name),
    topFlows: single ? snap.topFlows : snap.topFlows.filter((f) => f.peer === name),
    recentEvents: single ? snap.recentEvents : snap.recentEvents.filter((e) => e.peer === name),
  };
}

/** "mpls > inet: 198.51.100.7:51900, up, rtt 20.0ms, loss 0.0%/0.0%" (tx/rx, 1 s). */
export function pathLine(l: LinkSnapshot): string {
  const ends = l.peerLinkName !== undefined ? `${l.name} > ${l.peerLinkName}` : `${l.name} > ?`;
  const damped = l.suppressed ? ' (flap damping)' : '';
  return `${ends}: ${l.remote}, ${l.state}${damped}, rtt ${fmtMs(l.rttMs)}, loss ${fmtRatio(l.txLossRatio)}/${fmtRatio(l.rxLossRatio)}`;
}

/** "1:23.0 ago" from the session age; "none" without a session. */
export function latestHandshakeText(p: PeerSnapshot): string {
  if (!p.session.established) return `none (${fmtCount(p.session.handshakeAttempts)} handshake attempts)`;
  return p.session.ageMs === undefined ? 'established' : `${fmtUptime(p.session.ageMs)} ago`;
}

export interface PeerPaint {
  heading(s: string): string;
  label(s: string): string;
}

/** One peer's block, `wg show` style. */
export function peerBlock(snap: EdgeSnapshot, p: PeerSnapshot, paint: PeerPaint): string[] {
  const out: string[] = [];
  const kv = (k: string, v: string): void => {
    out.push(`  ${paint.label(k + ':')} ${v}`);
  };
  const site = p.site !== undefined && p.site !== p.name ? ` (site ${p.site})` : '';
  out.push(`${paint.heading('peer:')} ${p.name}${site}`);
  const pace = p.probeIntervalMs === undefined ? '' : p.probeIntervalMs >= 1000 ? `, no data lately: probed every ${p.probeIntervalMs / 1000} s, one side per path` : '';
  kv('state', `${p.state}, ${p.pathsUp}/${p.paths} paths up${pace}`);
  const paths = pathsOf(snap, p.name);
  if (paths.length === 0) kv('endpoints', 'none known yet (learned from the first authenticated packet)');
  else {
    out.push(`  ${paint.label('endpoints:')}`);
    for (const l of paths) out.push(`    ${pathLine(l)}`);
  }
  kv('latest handshake', latestHandshakeText(p));
  kv('transfer', `${fmtBytes(p.rxBytes)} received, ${fmtBytes(p.txBytes)} sent (${fmtCount(p.rxPackets)} / ${fmtCount(p.txPackets)} packets)`);
  kv('prefixes', p.prefixes.length ? p.prefixes.join(', ') : 'none');
  kv('forwarded', `${fmtCount(p.forwardedPackets)} packets to other peers`);
  kv('flows', `${fmtCount(p.flows)} (${fmtCount(p.flowMoves)} moves)`);
  if (p.sourceNotAllowed > 0) kv('source not allowed', `${fmtCount(p.sourceNotAllowed)} packets dropped`);
  return out;
}

/** One summary row per peer: name, state, paths, worst loss and RTT, transfer. */
export function peerSummaryRow(p: PeerSnapshot, nameWidth: number): string {
  return [
    p.name.padEnd(nameWidth),
    p.state.padEnd(5),
    `${p.pathsUp}/${p.paths}`.padStart(5),
    fmtRatio(p.worstTxLossRatio).padStart(7),
    fmtMs(p.worstRttMs).padStart(8),
    fmtBytes(p.rxBytes).padStart(11),
    fmtBytes(p.txBytes).padStart(11),
  ].join('  ');
}

/** The summary of an edge with many peers: counts, then the worst peers as a table. */
export function peerSummaryLines(snap: EdgeSnapshot, worst: readonly PeerSnapshot[], paint: PeerPaint): string[] {
  const out = [`${paint.heading('peers:')} ${peerCountsText(countPeers(snap))}`];
  if (worst.length === 0) return out;
  const nameWidth = Math.min(32, Math.max(4, ...worst.map((p) => p.name.length)));
  out.push(`  ${paint.label(`worst ${worst.length} (down first, then by loss sent, then rtt):`)}`);
  out.push(`    ${['peer'.padEnd(nameWidth), 'state', 'paths'.padStart(5), 'loss'.padStart(7), 'rtt'.padStart(8), 'received'.padStart(11), 'sent'.padStart(11)].join('  ')}`);
  for (const p of worst) out.push(`    ${peerSummaryRow(p, nameWidth)}`);
  return out;
}

/** Per local link over all peers: "mpls: 980 paths (950 up, 20 degraded, 10 down)". */
export function linkTotalsLines(snap: EdgeSnapshot): string[] {
  const byName = new Map<string, Record<string, number>>();
  for (const l of snap.links) {
    let c = byName.get(l.name);
    if (!c) byName.set(l.name, (c = { paths: 0, up: 0, degraded: 0, down: 0, drained: 0 }));
    c.paths!++;
    c[l.state] = (c[l.state] ?? 0) + 1;
  }
  return [...byName].map(([name, c]) => {
    const states = (['up', 'degraded', 'down', 'drained'] as const).filter((s) => (c[s] ?? 0) > 0).map((s) => `${fmtCount(c[s]!)} ${s}`);
    return `${name}: ${fmtCount(c.paths!)} path${c.paths === 1 ? '' : 's'}${states.length ? ` (${states.join(', ')})` : ''}`;
  });
}
