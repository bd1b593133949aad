/**
 * A peer's timers (peer.ts PeerTimer), one table per peer behind the Endpoint's heap: what runs
 * when each is due, in order: path dead / reuse checks, the probe tick (probes, rates, PMTU probes, SLA, FEC
 * adaptation, the all-paths-dead handshake), flow sweep, FEC flush, FEC expiry, keepalive.
 */
import { pathUsable, sampleRate, type PathRuntime } from './pathmon/path.ts';
import { sameEndpoint } from './types.ts';
import { PeerTimer, type Peer } from './peer.ts';
import { pmtuTick } from './peer-pmtu.ts';
import { FLOW_SWEEP_INTERVAL_MS, idleTick, probeIntervalFor, skipProbe } from './peer-idle.ts';

const NO_TIMER = Infinity;

export function peerTimeout(peer: Peer, nowMs: number): void {
  const timers = peer.timers;
  if (nowMs >= timers[PeerTimer.PathDead]! || nowMs >= timers[PeerTimer.Reuse]!) {
    for (const p of peer.paths) {
      if (!p.hasEndpoint) continue;
      peer.steering.onTransition(nowMs, p, p.sm.onTimeout(nowMs));
      peer.steering.onTransition(nowMs, p, p.sm.onReuseCheck(nowMs));
    }
  }
  if (nowMs >= timers[PeerTimer.Probe]!) {
    const slow = idleTick(peer, nowMs);
    for (const p of peer.paths) {
      if (!p.hasEndpoint) continue;
      backToConfiguredEndpoint(peer, nowMs, p);
      if (!skipProbe(p, slow, peer.host.epoch, nowMs)) peer.tx.sendProbe(nowMs, p);
      else peer.tx.flushEcho(p, nowMs); // no probe to carry the answer we held for it (peer.ts)
      sampleRate(nowMs, p);
      sampleRate(nowMs, peer.host.links[p.linkId]!);
    }
    pmtuTick(peer, nowMs);
    peer.steering.evaluateSla(nowMs);
    peer.bond.tick(nowMs);
    handshakeIfAllDead(peer, nowMs);
    for (const fec of peer.fecTxList) fec.adapt(nowMs, peer.paths, (p) => peer.host.links[p.linkId]!.sched?.counters[fec.classId]?.dropped ?? 0);
    peer.fecRx.mark(nowMs);
    timers[PeerTimer.Probe] = nowMs + probeIntervalFor(peer, nowMs);
  }
  if (nowMs >= timers[PeerTimer.FlowSweep]!) {
    peer.steering.sweep(nowMs);
    // No flows, nothing to sweep until data comes (noteData re-arms): a thousand idle peers need no wake-up a second.
    timers[PeerTimer.FlowSweep] = peer.steering.flows.size > 0 ? nowMs + FLOW_SWEEP_INTERVAL_MS : NO_TIMER;
  }
  if (nowMs >= timers[PeerTimer.FecFlush]!) {
    let next = Infinity;
    for (const fec of peer.fecTxList) {
      fec.encoder.onTimeout(nowMs);
      peer.tx.sendParity(fec);
      const d = fec.encoder.nextDeadlineMs();
      if (d !== undefined && d < next) next = d;
    }
    timers[PeerTimer.FecFlush] = next;
  }
  if (nowMs >= peer.fecRx.expireAtMs) peer.fecRx.onTimeout(nowMs);
  if (nowMs >= peer.bond.deadlineMs) peer.bond.onTimeout(nowMs);
  timers[PeerTimer.FecExpire] = peer.fecRx.expireAtMs;
  if (nowMs >= timers[PeerTimer.Keepalive]!) persistentKeepalive(peer, nowMs);
  rearmPathTimers(peer, nowMs);
}

/**
 * Every path dead (DOWN, and the peer silent on it) while we hold a session: the peer may have
 * restarted and forgotten it (a hub behind which we are NATed cannot reach us first). Handshake
 * now instead of after WireGuard's 15 s (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT); asked every probe
 * interval, the session manager (the session marked stalled) sends at most one initiation per
 * NO_SESSION_RETRY_MS. Measured in namespaces: a NATed spoke back 2.4 s after a hub restart
 * (15.4 s on WireGuard's timer alone; docs/HUB.md).
 */
function handshakeIfAllDead(peer: Peer, nowMs: number): void {
  const sessions = peer.host.sessions;
  if (!peer.sessionUp || sessions === undefined) return;
  let any = false;
  for (const p of peer.paths) {
    if (!p.hasEndpoint) continue;
    if (pathUsable(p)) return;
    // DOWN but heard within its dead interval (authenticated): the peer sends on this session, it has not forgotten
    // it; the path is only earning its hold-down or damped. A handshake would change nothing but
    // the keys (and end each class's open FEC group): every 2 s while a flapped path is held.
    if (p.sm.heardLately(nowMs)) return;
    any = true;
  }
  if (!any) return;
  sessions.connect(nowMs, peer.name, true);
  peer.host.drainCrypto();
}

/**
 * A configured path that roamed to a learned endpoint (the source of an authenticated packet, as
 * WireGuard roams) and then went silent and DOWN goes back to the configured endpoint. The learned
 * one may be gone for good: a copy of a real datagram sent from a stranger's address that arrives
 * first moves the endpoint there, and when the peer restarts before its next datagram can move it
 * back (a restarted hub knows no spoke address), every probe and handshake would go to the
 * stranger forever (VOPR long-form seed 12). The configured address is what the operator vouched
 * for; a peer that really moved is followed again by its next authenticated packet.
 */
function backToConfiguredEndpoint(peer: Peer, nowMs: number, p: PathRuntime): void {
  if (!p.configured || p.sm.state !== 'down') return;
  const ep = peer.config.endpoints?.[peer.host.links[p.linkId]!.name];
  if (ep === undefined || sameEndpoint(p.remote, ep)) return;
  if (nowMs - (p.sm.lastHeardMs ?? -Infinity) < peer.host.pathConfig.deadAfterMs) return;
  peer.moveEndpoint(nowMs, p, ep, 'silent: back to the configured endpoint');
}

/** Persistent keepalive: every path idle for the configured time gets an authenticated empty packet. */
function persistentKeepalive(peer: Peer, nowMs: number): void {
  const every = peer.config.persistentKeepaliveMs ?? 0;
  if (!(every > 0)) {
    peer.timers[PeerTimer.Keepalive] = NO_TIMER;
    return;
  }
  let next = nowMs + every;
  for (const p of peer.paths) {
    if (!p.hasEndpoint) continue;
    if (peer.sessionUp && nowMs - p.lastTxMs >= every) peer.tx.sendKeepalive(p);
    next = Math.min(next, p.lastTxMs + every);
  }
  peer.timers[PeerTimer.Keepalive] = Math.max(next, nowMs + 1);
}

/** Arms the path timers (dead, reuse) from the paths' state machines. */
export function rearmPathTimers(peer: Peer, nowMs: number): void {
  const timers = peer.timers;
  if (peer.host.sessions && !peer.sessionUp) {
    // No session, no probes: silence means nothing yet.
    timers[PeerTimer.PathDead] = NO_TIMER;
    timers[PeerTimer.Reuse] = NO_TIMER;
    return;
  }
  let dead = Infinity;
  let reuse = Infinity;
  for (const p of peer.paths) {
    if (!p.hasEndpoint) continue;
    const d = p.sm.deadDeadlineMs();
    if (d < dead) dead = d;
    const r = p.sm.reuseCheckMs(nowMs);
    if (r < reuse) reuse = r;
  }
  timers[PeerTimer.PathDead] = dead;
  timers[PeerTimer.Reuse] = reuse <= nowMs ? nowMs + peer.host.probeIntervalMs : reuse;
  if ((peer.config.persistentKeepaliveMs ?? 0) > 0 && timers[PeerTimer.Keepalive] === NO_TIMER) timers[PeerTimer.Keepalive] = nowMs + peer.config.persistentKeepaliveMs!;
}
