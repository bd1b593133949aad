/**
 * Sender-side bond scheduler (issue 17): which path each packet of a bonded flow takes.
 *
 * Inputs, per path in the class's usable set (refreshed by `setPaths` whenever path stats change,
 * at least every probe interval): spare capacity, smoothed RTT, recent loss (the 1 s window, so a
 * path that starts losing is weighted down within a second), MTU, and optionally the bytes queued
 * for the path in our own shaper.
 *
 * Membership (both schedulers):
 *   - a path whose one-way delay (srtt/2) exceeds the fastest member's by more than the class's
 *     `maxDelayGapMs` is left out: the receiver would have to hold the fast paths' packets that
 *     long (its resequencing bound), and TCP's RTT would be the slow path's;
 *   - a path's rate is its spare capacity times a loss factor, max(0, 1 - loss / lossCutoff):
 *     1% loss with the default 5% cutoff keeps 80% of its weight, 5% or more takes it out;
 *   - a packet larger than a path's MTU does not go on it.
 *
 * Schedulers:
 *   'wrr'  smooth weighted round-robin by bytes (nginx's SWRR, per byte): shares follow the rates
 *          exactly, blind to delay, so the receiver holds fast-path packets for the delay difference.
 *          Glorytun's mud picks the same way (a rate-weighted draw among RUNNING paths; LOSSY paths
 *          out, older versions also scaled the weight down with latency above the minimum).
 *   'eat'  earliest arrival: each path has a virtual clock of the bytes we gave it (drained at its
 *          rate); a packet goes where it would arrive first, now + backlog/rate + size/rate +
 *          srtt/2 (the ECF / BLEST family of MPTCP schedulers, per packet). At low load it keeps to
 *          the fast path; at high load it queues the fast paths just enough that arrivals
 *          interleave in order, so the receiver rarely holds anything.
 *
 * 'eat' needs each path's real capacity for its clocks: with any capacity unknown it picks as 'wrr'
 * (equal shares) rather than run clocks at a made-up rate.
 *
 * One scheduler per (peer, class) shared by that class's bonded flows, so the virtual clocks see
 * all the bonded bytes each path was given. Pure: time is an argument; no randomness needed.
 */
import { BOND_MAX_PATHS } from '../constants.ts';

export type BondSchedulerKind = 'wrr' | 'eat';
export const BOND_SCHEDULERS: readonly BondSchedulerKind[] = ['wrr', 'eat'];

export interface BondPath {
  id: number;
  /** Spare capacity for bonded traffic (configured bandwidth minus other use); 0 = unknown. */
  spareBps: number;
  /** Smoothed RTT; undefined = not measured yet (the path is left out). */
  srttMs: number | undefined;
  /**
   * Propagation RTT (the lowest RTT seen lately), when known. 'eat' then takes srtt - baseRtt as
   * the path's queueing delay instead of adding it to the one-way delay: its own virtual clock
   * already counts the queue our bonded bytes make, and counting it twice reorders.
   */
  baseRttMs?: number;
  /** Loss in the direction we send, over the last second; undefined = not known (taken as 0). */
  lossRatio: number | undefined;
  /** Largest inner packet the path carries without fragmenting. */
  mtuBytes: number;
  /** Bytes waiting in our shaper for this path, when the caller knows; improves 'eat'. */
  queueBytes?: number;
}

export interface BondOptions {
  kind: BondSchedulerKind;
  /** Largest one-way delay difference to the fastest member (the class's tolerance). */
  maxDelayGapMs: number;
  /** Loss at which a path's weight reaches zero (default 5%). */
  lossCutoff?: number;
  /**
   * The receiver equalizes the class's delay (bond.equalizeDelay, equalize.ts): every member's
   * packets arrive with the slowest member's delay, so 'eat' takes every member's one-way delay as
   * that one and builds no queue on a fast path on purpose (slackMs 0): it fills paths by rate.
   */
  equalizeDelay?: boolean;
}

/** Rate used for paths whose spare capacity is unknown when others are unknown too (equal shares). */
const UNKNOWN_RATE_BPS = 10_000_000;
const DEFAULT_LOSS_CUTOFF = 0.05;

interface Member {
  id: number;
  rateBps: number;
  owdMs: number;
  mtuBytes: number;
  /** 'wrr': byte credit. */
  credit: number;
  /** 'eat': when the bytes given so far have drained at rateBps. */
  busyUntilMs: number;
}

export interface BondPathSnapshot {
  id: number;
  member: boolean;
  /** Why not a member: 'delayGap' | 'loss' | 'noRtt' | 'noCapacity'. */
  reason?: string;
  rateBps: number;
  packets: number;
  bytes: number;
}

export class BondScheduler {
  readonly kind: BondSchedulerKind;
  private readonly maxDelayGapMs: number;
  private readonly lossCutoff: number;
  private readonly equalizeDelay: boolean;
  private members: Member[] = [];
  private totalRateBps = 0;
  /** Every member's capacity is known: 'eat' needs real rates for its clocks, else it picks as 'wrr'. */
  private ratesKnown = false;
  /** Virtual clocks and credits survive setPaths for paths that stay. */
  private readonly state = new Map<number, Member>();
  private readonly excluded = new Map<number, string>();
  private readonly packets = new Float64Array(BOND_MAX_PATHS);
  private readonly bytes = new Float64Array(BOND_MAX_PATHS);
  /** Packets no member could take (none, or all too small an MTU). */
  noPath = 0;

  constructor(opts: BondOptions) {
    this.kind = opts.kind;
    this.maxDelayGapMs = opts.maxDelayGapMs;
    this.lossCutoff = opts.lossCutoff ?? DEFAULT_LOSS_CUTOFF;
    this.equalizeDelay = opts.equalizeDelay ?? false;
  }

  /** The usable paths of the class now. Members are recomputed; per-path clocks carry over. */
  setPaths(nowMs: number, paths: readonly BondPath[]): void {
    this.excluded.clear();
    const allKnown = paths.every((p) => p.spareBps > 0);
    const candidates: Array<{ p: BondPath; rateBps: number; owdMs: number }> = [];
    for (const p of paths) {
      if (p.id < 0 || p.id >= BOND_MAX_PATHS) continue;
      if (p.srttMs === undefined || !Number.isFinite(p.srttMs)) {
        this.excluded.set(p.id, 'noRtt');
        continue;
      }
      const lossFactor = Math.max(0, 1 - (p.lossRatio ?? 0) / this.lossCutoff);
      if (lossFactor <= 0) {
        this.excluded.set(p.id, 'loss');
        continue;
      }
      const base = allKnown ? p.spareBps : UNKNOWN_RATE_BPS;
      const rateBps = base * lossFactor;
      if (!(rateBps > 0)) {
        this.excluded.set(p.id, 'noCapacity');
        continue;
      }
      candidates.push({ p, rateBps, owdMs: p.srttMs / 2 });
    }
    let minOwd = Infinity;
    for (const c of candidates) minOwd = Math.min(minOwd, c.owdMs);
    const members: Member[] = [];
    let total = 0;
    for (const c of candidates) {
      if (c.owdMs - minOwd > this.maxDelayGapMs) {
        this.excluded.set(c.p.id, 'delayGap');
        continue;
      }
      let m = this.state.get(c.p.id);
      if (m === undefined) {
        m = { id: c.p.id, rateBps: 0, owdMs: 0, mtuBytes: 0, credit: 0, busyUntilMs: nowMs };
        this.state.set(c.p.id, m);
      }
      m.rateBps = c.rateBps;
      m.owdMs = c.owdMs;
      m.mtuBytes = c.p.mtuBytes;
      // The real queue as far as we know it (our shaper's bytes, the RTT's rise over its base)
      // moves the virtual clock forward, never back: the clock already has what we gave the path.
      let queueMs = ((c.p.queueBytes ?? 0) * 8000) / c.rateBps;
      const base = c.p.baseRttMs;
      if (base !== undefined && Number.isFinite(base) && base > 0 && base <= c.p.srttMs!) {
        m.owdMs = base / 2;
        queueMs = Math.max(queueMs, c.p.srttMs! - base);
      }
      m.busyUntilMs = Math.max(m.busyUntilMs, nowMs + queueMs);
      members.push(m);
      total += c.rateBps;
    }
    if (this.equalizeDelay) {
      let maxOwd = 0;
      for (const m of members) maxOwd = Math.max(maxOwd, m.owdMs);
      for (const m of members) m.owdMs = maxOwd;
    }
    // A path that left the bond starts fresh when it returns (no stale credit or backlog).
    for (const id of [...this.state.keys()]) if (!members.some((m) => m.id === id)) this.state.delete(id);
    this.members = members;
    this.totalRateBps = total;
    this.ratesKnown = allKnown;
  }

  /** Path for the next packet of `sizeBytes`, or -1 (no member: the caller sends it the unbonded way). */
  pick(nowMs: number, sizeBytes: number): number {
    const m = this.kind === 'eat' && this.ratesKnown ? this.pickEat(nowMs, sizeBytes) : this.pickWrr(sizeBytes);
    if (m === undefined) {
      this.noPath++;
      return -1;
    }
    this.packets[m.id]!++;
    this.bytes[m.id]! += sizeBytes;
    return m.id;
  }

  /** Members now, for the receiver's bound (bondBoundMs) and the dashboard. */
  memberIds(): number[] {
    return this.members.map((m) => m.id);
  }

  /**
   * How much longer than member `id` the slowest member takes one way (0 for the slowest, or a
   * path that is not a member): the queue 'eat' may build on `id` on purpose so that arrivals over
   * every member line up. The link's CoDel leaves that much sojourn alone (setCodelSlack). 'wrr'
   * builds no such queue (the receiver holds instead): 0.
   */
  slackMs(id: number): number {
    if (this.kind !== 'eat' || !this.ratesKnown) return 0;
    let self: Member | undefined;
    let maxOwd = -Infinity;
    for (const m of this.members) {
      if (m.id === id) self = m;
      maxOwd = Math.max(maxOwd, m.owdMs);
    }
    return self === undefined ? 0 : maxOwd - self.owdMs;
  }

  snapshot(): BondPathSnapshot[] {
    const out: BondPathSnapshot[] = [];
    for (const m of this.members) out.push({ id: m.id, member: true, rateBps: m.rateBps, packets: this.packets[m.id]!, bytes: this.bytes[m.id]! });
    for (const [id, reason] of this.excluded) out.push({ id, member: false, reason, rateBps: 0, packets: this.packets[id]!, bytes: this.bytes[id]! });
    return out.sort((a, b) => a.id - b.id);
  }

  private pickWrr(sizeBytes: number): Member | undefined {
    let best: Member | undefined;
    let fitTotal = 0;
    for (const m of this.members) {
      if (sizeBytes > m.mtuBytes) continue;
      m.credit += (m.rateBps / this.totalRateBps) * sizeBytes;
      fitTotal += m.rateBps;
      if (best === undefined || m.credit > best.credit) best = m;
    }
    if (best === undefined) return undefined;
    // Charge the pick the share of the paths that could take it (all members when MTUs agree).
    best.credit -= (fitTotal / this.totalRateBps) * sizeBytes;
    return best;
  }

  private pickEat(nowMs: number, sizeBytes: number): Member | undefined {
    let best: Member | undefined;
    let bestArrival = Infinity;
    let bestDone = 0;
    for (const m of this.members) {
      if (sizeBytes > m.mtuBytes) continue;
      const msPerByte = 8000 / m.rateBps;
      const start = Math.max(nowMs, m.busyUntilMs);
      const done = start + sizeBytes * msPerByte;
      const arrival = done + m.owdMs;
      if (arrival < bestArrival) {
        bestArrival = arrival;
        best = m;
        bestDone = done;
      }
    }
    if (best === undefined) return undefined;
    best.busyUntilMs = bestDone;
    return best;
  }
}
