/**
 * Packetization-layer path MTU discovery for one path, in the style of RFC 8899 (DPLPMTUD): the
 * overlay sends padded probes (DF set on the underlay, so a too-big probe is dropped, never
 * fragmented), a probe that comes back acknowledged proves the size, and the path's PMTU is the
 * largest size proved. ICMP is at most a hint (onPacketTooBig): many networks drop it.
 *
 * Phases (RFC 8899 5.2's states, with an optimistic start):
 *   start     the link MTU is assumed and probed at once (most paths carry it: one probe proves
 *             it, and hosts never see a lowered MTU for a path that did not need one);
 *             maxProbes losses -> base
 *   base      BASE_PLPMTU (1280 IPv6, 1200 IPv4) is used and probed; acked -> search;
 *             maxProbes losses -> error (the path carries nothing big: keep base, retry slowly)
 *   search    probe the next size of SEARCH_STEPS above the confirmed one, up to the ceiling; each
 *             ack raises the PMTU; maxProbes losses of a size lower the ceiling below it;
 *             no size left -> complete
 *   complete  confirm the PMTU with a probe of that size every confirmIntervalMs (black-hole
 *             detection: blackHoleProbes losses in a row -> base, search again); every
 *             raiseIntervalMs the ceiling returns to the link MTU and the search resumes upward
 *   error     like base, probing every confirmIntervalMs
 *
 * One probe is outstanding at a time; it is lost when onProbeLost says so (the caller's path
 * monitor usually knows first) or when probeTimeoutMs passes. A late ack still counts: the path
 * carried that size. With onPathHeard, a loss counts only if the path was heard after the probe
 * left (a dead path is not a small one).
 *
 * On a lossy path a size is blamed only after more losses in a row, as many as the path's own loss
 * makes unlikely (LOSS_EXPLAINS_RUN_BELOW): loss learned from confirmation probes and from the
 * small probes sent while the run lasted.
 *
 * Inputs: nextProbeSize(now) (when the caller may send: returns a size to probe now, and counts
 * it as sent), onProbeAcked(size, now), onProbeLost(size, now), onPacketTooBig(mtu, now),
 * onPathHeard(sentAt) and onSmallProbeSent(sentAt) (the regular probes and their replies).
 * Outputs: currentPmtu, pollChange() (one coalesced change for an event), nextDeadlineMs().
 * Time is an argument; no clock, no timers.
 */
import { outerHeaderBytes, type IpFamily } from '../wire/overhead.ts';
import { lossUpperBound } from './loss-bounds.ts';

/** RFC 8899 5.1.2: BASE_PLPMTU for IPv6 is the minimum link MTU. */
export const BASE_PMTU_IPV6_BYTES = 1280;
/** RFC 8899 5.1.2 recommends 1200 for IPv4 (what nearly every path carries). */
export const BASE_PMTU_IPV4_BYTES = 1200;
/**
 * Sizes tried upward (packet sizes on the wire, outer IP header included): the MTUs met in the
 * field (1280 IPv6 minimum, 1400 GRE/IPsec-over-MPLS, 1420-1450 LTE and tunnels, 1472-1480 and
 * 1492 PPPoE, 1500 Ethernet) and a few jumbo steps. The link MTU is always a candidate too.
 */
export const SEARCH_STEPS_BYTES: readonly number[] = [1280, 1400, 1420, 1428, 1440, 1450, 1472, 1480, 1492, 1500, 2000, 4000, 8000, 9000];
/** RFC 8899 5.1.2 MAX_PROBES. */
export const DEFAULT_MAX_PROBES = 3;
/** Losses in a row of confirmation probes at the current PMTU before it is called a black hole. */
export const DEFAULT_BLACK_HOLE_PROBES = 4;
export const DEFAULT_PROBE_INTERVAL_MS = 100;
export const DEFAULT_PROBE_TIMEOUT_MS = 500;
export const DEFAULT_CONFIRM_INTERVAL_MS = 1000;
/**
 * A settled path is confirmed only while it carries datagrams bigger than this (UDP payload): a
 * black hole can only hurt packets above the 1280-byte IPv6 minimum, and a hub with 1,000 idle
 * spokes would otherwise spend ~12 kbit/s per path (24 Mbit/s for 2,000 paths) on full-size probes.
 */
export const CONFIRM_ONLY_ABOVE_DATAGRAM_BYTES = 1200;
/** ...carried within this long (two confirmation intervals). */
export const CONFIRM_BIG_TX_RECENT_MS = 2000;
/**
 * On a lossy path a run of lost probes may be the loss, not the size: a size is blamed only after
 * so many losses in a row that the path's loss ratio L explains them with probability
 * L^k < LOSS_EXPLAINS_RUN_BELOW (VOPR long seed 6: 4 confirmation probes lost in a row on a path
 * losing 36% sent a 1500-byte path to base), never more than MAX_LOSSES_TO_BLAME. L is learned
 * from probes of a size the path is known to carry (the confirmation probes): their losses are the
 * path's, not the size's. (The path's data loss will not do: a black hole loses the big data too.)
 * A run is folded into L when an ack ends it, so a real black hole does not raise the bar for itself.
 */
export const LOSS_EXPLAINS_RUN_BELOW = 1e-6;
export const MAX_LOSSES_TO_BLAME = 30;
/**
 * L is not the lost share itself but its upper confidence bound at z = LOSS_ESTIMATE_Z (84%, Wilson,
 * loss-bounds.ts) when any loss was seen: 30-50 small probes that read 26-32% lost let 11 lost
 * confirmations in a row through as "the size" on a path whose round trips then lost more (VOPR
 * long seed 93000095: 1500 -> 1200 for 5.7 s, Frag Needed to the LAN meanwhile; the bound asks
 * now, 13-14 in a row at those estimates). No loss seen: 0, so a clean path still blames the
 * size after `base` losses.
 */
const LOSS_ESTIMATE_Z = 1;
function lossEstimate(lost: number, n: number): number {
  return lost === 0 ? 0 : lossUpperBound(lost, n, LOSS_ESTIMATE_Z);
}
/** L is the lost share of the last LOSS_HISTORY such outcomes, once there are LOSS_MIN_OUTCOMES. */
const LOSS_HISTORY = 32;
const LOSS_MIN_OUTCOMES = 8;
/**
 * The small (regular) probes sent while a run of losses lasted, and which came back, measure L
 * now, when a lossy spell starts on a path whose history is clean (VOPR long seed 14: a reverse
 * direction turned 36% lossy, 4 confirmations lost in a row). The last SMALL_PROBES_KEPT (12.8 s
 * of 100 ms probes); at least SMALL_PROBES_MIN in the run to count.
 */
const SMALL_PROBES_KEPT = 128;
const SMALL_PROBES_MIN = 5;
/** The small-probe ring's one buffer: times, then the came-back flags (a second ArrayBuffer is ~0.2 KB a path, issue 12). */
const smallRing = (): ArrayBuffer => new ArrayBuffer(9 * SMALL_PROBES_KEPT);
/** RFC 8899 5.1.1 PMTU_RAISE_TIMER (600 s). */
export const DEFAULT_RAISE_INTERVAL_MS = 600_000;

export type PmtuPhase = 'start' | 'base' | 'search' | 'complete' | 'error';

export interface PmtuConfig {
  /** Outer IP version of the path. */
  family: IpFamily;
  /** MAX_PLPMTU: the local interface's MTU (the largest packet the path could carry). */
  maxMtuBytes: number;
  baseMtuBytes?: number;
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
  maxProbes?: number;
  blackHoleProbes?: number;
  confirmIntervalMs?: number;
  raiseIntervalMs?: number;
  /** Learn the path's loss from confirmation probes and blame a size only past it (default on). */
  learnPathLoss?: boolean;
}

export type PmtuChangeReason = 'probe-acked' | 'link-mtu-lost' | 'black-hole' | 'packet-too-big';

export interface PmtuChange {
  fromBytes: number;
  toBytes: number;
  reason: PmtuChangeReason;
}

interface Outstanding {
  sizeBytes: number;
  sentAtMs: number;
  deadlineMs: number;
}

export class PmtuDiscovery {
  phase: PmtuPhase = 'start';
  /** Largest size the path is believed to carry (packet bytes, outer IP header included). */
  private confirmedBytes: number;
  /** Largest size the search may try (lowered by failed sizes and PTB hints). */
  private ceilingBytes: number;
  /** A size announced by Packet Too Big above the PMTU: worth a probe of its own. */
  private hintBytes = 0;
  private outstanding: Outstanding | undefined;
  /** Losses in a row of the size being probed. */
  private failures = 0;
  private nextProbeAtMs: number;
  private raiseAtMs = Infinity;
  private change: PmtuChange | undefined;
  /** Outcomes of probes of a size the path carries (1 lost, 0 acked), a ring: L (LOSS_EXPLAINS_RUN_BELOW). */
  private readonly outcomes = new Uint8Array(LOSS_HISTORY);
  private outcomeCount = 0;
  /** Small probes: when each was sent (onSmallProbeSent) and whether it came back (onPathHeard). */
  private readonly smallSentAtMs = new Float64Array(smallRing(), 0, SMALL_PROBES_KEPT).fill(NaN);
  private readonly smallBack = new Uint8Array(this.smallSentAtMs.buffer, 8 * SMALL_PROBES_KEPT, SMALL_PROBES_KEPT);
  private smallHead = 0;
  /** When the first probe of the current run of losses was sent. */
  private runStartMs = 0;
  /** Last time anything arrived on the path (onPathHeard); undefined: the caller does not say. */
  private lastHeardMs: number | undefined;
  readonly baseBytes: number;
  readonly maxBytes: number;
  private readonly probeIntervalMs: number;
  private readonly probeTimeoutMs: number;
  private readonly maxProbes: number;
  private readonly blackHoleProbes: number;
  private readonly confirmIntervalMs: number;
  private readonly raiseIntervalMs: number;
  /** Counters for the snapshot. */
  probesSent = 0;
  probesLost = 0;
  /** Lost while nothing else was heard on the path either (not counted against the size). */
  probesUnattributed = 0;
  blackHoles = 0;

  constructor(readonly config: PmtuConfig, nowMs: number) {
    this.baseBytes = config.baseMtuBytes ?? (config.family === 6 ? BASE_PMTU_IPV6_BYTES : BASE_PMTU_IPV4_BYTES);
    this.maxBytes = Math.max(this.baseBytes, config.maxMtuBytes);
    this.probeIntervalMs = config.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.probeTimeoutMs = config.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.maxProbes = config.maxProbes ?? DEFAULT_MAX_PROBES;
    this.blackHoleProbes = config.blackHoleProbes ?? DEFAULT_BLACK_HOLE_PROBES;
    this.confirmIntervalMs = config.confirmIntervalMs ?? DEFAULT_CONFIRM_INTERVAL_MS;
    this.raiseIntervalMs = config.raiseIntervalMs ?? DEFAULT_RAISE_INTERVAL_MS;
    this.confirmedBytes = this.maxBytes;
    this.ceilingBytes = this.maxBytes;
    this.nextProbeAtMs = nowMs;
  }

  /** The path MTU to use now (outer packet bytes). usableInnerMtu(currentPmtu, family) is the inner MTU. */
  get currentPmtu(): number {
    return this.confirmedBytes;
  }

  /** UDP payload bytes of a probe datagram that tests `sizeBytes` (the overlay pads probes to it). */
  probeDatagramBytes(sizeBytes: number): number {
    return sizeBytes - outerHeaderBytes(this.config.family);
  }

  /** The change since the last poll (first `from`, last `to`), if any. */
  pollChange(): PmtuChange | undefined {
    const c = this.change;
    this.change = undefined;
    return c !== undefined && c.fromBytes !== c.toBytes ? c : undefined;
  }

  /** When nextProbeSize may next return a size, or an outstanding probe times out. */
  nextDeadlineMs(): number {
    return this.outstanding !== undefined ? this.outstanding.deadlineMs : this.nextProbeAtMs;
  }

  /**
   * The size to probe now, or undefined. A returned size counts as sent: the caller sends one
   * probe datagram of probeDatagramBytes(size) bytes (UDP payload) with DF set on this path.
   */
  nextProbeSize(nowMs: number, confirmWanted = true): number | undefined {
    if (this.outstanding !== undefined && nowMs >= this.outstanding.deadlineMs) {
      this.lost(this.outstanding.sizeBytes, nowMs);
    }
    if (this.outstanding !== undefined || nowMs < this.nextProbeAtMs) return undefined;
    if (this.phase === 'complete' && nowMs >= this.raiseAtMs) {
      this.ceilingBytes = this.maxBytes;
      this.hintBytes = 0;
      this.raiseAtMs = Infinity;
      this.phase = 'search';
      this.failures = 0;
    }
    let size: number;
    switch (this.phase) {
      case 'start':
        size = this.maxBytes;
        break;
      case 'base':
      case 'error':
        size = this.baseBytes;
        break;
      case 'search': {
        const next = this.nextCandidate();
        if (next === undefined) {
          this.complete(nowMs);
          return undefined;
        }
        size = next;
        break;
      }
      case 'complete':
        // Nothing big crossed the path lately: nothing a black hole could eat. The probe goes
        // out as soon as big datagrams do again (nextProbeAtMs is left where it was).
        if (!confirmWanted) return undefined;
        size = this.confirmedBytes;
        break;
    }
    this.outstanding = { sizeBytes: size, sentAtMs: nowMs, deadlineMs: nowMs + this.probeTimeoutMs };
    this.nextProbeAtMs = nowMs + (this.phase === 'complete' || this.phase === 'error' ? this.confirmIntervalMs : this.probeIntervalMs);
    this.probesSent++;
    return size;
  }

  onProbeAcked(sizeBytes: number, nowMs: number): void {
    if (this.outstanding?.sizeBytes === sizeBytes) this.outstanding = undefined;
    if (sizeBytes > this.maxBytes) return;
    const before = this.confirmedBytes;
    switch (this.phase) {
      case 'start':
        if (sizeBytes >= this.confirmedBytes) this.complete(nowMs);
        else this.raise(sizeBytes);
        break;
      case 'base':
      case 'error':
        if (sizeBytes >= this.baseBytes) {
          this.setConfirmed(Math.max(sizeBytes, this.baseBytes), 'probe-acked');
          this.phase = 'search';
          this.failures = 0;
        }
        break;
      case 'search':
        if (sizeBytes > this.confirmedBytes) {
          this.raise(sizeBytes);
          this.failures = 0;
        }
        break;
      case 'complete':
        if (sizeBytes >= this.confirmedBytes) {
          // The run of losses this ack ends, then the ack: what L learns.
          for (let i = 0; i < this.failures; i++) this.outcomes[this.outcomeCount++ % LOSS_HISTORY] = 1;
          this.outcomes[this.outcomeCount++ % LOSS_HISTORY] = 0;
          this.failures = 0;
          this.raise(sizeBytes);
          this.nextProbeAtMs = nowMs + this.confirmIntervalMs;
        }
        break;
    }
    if (this.confirmedBytes !== before) this.ceilingBytes = Math.max(this.ceilingBytes, this.confirmedBytes);
  }

  onProbeLost(sizeBytes: number, nowMs: number): void {
    if (this.outstanding?.sizeBytes !== sizeBytes) return; // stale: already timed out or acked
    this.lost(sizeBytes, nowMs);
  }

  /**
   * The path carried what we sent at `nowMs` (the caller passes a probe reply's echoed send time).
   * When the caller reports this, a lost probe counts against its size only if the path was heard
   * (so) after the probe left: probes
   * lost while the whole path is down say nothing about the MTU, and a link outage must not send
   * the PMTU back to base (hosts would get Frag Needed for ten minutes of cached PMTU).
   */
  onPathHeard(nowMs: number): void {
    if (this.lastHeardMs === undefined || nowMs > this.lastHeardMs) this.lastHeardMs = nowMs;
    for (let i = 1; i <= SMALL_PROBES_KEPT; i++) {
      const k = (this.smallHead - i + SMALL_PROBES_KEPT) % SMALL_PROBES_KEPT;
      if (this.smallSentAtMs[k] === nowMs) {
        this.smallBack[k] = 1;
        break;
      }
    }
  }

  /** A small (regular) probe left at `sentAtMs`; onPathHeard(sentAtMs) says it came back. */
  onSmallProbeSent(sentAtMs: number): void {
    this.smallSentAtMs[this.smallHead] = sentAtMs;
    this.smallBack[this.smallHead] = 0;
    this.smallHead = (this.smallHead + 1) % SMALL_PROBES_KEPT;
  }

  /** The lost share of the small probes sent in [fromMs, toMs], if there were enough. */
  private smallLoss(fromMs: number, toMs: number): number | undefined {
    let n = 0;
    let lost = 0;
    for (let k = 0; k < SMALL_PROBES_KEPT; k++) {
      const t = this.smallSentAtMs[k]!;
      if (!(t >= fromMs && t <= toMs)) continue;
      n++;
      lost += 1 - this.smallBack[k]!;
    }
    return n >= SMALL_PROBES_MIN ? lossEstimate(lost, n) : undefined;
  }

  /** Losses in a row before a size is blamed: `base`, or more when the path's loss explains the run. */
  private lossesToBlame(base: number, nowMs: number): number {
    if (this.config.learnPathLoss === false) return base;
    const n = Math.min(this.outcomeCount, LOSS_HISTORY);
    let lost = 0;
    for (let i = 0; i < n; i++) lost += this.outcomes[i]!;
    // Small probes answered in time: sent no later than a probe timeout ago.
    const l = Math.max(n >= LOSS_MIN_OUTCOMES ? lossEstimate(lost, n) : 0, this.smallLoss(this.runStartMs, nowMs - this.probeTimeoutMs) ?? 0);
    if (l <= 0) return base;
    if (l >= 1) return MAX_LOSSES_TO_BLAME;
    return Math.min(MAX_LOSSES_TO_BLAME, Math.max(base, Math.ceil(Math.log(LOSS_EXPLAINS_RUN_BELOW) / Math.log(l))));
  }

  /**
   * An ICMP Packet Too Big / Frag Needed for this path announced `mtuBytes` (a hint: RFC 8899 4.6
   * says not to trust it beyond lowering). Below the current PMTU it becomes the PMTU at once
   * (not below the IPv4/IPv6 minimum), then the search confirms upward from there later.
   */
  onPacketTooBig(mtuBytes: number, nowMs: number): void {
    const floor = this.config.family === 6 ? BASE_PMTU_IPV6_BYTES : 68;
    if (!(mtuBytes >= floor)) return;
    if (mtuBytes < this.confirmedBytes) {
      this.setConfirmed(mtuBytes, 'packet-too-big');
      this.ceilingBytes = mtuBytes;
      if (this.outstanding !== undefined && this.outstanding.sizeBytes > mtuBytes) this.outstanding = undefined;
      this.failures = 0;
      this.complete(nowMs);
    } else if (mtuBytes < this.ceilingBytes) {
      this.ceilingBytes = mtuBytes;
      this.hintBytes = mtuBytes;
      if (this.outstanding !== undefined && this.outstanding.sizeBytes > mtuBytes) {
        this.outstanding = undefined;
        this.failures = 0;
        this.nextProbeAtMs = nowMs;
      }
    }
  }

  private lost(sizeBytes: number, nowMs: number): void {
    const sentAtMs = this.outstanding?.sentAtMs ?? nowMs;
    this.outstanding = undefined;
    this.probesLost++;
    if (this.lastHeardMs !== undefined && this.lastHeardMs <= sentAtMs) {
      // Nothing heard on the path since the probe left: the path is down, not too small. Try
      // again at the confirmation pace, without counting it.
      this.probesUnattributed++;
      this.nextProbeAtMs = nowMs + this.confirmIntervalMs;
      return;
    }
    if (this.failures++ === 0) this.runStartMs = sentAtMs;
    this.nextProbeAtMs = nowMs + this.probeIntervalMs;
    switch (this.phase) {
      case 'start':
        if (this.failures >= this.lossesToBlame(this.maxProbes, nowMs)) {
          this.setConfirmed(this.baseBytes, 'link-mtu-lost');
          this.ceilingBytes = sizeBytes - 1;
          this.phase = 'base';
          this.failures = 0;
        }
        break;
      case 'base':
        if (this.failures >= this.lossesToBlame(this.maxProbes, nowMs)) {
          this.phase = 'error';
          this.failures = 0;
          this.nextProbeAtMs = nowMs + this.confirmIntervalMs;
        }
        break;
      case 'error':
        this.nextProbeAtMs = nowMs + this.confirmIntervalMs;
        break;
      case 'search':
        if (this.failures >= this.lossesToBlame(this.maxProbes, nowMs)) {
          this.ceilingBytes = Math.min(this.ceilingBytes, sizeBytes - 1);
          this.failures = 0;
          if (this.nextCandidate() === undefined) this.complete(nowMs);
        }
        break;
      case 'complete':
        if (this.failures >= this.lossesToBlame(this.blackHoleProbes, nowMs)) {
          // The size that used to go through does not any more: fall back to the base size
          // (which nearly every path carries) and find the new PMTU from there.
          this.blackHoles++;
          this.setConfirmed(this.baseBytes, 'black-hole');
          this.ceilingBytes = this.maxBytes;
          this.hintBytes = 0;
          this.phase = 'base';
          this.failures = 0;
          this.nextProbeAtMs = nowMs;
        }
        break;
    }
  }

  /** The smallest search size above the confirmed PMTU and within the ceiling. */
  private nextCandidate(): number | undefined {
    let best: number | undefined;
    const consider = (s: number): void => {
      if (s > this.confirmedBytes && s <= this.ceilingBytes && s <= this.maxBytes && (best === undefined || s < best)) best = s;
    };
    for (const s of SEARCH_STEPS_BYTES) consider(s);
    consider(this.maxBytes);
    consider(this.hintBytes);
    return best;
  }

  private raise(sizeBytes: number): void {
    if (sizeBytes > this.confirmedBytes) this.setConfirmed(sizeBytes, 'probe-acked');
  }

  private complete(nowMs: number): void {
    this.phase = 'complete';
    this.failures = 0;
    this.nextProbeAtMs = nowMs + this.confirmIntervalMs;
    this.raiseAtMs = nowMs + this.raiseIntervalMs;
  }

  private setConfirmed(bytes: number, reason: PmtuChangeReason): void {
    if (bytes === this.confirmedBytes) return;
    if (this.change === undefined) this.change = { fromBytes: this.confirmedBytes, toBytes: bytes, reason };
    else {
      this.change.toBytes = bytes;
      this.change.reason = reason;
    }
    this.confirmedBytes = bytes;
  }
}
