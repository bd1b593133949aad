/**
 * Path MTU discovery on a peer's paths (issue 13: never fragment the underlay), the glue between
 * pathmon/pmtu.ts (the RFC 8899 search per path) and the peer's send and receive paths:
 *
 *   probe tick (peer-timers.ts) -> pmtuTick: probe timeouts, then at most one padded probe per
 *     path (a Probe frame with seq 0, padded with Frame.padding to the size under test, sent with
 *     DF like everything else) -> a change of PMTU refreshes the path's usable inner MTU
 *     (path.usableMtuBytes, read per packet by the fit stage) and is an event.
 *   receive: a seq-0 Probe is a PMTU probe: answered with a seq-0 ProbeReply echoing its tx_us,
 *     and kept out of the path's sequence, loss and jitter statistics (a too-big probe that never
 *     arrives is not loss). A seq-0 ProbeReply whose tx_us matches the probe in flight acks its size.
 *   a regular probe's reply -> pmtu.onPathHeard(its send time): our direction carried a small
 *     probe sent then, so a PMTU probe lost before it is the size's fault; a probe lost while our
 *     direction carries nothing says nothing about the MTU (hearing the peer is not enough: a
 *     one-way cut toward it is not a small MTU, VOPR seed 22).
 *
 * Per-path sequences never use 0 for a regular probe: path.txSeq starts at 0 and is incremented
 * before use, wrapping (`>>> 0`) only after 2^32 packets, where buildProbe skips 0.
 */
import { pathName, refreshUsableMtu, type PathRuntime } from './pathmon/path.ts';
import { CONFIRM_BIG_TX_RECENT_MS } from './pathmon/pmtu.ts';
import type { Peer } from './peer.ts';

/** Probe seq that marks a PMTU probe (and its reply). */
export const PMTU_PROBE_SEQ = 0;

/** Timeouts, then at most one PMTU probe on each path with an endpoint (a session must exist). */
export function pmtuTick(peer: Peer, nowMs: number): void {
  if (peer.host.sessions !== undefined && !peer.sessionUp) return;
  for (const p of peer.paths) {
    if (!p.hasEndpoint) continue;
    const size = p.pmtu.nextProbeSize(nowMs, nowMs - p.bigTxAtMs <= CONFIRM_BIG_TX_RECENT_MS);
    if (size !== undefined) {
      p.pmtuProbeTxUs = Math.round(nowMs * 1000);
      p.pmtuProbeBytes = size;
      peer.tx.sendPmtuProbe(p, p.pmtu.probeDatagramBytes(size), p.pmtuProbeTxUs);
    }
    pmtuChanged(peer, p, nowMs);
  }
}

/** A PMTU probe's reply on `p` (seq 0): acks the size in flight when the timestamp matches. */
export function onPmtuReply(peer: Peer, p: PathRuntime, txUs: number, nowMs: number): void {
  if (txUs !== p.pmtuProbeTxUs) return; // an older probe's reply: its size was already judged
  p.pmtuProbeTxUs = -1;
  p.pmtu.onProbeAcked(p.pmtuProbeBytes, nowMs);
  pmtuChanged(peer, p, nowMs);
}

/**
 * The local interface refused a datagram of `datagramBytes` on `p` (EMSGSIZE with DF): the
 * interface MTU `interfaceMtuBytes` is a hint the PMTU search can trust (it is ours).
 */
export function onLocalTooBig(peer: Peer, p: PathRuntime, interfaceMtuBytes: number, nowMs: number): void {
  p.pmtu.onPacketTooBig(interfaceMtuBytes, nowMs);
  pmtuChanged(peer, p, nowMs);
}

/** Applies a PMTU change to the path's usable MTU and says so. */
export function pmtuChanged(peer: Peer, p: PathRuntime, nowMs: number): void {
  const c = p.pmtu.pollChange();
  if (c === undefined) return;
  const before = p.usableMtuBytes;
  refreshUsableMtu(p);
  const name = pathName(p);
  peer.host.emit(nowMs, 'pathState', {
    peer: peer.name,
    link: name,
    text: `${name}: path MTU ${c.fromBytes} -> ${c.toBytes} (${c.reason}); inner MTU ${before} -> ${p.usableMtuBytes}`,
  });
}

/**
 * The shell saw EMSGSIZE on link `linkId` (its interface MTU is now `interfaceMtuBytes`): the
 * link's ceiling moves for new paths, and every path on it takes the MTU as a too-big hint.
 */
export function linkTooBig(links: readonly { id: number; mtuBytes: number }[], peers: Iterable<Peer>, linkId: number, interfaceMtuBytes: number, nowMs: number): void {
  const link = links[linkId];
  if (link === undefined || !(interfaceMtuBytes > 0)) return;
  link.mtuBytes = interfaceMtuBytes;
  for (const peer of peers) for (const p of peer.paths) if (p.linkId === linkId) onLocalTooBig(peer, p, interfaceMtuBytes, nowMs);
}
