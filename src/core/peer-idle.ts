/**
 * Idle probing: a peer that carried no data either way for PEER_IDLE_AFTER_MS probes its paths
 * every IDLE_PROBE_INTERVAL_MS (2 s) instead of every probe interval, and only one side of each
 * path probes.
 *
 * Why (issue 12): a hub with 1,000 idle spokes x 2 paths, both sides probing every 100 ms and
 * answering each other, handles ~80,000 sealed datagrams a second just to watch paths nobody uses:
 * 137% of a core in bench/fleet.ts. Idle paths do not need 300 ms failure detection (Cisco
 * SD-WAN's BFD defaults to 1 s hellos with a multiplier of 7); they need it the moment traffic
 * starts, which is when a peer switches back to fast probing (on its first data packet, sent or
 * received) with a grace period so the slower past does not read as silence.
 *
 * One prober per path: of two idle sides, the one with the larger start epoch skips its probe on a
 * path where the peer's probe arrived within the last PROBER_HEARD_WITHIN_MS (the peer's probes
 * and our replies already tell both sides the path is alive). A fixed order, not "whoever probed
 * first": two sides whose ticks fall close together would both skip every other second. If the
 * prober stops (restart, a one-way cut toward us), the other probes again within 3 s. A path
 * that is down always probes. While slow, in-order probe replies count toward the hold-down
 * (10 good in a row), since the silent side sends no probes for the prober to count.
 *
 * A hub probes, its spokes yield (EndpointConfig.role, carried in the epoch's top bit: see
 * epochForRole): the hub then sends its probes on its own schedule, each peer's slow tick at a
 * fixed place in the interval (golden-ratio steps by slot), instead of answering its spokes' on
 * theirs (random phases: Poisson bursts). bench/fleet.ts, 1,000 idle spokes: hub probe sends per
 * 10 ms bucket max/mean 3.04 with a random half of the paths probed by the hub, see BENCHMARKS.md
 * for the figure with this.
 *
 * Idle paths: dead after IDLE_DEAD_AFTER_MS of silence, 3.5 slow probe intervals.
 *
 * Known weak (2026-12-07): a DOWN path of a peer that probes fast (it has data) counts only the
 * peer's probes toward its hold-down. When the peer probes slowly (it saw none of that data: it went
 * to a link that is still dead), 10 of them take 20 s (World: a spoke's MPLS back while its LTE
 * stays dead, data on MPLS after 18 s). Worse, found in session 15: an idle spoke that holds its
 * path UP on the hub's probes skips its own (skipProbe), so the hub's DOWN path never comes back
 * while the spoke's LAN is quiet (World: hub -> spoke traffic, both links down 5-35 s, MPLS heals:
 * nothing reached the spoke in the 45 s after). Counting our own replies as well fixes both in the
 * World (1.06 s), but every version tried moved the long VOPR onto realizations that failed a
 * seed the code without it passes: any reply (session 13: 93000118, 93000150), only the answer to
 * our last probe on that path (91000012: 7.2 s against 6 s), and that only where the peer yields
 * (91000283: every path of a hub to a spoke flap-damped at the heal, and damping has no floor).
 */
import { pathUsable, type PathRuntime } from './pathmon/path.ts';
import type { Peer } from './peer.ts';
import { PeerTimer } from './peer.ts';

/** No data sent or received for this long: the peer probes slowly. */
export const PEER_IDLE_AFTER_MS = 15_000;
/**
 * Probe interval of an idle peer's paths. 2 s: at 1 s the fleet bench's hub spent 7.0% of a core
 * on 1,000 idle spokes (issue 12 asks under 5%); 2 s with death after 7 s is Cisco SD-WAN's
 * default BFD detection time (1 s hellos x 7), for idle paths only.
 */
export const IDLE_PROBE_INTERVAL_MS = 2_000;
/** An idle path is dead after this long without hearing anything on it (3.5 slow intervals). */
export const IDLE_DEAD_AFTER_MS = 7_000;
/** The silent side probes again when the peer's probes stop for this long (1.5 slow intervals). */
export const PROBER_HEARD_WITHIN_MS = 3_000;
/** Flow sweep period while the peer has flows (none: no sweep timer until the next data packet). */
export const FLOW_SWEEP_INTERVAL_MS = 1_000;

/**
 * The start epoch from a random 32-bit draw and the site's role. The epoch says "this start" in
 * every probe (a new one: the peer restarted) and orders the sides of an idle path (the larger
 * yields, skipProbe). A hub's has the top bit clear, a spoke's set, so a hub is the smaller
 * against every spoke and probes every idle path to them, whatever either side's version (the
 * rule is the same comparison); 31 random bits are left to tell starts apart. No role: the draw.
 */
export function epochForRole(draw: number, role: 'hub' | 'spoke' | undefined): number {
  if (role === 'hub') return draw >>> 1 || 1;
  if (role === 'spoke') return (draw | 0x80000000) >>> 0;
  return draw || 1;
}

export class IdleProbing {
  /** Last data packet sent to or received from the peer (creation counts: a new peer probes fast). */
  lastDataMs: number;
  /** Probing slowly now. */
  slow = false;
  /** Mode switches so far (status, tests). */
  switches = 0;
  /** Where in every IDLE_PROBE_INTERVAL_MS (of absolute time) this peer's slow ticks fall. */
  slowPhaseMs = 0;

  constructor(nowMs: number) {
    this.lastDataMs = nowMs;
  }
}

/** A data packet to or from `peer`: back to fast probing now if it was idle. Hot path: one compare. */
export function noteData(peer: Peer, nowMs: number): void {
  const idle = peer.idle;
  idle.lastDataMs = nowMs;
  // Flows come with data: sweep them again (the sweep timer stops while the peer has none).
  if (peer.timers[PeerTimer.FlowSweep] === Infinity) peer.timers[PeerTimer.FlowSweep] = nowMs + FLOW_SWEEP_INTERVAL_MS;
  if (!idle.slow) return;
  idle.slow = false;
  idle.switches++;
  const deadAfterMs = peer.host.pathConfig.deadAfterMs;
  for (const p of peer.paths) p.sm.setDeadAfter(deadAfterMs, nowMs);
  // A fast probe goes out now (the caller re-arms the peer in the Endpoint's heap).
  peer.timers[PeerTimer.Probe] = nowMs;
}

/** At the probe tick: switch to slow probing when idle long enough. Returns whether slow. */
export function idleTick(peer: Peer, nowMs: number): boolean {
  const idle = peer.idle;
  if (!idle.slow && nowMs - idle.lastDataMs >= peer.host.idleProbeAfterMs) {
    idle.slow = true;
    idle.switches++;
    // Peers that went idle together (a fleet started at once) would tick within the same 100 ms of
    // every slow interval: spread their ticks over all of it, by our random epoch and the peer's
    // slot (a hub's peers differ by slot: golden-ratio steps, even for any count; a fleet's
    // spokes, each with slot 0, by epoch). The place is in absolute time, not after the switch
    // (peers switch at their own fast ticks: that would jitter an even spread by up to 100 ms).
    const spread = ((peer.host.epoch + Math.imul(peer.slot, 0x9e3779b1)) >>> 0) / 2 ** 32;
    idle.slowPhaseMs = Math.floor(spread * IDLE_PROBE_INTERVAL_MS);
  }
  // Every tick while slow: a path made since (a learned endpoint) takes the idle pace too (no-op otherwise).
  if (idle.slow) for (const p of peer.paths) p.sm.setDeadAfter(IDLE_DEAD_AFTER_MS, nowMs);
  return idle.slow;
}

/** Whether our probe on `p` can be left out now (slow, up, ours the larger epoch, the peer probing it). */
export function skipProbe(p: PathRuntime, slow: boolean, ourEpoch: number, nowMs: number): boolean {
  return slow && pathUsable(p) && p.peerEpoch !== undefined && ourEpoch > p.peerEpoch && nowMs - p.peerProbeAtMs <= PROBER_HEARD_WITHIN_MS;
}

/** Time from `nowMs` to the peer's next probe tick: the probe interval, or while slow the next slow-tick place (0 < t <= the slow interval). */
export function probeIntervalFor(peer: Peer, nowMs: number): number {
  const idle = peer.idle;
  if (!idle.slow) return peer.host.probeIntervalMs;
  const into = (((nowMs - idle.slowPhaseMs) % IDLE_PROBE_INTERVAL_MS) + IDLE_PROBE_INTERVAL_MS) % IDLE_PROBE_INTERVAL_MS;
  return IDLE_PROBE_INTERVAL_MS - into;
}
