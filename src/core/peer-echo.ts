/**
 * Probe answers carried by probes (overlay.proto Probe.echo_*). A peer's probe is answered with a
 * ProbeReply at once (STAMP-style), except while we probe the path every interval anyway (the
 * peer carries data, peer-idle.ts): then the answer is held for our next probe on the path, at
 * most one interval, and goes in it with its hold time, so the RTT stays exact. On a path both
 * sides probe that halves the probes' datagrams: 2 per interval instead of 4. A hub with 100 busy
 * spokes of 2 paths sends and receives 8,000 probe datagrams a second for them, 4,000 with echoes;
 * the fleet World's traffic window went from 86,498 to 66,510 datagrams per 5 s (docs/BENCHMARKS.md,
 * "Probe answers ride probes").
 *
 * Held only when the answer reaches the peer as a reply would have: the peer reads echoes (its
 * probes say echo_ok, or carry one: a peer from before echoes gets its replies), the same DSCP
 * and endpoint, our direction of the path lost nothing lately (ECHO_LOSSLESS_WINDOW_MS) and its
 * jitter is low (ECHO_MAX_JITTER_MS). Why the last two: the peer then hears one datagram of ours
 * per interval instead of two, and its 3-interval silence detection (path-state.ts) would fire on
 * a lossy or jittery path: p^3 per interval instead of p^6 (gray-failure, fec-repairable and
 * lte-jitter-storm flapped with looser gates).
 */
import type { ProbeFrame } from './wire/frames.ts';
import type { PathRuntime } from './pathmon/path.ts';
import { PeerTimer, type Peer } from './peer.ts';
import { sameEndpoint, type Endpoint } from './types.ts';

/** Answers ride our probes only while our direction of the path lost nothing over this long. */
export const ECHO_LOSSLESS_WINDOW_MS = 15_000;
/**
 * ... and while the path's jitter (RFC 3550, ours and the peer's report) is at most this: a gap of
 * 3 intervals between two probes needs a delay swing of 2 intervals, which a 60 ms paretonormal
 * storm makes (lte-jitter-storm: LTE fell DOWN and bulk lost 13% with echoes there). 2 ms, not 5
 * or 10: with those, answers held on a 2 ms DSL or an 8 ms LTE still moved scenario seeds over
 * their limits; MPLS-grade paths (~0.5 ms) are where the saving is meant to be.
 */
export const ECHO_MAX_JITTER_MS = 2;

/** A probe of the peer's arrived on `path`: the answer to ours it carries (RTT, PMTU evidence), and whether it reads echoes. */
export function takeEcho(path: PathRuntime, p: ProbeFrame, nowMs: number): void {
  const echoSeq = p.echoSeq ?? 0;
  if (echoSeq !== 0) {
    const echoTxMs = (p.echoTxUs ?? 0) / 1000;
    path.pmtu.onPathHeard(echoTxMs); // our direction carried the probe sent then (peer-pmtu.ts)
    path.stats.onRttSample(nowMs - echoTxMs - (p.echoHoldUs ?? 0) / 1000);
  }
  path.peerEchoes = echoSeq !== 0 || p.echoOk === true;
}

/** Answers the peer's probe `p` that came on `path` from `from`: held for our next probe, or a ProbeReply now. */
export function answerProbe(peer: Peer, path: PathRuntime, from: Endpoint, p: ProbeFrame, nowMs: number): void {
  if (
    path.peerEchoes &&
    !peer.idle.slow &&
    p.dscp === path.dscp &&
    peer.timers[PeerTimer.Probe]! - nowMs <= peer.host.probeIntervalMs &&
    sameEndpoint(from, path.remote) &&
    path.stats.jitterMs <= ECHO_MAX_JITTER_MS &&
    (path.stats.peerJitterMs ?? 0) <= ECHO_MAX_JITTER_MS &&
    path.stats.txLossless(nowMs, ECHO_LOSSLESS_WINDOW_MS)
  ) {
    peer.tx.flushEcho(path, nowMs); // a probe of the peer's already held: answered now
    path.echoSeq = p.seq;
    path.echoTxUs = p.txUs;
    path.echoRxMs = nowMs;
    return;
  }
  peer.tx.sendProbeReply(path, from, p.seq, p.txUs, nowMs, p.dscp);
}
