/**
 * FEC send side of one class towards one peer: the encoder, its adaptive controller, and where
 * parity goes. The Peer frames and seals what `encoder.pollParity()` returns.
 *
 * Adaptation (every probe interval, `adapt`): m from the tx loss of the paths the class used since
 * the last interval (share-weighted, the larger of a 1 s and a 5 s window), with the controller's
 * hysteresis. Congestion caps m (adaptive.ts): the class's own queue on a path's link dropped, or a
 * path loses while its RTT is inflated above its minimum (a queue building: random loss does not
 * queue), or the controller's own test sees loss rise with our sending rate while delay is inflated.
 */
import { MAX_LINKS } from '../constants.ts';
import { pathUsable, type PathRuntime } from '../pathmon/path.ts';
import { SHORT_WINDOW_MS } from '../pathmon/path-stats.ts';
import { AdaptiveParity, parityTable, requiredParity, residualLossRatio, type AdaptiveParityInput } from './adaptive.ts';
import { QUEUE_DELAY_MIN_MS, queueDelayInflated } from './congestion.ts';
import type { ErasureCodec } from './codec.ts';
import { FecEncoder, type FecParityShard } from './encoder.ts';
import { FEC_GROUP_COUNTER_MASK } from './limits.ts';
import type { ClassFecPolicy } from './policy.ts';

const FEC_LOSS_LONG_MS = 5000;
/**
 * A path's delay counts as inflated (a queue building) when srtt stands above a low percentile of
 * recent RTTs by more than the RTT's own variation explains (fec/congestion.ts): the all-time
 * minimum sank ~3 sigma below the mean on a jittery path and capped m at 1 (voice lost ~2%).
 */
/** Loss at or above this on a path with inflated delay is taken as congestion. */
const FEC_CONGESTION_MIN_LOSS_RATIO = 0.01;
/** Adaptation ticks between the controller's loss-with-rate comparisons. */
const FEC_RATE_TEST_TICKS = 10;
/** Paths one peer may have (wire: link indexes < MAX_LINKS on each side). */
export const MAX_PATHS_PER_PEER = 32;

/**
 * Bound on a parity datagram's bytes besides its shard, for groups of k: envelope 19 + AEAD tag 16 +
 * FecParity fields 29 + lengths 3 + 2k.
 */
export function parityOverheadBytes(k: number): number {
  return 19 + 16 + 29 + 3 + 2 * k;
}

/**
 * Scratch every FecTx shares (parityPath's candidates, adapt's per-path loss and share lists): both
 * are filled and read within one call. Per FecTx they were ~0.6 KB a hub peer with two FEC classes (issue 12).
 */
const candidateScratch = new Int32Array(MAX_PATHS_PER_PEER);
const lossScratch: number[] = [];
const shareScratch: number[] = [];
/**
 * adapt's controller input, shared the same way (update reads it and keeps nothing): a fresh one per
 * class per peer per probe interval, built with a conditional spread, was part of adapt's 2.8%
 * self time in the fleet traffic window (two FEC classes on every peer: 28,000 adapts in 5 s).
 */
const adaptInput: AdaptiveParityInput & { pathLossRatios: number[]; pathShares: number[] } = { pathLossRatios: lossScratch, pathShares: shareScratch, sendRateBps: undefined, congested: false, delayInflated: false };

export class FecTx {
  readonly encoder: FecEncoder;
  readonly adaptive: AdaptiveParity;
  /** Datagrams (data and parity) of the class per path since the last adaptation; made at the first (countPacket). */
  private pathPackets: Float64Array | undefined;
  /** m per early-flushed group size, rebuilt at each adaptation. */
  readonly table: Uint8Array;
  lossRatio = 0;
  paritySent = 0;
  parityBytes = 0;
  parityUnsent = 0;
  rotor = 0;
  adaptTicks = 0;
  /** Longest packet protected: its parity datagram must fit maxDatagramBytes. */
  readonly maxPacketBytes: number;
  tooLarge = 0;
  protectedBefore = 0;
  cappedBefore = 0;

  /**
   * Group ids start at a value derived from the edge's random epoch (no extra Rng draw), tagged
   * with the class. A rebuilt encoder (live policy change) continues past the old one's ids.
   */
  constructor(
    readonly classId: number,
    readonly policy: ClassFecPolicy,
    codec: ErasureCodec,
    epoch: number,
    maxDatagramBytes: number,
    firstGroupId?: number,
  ) {
    const start = firstGroupId !== undefined ? firstGroupId & FEC_GROUP_COUNTER_MASK : (Math.imul(epoch ^ Math.imul(classId + 1, 0x9e3779b1), 0x85ebca6b) >>> 0) & FEC_GROUP_COUNTER_MASK;
    const minM = Math.min(policy.minM, policy.maxM);
    this.encoder = new FecEncoder(codec, { k: policy.k, m: minM, flushMs: policy.flushMs, firstGroupId: start || 1, groupTag: classId, maxOverheadRatio: policy.maxOverheadRatio });
    this.adaptive = new AdaptiveParity({ k: policy.k, targetLossRatio: policy.targetResidualLossRatio, maxM: policy.maxM, criterion: 'packet' });
    this.table = new Uint8Array(policy.k + 1);
    this.maxPacketBytes = maxDatagramBytes - parityOverheadBytes(policy.k);
    if (minM > 0 && minM < policy.maxM) {
      parityTable(policy.k, 0, policy.targetResidualLossRatio, minM, 'packet', this.table);
      for (let k = 1; k <= policy.k; k++) this.table[k] = Math.max(this.table[k]!, minM);
      this.encoder.setParityTable(this.table);
    }
  }

  /** Carry the counters of the encoder this one replaces (live policy change). */
  inherit(before: FecTx): void {
    this.paritySent = before.paritySent;
    this.parityBytes = before.parityBytes;
    this.parityUnsent = before.parityUnsent;
    this.tooLarge = before.tooLarge;
    this.protectedBefore = before.protectedBefore + before.encoder.counters.protectedPackets;
    this.cappedBefore = before.cappedBefore + before.encoder.counters.parityCapped;
  }

  /**
   * Where a parity shard goes. 'spread': a usable non-backup path that carries none of the group's
   * data, round robin; else the data's path; else `fallback`. Never a DOWN, drained or held-down path.
   */
  parityPath(paths: readonly PathRuntime[], s: FecParityShard, fallback: () => PathRuntime | undefined): PathRuntime | undefined {
    const mask = s.dataPathMask;
    if (this.policy.parityPlacement === 'spread') {
      let n = 0;
      for (const p of paths) {
        if (p.id < 32 && (mask & (1 << p.id)) !== 0) continue;
        if (p.tier !== 'backup' && pathUsable(p)) candidateScratch[n++] = p.id;
      }
      if (n > 0) return paths[candidateScratch[this.rotor++ % n]!];
    }
    for (const p of paths) if (p.id < 32 && (mask & (1 << p.id)) !== 0 && pathUsable(p)) return p;
    return fallback();
  }

  /** A datagram of the class (data or parity) went out on path `pathId`. */
  countPacket(pathId: number): void {
    (this.pathPackets ??= new Float64Array(MAX_PATHS_PER_PEER))[pathId]!++;
  }

  /** Every probe interval. `dropsOf(p)`: the class's queue drops on the path's link so far. */
  adapt(nowMs: number, paths: readonly PathRuntime[], dropsOf: (p: PathRuntime) => number): void {
    const losses = lossScratch;
    const shares = shareScratch;
    losses.length = 0;
    shares.length = 0;
    let rate = 0;
    let congested = false;
    let delayInflated = false;
    for (const p of paths) {
      const n = this.pathPackets?.[p.id] ?? 0;
      const dropped = dropsOf(p);
      const droppedNow = dropped > p.classDropsSeen[this.classId]!;
      p.classDropsSeen[this.classId] = dropped;
      if (n === 0) continue;
      if (droppedNow) congested = true;
      const short = p.stats.txLossRatio(nowMs, SHORT_WINDOW_MS) ?? 0;
      const long = p.stats.txLossRatio(nowMs, FEC_LOSS_LONG_MS) ?? 0;
      losses.push(Math.max(short, long));
      shares.push(n);
      rate += p.txRateBps;
      // The base RTT (a percentile of 300 samples, sorted again after every new sample) only when a
      // queue is possible: the base is never below the all-time minimum RTT, so an srtt within
      // QUEUE_DELAY_MIN_MS of that minimum is not inflated whatever the base (same verdict; the
      // sort was 1.7% of the fleet's traffic window, where every path is clean).
      const st = p.stats;
      const inflated =
        st.srttMs !== undefined &&
        st.srttMs - st.minRttMs > QUEUE_DELAY_MIN_MS &&
        queueDelayInflated({ srttMs: st.srttMs, baseRttMs: st.rttBaseMs(), rttJitterMs: st.rttJitterMs, rttSamples: st.rttSampleCount });
      if (inflated) {
        delayInflated = true;
        // Losing while a queue builds on the path: congestion, not random loss.
        if (Math.max(short, long) >= FEC_CONGESTION_MIN_LOSS_RATIO) congested = true;
      }
    }
    this.pathPackets?.fill(0);
    if (shares.length === 0) {
      // Idle: the next burst starts with the m for the cleanest usable path's probe-measured loss
      // (a call starting on a 5% path was unprotected until the first tick with data: 10 of a
      // seed's 21 residual losses in sim/tools/fec-single-link.ts were in its first 2 s). A clean
      // path reads 0: nothing is sent idle, and a clean start costs nothing.
      let best = Infinity;
      for (const p of paths) {
        if (!pathUsable(p) || p.tier === 'backup') continue;
        const loss = Math.max(p.stats.txLossRatio(nowMs, SHORT_WINDOW_MS) ?? 0, p.stats.txLossRatio(nowMs, FEC_LOSS_LONG_MS) ?? 0);
        if (loss < best) best = loss;
      }
      if (best === Infinity) return;
      losses.push(best);
      shares.push(1);
    }
    const pol = this.policy;
    this.adaptTicks++;
    const withRate = this.adaptTicks % FEC_RATE_TEST_TICKS === 0;
    const input = adaptInput;
    input.pathLossRatios = losses;
    input.pathShares = shares;
    input.sendRateBps = withRate ? rate : undefined; // the controller's rate test runs only when defined
    input.congested = congested;
    input.delayInflated = delayInflated;
    const adaptiveM = this.adaptive.update(nowMs, input);
    this.lossRatio = this.adaptive.lossRatio;
    const m = Math.min(pol.maxM, Math.max(pol.minM, adaptiveM));
    if (m !== this.encoder.m) this.encoder.setM(m);
    if (m > 0 && pol.minM < pol.maxM) {
      parityTable(pol.k, this.lossRatio, pol.targetResidualLossRatio, m, 'packet', this.table);
      if (pol.minM > 0) for (let k = 1; k <= pol.k; k++) this.table[k] = Math.max(this.table[k]!, pol.minM);
      this.encoder.setParityTable(this.table);
    }
  }

  /**
   * The loss FEC would leave on a path losing `lossRatio` of the class's packets: at the m the
   * adaptation would pick for that loss (within maxM and the overhead budget), for full groups.
   * None while the controller suspects congestion (it caps m then: parity would feed the queue).
   */
  slaView(lossRatio: number, nowMs: number): { residualRatio: number; k: number; m: number } | undefined {
    if (this.policy.slaAfterFec !== true || this.adaptive.congested(nowMs)) return undefined;
    const pol = this.policy;
    const c = this.encoder.counters;
    // The groups this class really makes (time-flushed groups at low rates are small) and the
    // share of its packets FEC can protect (too-large ones go bare): a model of full k = 20 groups
    // would keep a class on a path FEC cannot repair for it.
    const k = c.groups > 0 ? Math.max(1, Math.min(pol.k, Math.round(c.protectedPackets / c.groups))) : pol.k;
    const protectedShare = c.protectedPackets + this.tooLarge > 0 ? c.protectedPackets / (c.protectedPackets + this.tooLarge) : 1;
    // The m the adaptation would choose for this loss (it gets there within a few probe intervals
    // of measuring it), within maxM and the budget for groups of this size.
    const budgetM = Math.max(pol.minM, Math.floor(pol.maxOverheadRatio * k));
    const m = requiredParity(k, lossRatio, pol.targetResidualLossRatio, Math.min(pol.maxM, budgetM), 'packet');
    const residualRatio = protectedShare * residualLossRatio(k, m, lossRatio) + (1 - protectedShare) * lossRatio;
    return { residualRatio, k, m };
  }

  /** Send-side fields of a class snapshot. */
  snapshot(nowMs: number, wireBytes: number): Record<string, number | boolean> {
    const e = this.encoder;
    return {
      fecK: this.policy.k,
      fecM: e.m,
      fecProtectedPackets: this.protectedBefore + e.counters.protectedPackets,
      fecParitySent: this.paritySent,
      fecParityBytes: this.parityBytes,
      fecDataWireBytes: wireBytes,
      fecOverheadRatio: wireBytes > 0 ? this.parityBytes / wireBytes : 0,
      fecLossRatio: this.lossRatio,
      fecCongested: this.adaptive.congested(nowMs),
      fecTooLarge: this.tooLarge,
      fecParityCapped: this.cappedBefore + e.counters.parityCapped,
    };
  }
}
