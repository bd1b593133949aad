/**
 * Statistics of one path (local link x remote endpoint), fed by probes, their answers, data frames
 * and the peer's receive reports.
 * - RTT: from probe answers (replies, or echoes in the peer's probes: peer-echo.ts), STAMP-style:
 *   rtt = (now - tx) - peer hold time, so the peer's processing time is excluded. Smoothed (RFC 6298 weights) plus a ring of recent samples for
 *   percentiles.
 * - Jitter, two estimators over the same probe interarrival differences D = (Rj - Ri) - (Sj - Si)
 *   (the peer's clock offset cancels in D):
 *     display: RFC 3550 section 6.4.1, J += (|D| - J) / 16 (`jitterMs`): what operators know and
 *       compare with other tools; at 10 probes/s its time constant is 1.6 s, so it takes ~3 s to
 *       follow a step up and longer to come back down.
 *     decisions: `jitterDecisionMs`, the mean |D| of a window's probes without outliers (|D|
 *       above 4 x the window's median: one late probe makes two of those), which is what RFC
 *       3550 converges to, over no more than the window. Taken as the lower of the last 1 s and
 *       last 2 s windows: a fall shows within a second (RFC 3550 needs 1-3 s to come back
 *       under a threshold), a rise must hold over 2 s of probes (1.2-1.6 s to cross; RFC 3550
 *       1.7-2.6 s), and noise stays near RFC 3550's: with true jitter at 2/3 of an SLA, ~1% of
 *       seconds read above it (the 1 s window alone: 5%; its median: 13%). Below 6 probes in a
 *       window RFC 3550 stands in. Steering judges jitter SLAs on it: we report it to the peer
 *       (`report().jitterUs`), and `txJitterMs` is the peer's report of it.
 * - Queueing delay: srtt against a low percentile of recent RTT samples (`rttBaseMs`), with the
 *   RTT's own sample-to-sample variation (`rttJitterMs`) as the scale: what FEC's congestion test
 *   needs (fec/congestion.ts). The all-time minimum RTT is not a baseline on a jittery path: with
 *   normal delay variation it sits ~3 sigma below the mean after a few hundred samples.
 * - Loss, per direction:
 *     rx (peer -> us): from the per-path sequence numbers we receive (probes and data share one
 *       sequence space per path), counted in receive buckets over short and long windows.
 *     tx (us -> peer): from the peer's reports {received, highestSeq} carried in its probes;
 *       loss over a window = 1 - d(received) / d(highestSeq) between two reports.
 *   Short window ~1 s (fast reaction), long window ~30 s (what the dashboard shows).
 */

import { lossUpperBound } from './loss-bounds.ts';
import { REPORT_WINDOW_MAX_MS, ReportRing, SentMarks, type Report } from './report-ring.ts';
import { RTT_BASE_PERCENTILE, RttSamples } from './rtt-samples.ts';
import { RxMarks } from './rx-marks.ts';

export const SHORT_WINDOW_MS = 1000;
/** The longest window any caller asks for (the report ring drops what no window reaches). */
export const LONG_WINDOW_MS = REPORT_WINDOW_MAX_MS;
/** |D| samples kept for the short-window jitter (2 s of 100 ms probes, with room). */
const D_KEPT = 32;
const D_AT = D_KEPT;
const D_TRANSIT = 2 * D_KEPT;
/** Fewest probes in the window for the fast jitter estimate (below: RFC 3550 stands in). */
export const FAST_JITTER_MIN_SAMPLES = 6;
/** |D| above this many times the window's median is an outlier (a late probe), not jitter. */
const JITTER_OUTLIER_MEDIANS = 4;
/** The decision estimator's longer window: a rise must hold this long. */
export const DECISION_JITTER_LONG_WINDOW_MS = 2000;
/**
 * A sure rise counts sooner (jitterSureMs): over the last 500 ms (at least the last 4 probes of the
 * last second: a storm's late probes thin out) the median |D| and half the median lateness
 * (transit over the 10th percentile of the ring's older probes) must both be high.
 */
export const JITTER_SURE_WINDOW_MS = 500;
const JITTER_SURE_MIN_SAMPLES = 4;
const JITTER_SURE_MIN_BASE = 8; // older probes the lateness base needs (of D_KEPT), and its percentile:
const JITTER_SURE_BASE_PERCENTILE = 10;
/** A peer jitter report older than this is not used (our own view stands in). */
const PEER_JITTER_FRESH_MS = 1000;
/** Receive-side buckets of 100 ms for rx loss windows. */
const RX_BUCKET_MS = 100;
const RX_BUCKETS = LONG_WINDOW_MS / RX_BUCKET_MS + 1;
/** Recent sequence numbers remembered per path (bitmap). */
const SEEN_WINDOW = 4096;
/** Sequence numbers that became "behind the highest" less than this long ago are not yet judged lost (they may be reordered). */
export const REORDER_GRACE_MS = 100;
/** Extra time before an unreported packet counts as lost (scheduling, report interval jitter). */
const OVERDUE_MARGIN_MS = 150;
/**
 * SLA decisions need at least this many lost packets in the window: on an idle path (10 probes a
 * second) a single lost probe would otherwise read as 10% loss and break every class's SLA for the
 * whole re-entry window. 5% real loss on a voice path (60 packets/s) still gives 3 within ~1 s.
 */
export const MIN_LOST_FOR_SLA = 3;
/** Below this many packets in a window the loss estimate is not trusted. */
export const MIN_LOSS_SAMPLES = 10;

/** The jitter estimators' scratch, shared by every PathStats (a hub has thousands): filled and read within one call. */
const lateScratch = new Float64Array(D_KEPT);
const dScratch = new Float64Array(D_KEPT);

export class PathStats {
  srttMs: number | undefined;
  rttVarMs = 0;
  minRttMs = Infinity;
  lastRttMs: number | undefined;
  jitterMs = 0;
  /** Mean |difference| between successive RTT samples (RFC 3550's gain), both directions' variation. */
  rttJitterMs = 0;
  /** Recent samples for percentiles (rtt-samples.ts). */
  private readonly rtts = new RttSamples();
  private lastProbeTransit: number | undefined;
  /**
   * Recent |D| samples (RFC 3550) at [i], their times at [D_AT + i], and each one's probe transit
   * (arrival minus the peer's send time, for jitterSureMs) at [D_TRANSIT + i]. The rings below
   * share one typed array each too: a separate one costs ~180 B of objects a path (issue 12).
   */
  private readonly dRing = new Float64Array(3 * D_KEPT);
  private dHead = 0;
  private dCount = 0;
  /** Jitter the peer last reported for our direction, and when. */
  peerJitterMs: number | undefined;
  private peerJitterAtMs = -Infinity;

  // rx direction
  /** Packets received on this path (wrapping uint32 on the wire). */
  rxReceived = 0;
  rxHighestSeq = 0;
  private rxSeqBase: number | undefined;
  /** Which recent sequence numbers arrived: duplicate filter and the reorder grace of report(). */
  private readonly seenBits = new Uint32Array(SEEN_WINDOW / 32);
  /** "Highest as of a moment" marks, for report()'s reorder grace (rx-marks.ts). */
  private readonly marks = new RxMarks();
  /** Per 100 ms: packets received at [b], sequence numbers expected at [RX_BUCKETS + b]. */
  private readonly rxBuckets = new Uint32Array(2 * RX_BUCKETS);
  private rxBucketEpoch = -1;

  /** Sequence numbers expected so far (highest - first + 1, through restarts). */
  rxExpectedTotal = 0;
  rxReceivedAtDropNote = 0; // rxReceived when the link's socket drops were last shared out (local-drops.ts)

  // tx direction
  private readonly reports = new ReportRing();
  /** Ring of (time, highest seq sent) marks, for overdue detection in onPeerReport. */
  private readonly sentMarks = new SentMarks();
  private firstReport: Report | undefined;

  // ---- RTT and jitter --------------------------------------------------------------------

  onRttSample(rttMs: number): void {
    if (!(rttMs >= 0) || !Number.isFinite(rttMs)) return;
    this.lastRttMs = rttMs;
    if (this.srttMs === undefined) {
      this.srttMs = rttMs;
      this.rttVarMs = rttMs / 2;
    } else {
      this.rttVarMs += (Math.abs(this.srttMs - rttMs) - this.rttVarMs) / 4;
      this.srttMs += (rttMs - this.srttMs) / 8;
    }
    if (rttMs < this.minRttMs) this.minRttMs = rttMs;
    const prev = this.rtts.last();
    if (prev !== undefined) {
      // Running mean over the first 16 differences, then RFC 3550's 1/16 gain: a fresh path's
      // variation is known after a second of probes, not after the EWMA's ~5 s climb.
      this.rttJitterMs += (Math.abs(rttMs - prev) - this.rttJitterMs) / Math.min(16, this.rtts.count);
    }
    this.rtts.add(rttMs);
  }

  /** A probe sent at peer time `txMs` arrived at our time `nowMs`. */
  onProbeArrival(nowMs: number, txMs: number): void {
    const transit = nowMs - txMs;
    if (this.lastProbeTransit !== undefined) {
      const d = Math.abs(transit - this.lastProbeTransit);
      this.jitterMs += (d - this.jitterMs) / 16;
      this.dRing[this.dHead] = d;
      this.dRing[D_AT + this.dHead] = nowMs;
      this.dRing[D_TRANSIT + this.dHead] = transit;
      this.dHead = (this.dHead + 1) % D_KEPT;
      if (this.dCount < D_KEPT) this.dCount++;
    }
    this.lastProbeTransit = transit;
  }

  /**
   * Jitter over the last `windowMs` as the mean |D| of its probes without the two largest: what
   * the RFC 3550 estimator converges to, without its 1.6 s time constant (at 10 probes/s the
   * EWMA needs ~3 s to climb from 8 to 50 ms in a storm). Dropping the two largest keeps one late
   * probe (which makes two large |D|) from reading as a storm. Undefined below 6 samples.
   */
  jitterRecentMs(nowMs: number, windowMs: number): number | undefined {
    const vals = dScratch;
    let n = 0;
    for (let i = 0; i < this.dCount; i++) {
      const idx = (this.dHead - 1 - i + D_KEPT) % D_KEPT;
      if (this.dRing[D_AT + idx]! < nowMs - windowMs) break;
      vals[n++] = this.dRing[idx]!;
    }
    if (n < 6) return undefined;
    sortPrefix(vals, 0, n);
    let sum = 0;
    for (let i = 0; i < n - 2; i++) sum += vals[i]!;
    return sum / (n - 2);
  }

  /**
   * Mean |D| of the probes of the last `windowMs` (at most 3 s) without outliers above 4 x the
   * window's median: RFC 3550's scale over just that window. Undefined below
   * FAST_JITTER_MIN_SAMPLES probes. No allocation.
   */
  jitterFastMs(nowMs: number, windowMs = SHORT_WINDOW_MS): number | undefined {
    const vals = dScratch;
    let n = 0;
    for (let i = 0; i < this.dCount; i++) {
      const idx = (this.dHead - 1 - i + D_KEPT) % D_KEPT;
      if (this.dRing[D_AT + idx]! < nowMs - windowMs) break;
      vals[n++] = this.dRing[idx]!;
    }
    if (n < FAST_JITTER_MIN_SAMPLES) return undefined;
    const used = vals;
    sortPrefix(used, 0, n);
    const median = medianOf(used, 0, n);
    const limit = JITTER_OUTLIER_MEDIANS * median;
    let sum = 0;
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const d = used[i]!;
      if (d > limit) break; // sorted: the rest are larger
      sum += d;
      kept++;
    }
    return kept > 0 ? sum / kept : 0;
  }

  /**
   * Jitter of what arrives on this path as decisions use it (SLA exits and re-entry, what we
   * report to the peer): the lower of the last 1 s and 2 s estimates (jitterFastMs), RFC 3550
   * when a window holds too few probes. A fall shows within a second, a rise once it has held
   * for about 1.5 s (see the file comment for the figures).
   */
  jitterDecisionMs(nowMs: number): number {
    const short = this.jitterFastMs(nowMs, SHORT_WINDOW_MS) ?? this.jitterMs;
    const long = this.jitterFastMs(nowMs, DECISION_JITTER_LONG_WINDOW_MS) ?? this.jitterMs;
    const held = short < long ? short : long;
    return Math.max(held, this.jitterSureMs(nowMs, held));
  }

  /**
   * A sure jitter rise over the last JITTER_SURE_WINDOW_MS, before the 2 s window holds it: the
   * lower of the window's median |D| and half its probes' median lateness (transit above the 10th
   * percentile of the ring's older probes, ~3 s). Both must be high: one late probe makes two large
   * |D| (the median ignores them); a delay step makes every probe late but |D| small; a jittery
   * path's median of 5 |D| reads over its mean now and then, its lateness rarely. 0 when there are
   * too few probes or the median |D| is not over `aboveMs` (no second sort).
   */
  jitterSureMs(nowMs: number, aboveMs = 0): number {
    const d = dScratch;
    const late = lateScratch;
    let n = 0;
    let i = 0;
    for (; i < this.dCount; i++) {
      const idx = (this.dHead - 1 - i + D_KEPT) % D_KEPT;
      const ageMs = nowMs - this.dRing[D_AT + idx]!;
      if (ageMs > JITTER_SURE_WINDOW_MS && (n >= JITTER_SURE_MIN_SAMPLES || ageMs > SHORT_WINDOW_MS)) break;
      d[n] = this.dRing[idx]!;
      late[n++] = this.dRing[D_TRANSIT + idx]!;
    }
    const older = this.dCount - i;
    if (n < JITTER_SURE_MIN_SAMPLES || older < JITTER_SURE_MIN_BASE) return 0;
    sortPrefix(d, 0, n);
    const medD = medianOf(d, 0, n);
    if (medD <= aboveMs) return 0;
    // The older probes' transits after the window's own in `late`, sorted there.
    for (let k = 0; k < older; k++) late[n + k] = this.dRing[D_TRANSIT + ((this.dHead - 1 - n - k + 2 * D_KEPT) % D_KEPT)]!;
    sortPrefix(late, n, n + older);
    const baseMs = late[n + Math.floor((older * JITTER_SURE_BASE_PERCENTILE) / 100)]!;
    for (let k = 0; k < n; k++) late[k] = late[k]! - baseMs;
    sortPrefix(late, 0, n);
    const medLate = medianOf(late, 0, n);
    return Math.min(medD, medLate / 2);
  }

  /**
   * The earlier decision view, kept for callers that still read it: the RFC 3550 estimate, or the
   * last second's trimmed mean if higher (fast up, RFC 3550's pace down). Decisions now use
   * jitterDecisionMs.
   */
  jitterViewMs(nowMs: number): number {
    const recent = this.jitterRecentMs(nowMs, SHORT_WINDOW_MS);
    return recent !== undefined && recent > this.jitterMs ? recent : this.jitterMs;
  }

  /**
   * Jitter of what WE send on this path: the peer measures it on our probes and reports it. The
   * two directions differ (LTE's 10 Mbit/s uplink queues, its 40 Mbit/s downlink does not), and
   * we steer our own sending. Our receive-side decision view stands in until the peer has
   * reported (and when its reports stop: an old peer, or reports lost for a second).
   */
  txJitterMs(nowMs: number): number {
    if (this.peerJitterMs !== undefined && nowMs - this.peerJitterAtMs <= PEER_JITTER_FRESH_MS) return this.peerJitterMs;
    return this.jitterDecisionMs(nowMs);
  }

  /** The peer's report of the jitter it sees on our probes (microseconds; 0 = it does not know yet). */
  onPeerJitter(nowMs: number, jitterUs: number | undefined): void {
    if (jitterUs === undefined || !(jitterUs > 0)) return;
    this.peerJitterMs = jitterUs / 1000;
    this.peerJitterAtMs = nowMs;
  }

  /**
   * The path's queue-free RTT for congestion tests: the RTT_BASE_PERCENTILE-th percentile of the
   * recent samples (30 s of probes), not the all-time minimum, which on a path with normal delay
   * variation sits ~3 sigma below the mean and makes every srtt look inflated. No allocation.
   */
  rttBaseMs(): number | undefined {
    return this.rttPercentileMs(RTT_BASE_PERCENTILE);
  }

  /** RTT samples taken so far. */
  get rttSampleCount(): number {
    return this.rtts.count;
  }

  /** RTT percentile (0..100) over the recent samples (rtt-samples.ts); undefined before any. */
  rttPercentileMs(p: number): number | undefined {
    return this.rtts.percentileMs(p);
  }

  // ---- rx direction ----------------------------------------------------------------------

  /** A frame with per-path sequence `seq` arrived on this path. Duplicates are ignored. */
  onReceiveSeq(nowMs: number, seq: number): void {
    seq = seq >>> 0;
    this.rollRxBuckets(nowMs);
    const bucket = Math.floor(nowMs / RX_BUCKET_MS) % RX_BUCKETS;
    if (this.rxSeqBase === undefined) {
      this.rxSeqBase = seq;
      this.rxHighestSeq = seq;
      this.seenBits.fill(0);
      this.markSeen(seq);
      this.rxReceived = (this.rxReceived + 1) >>> 0;
      this.marks.note(nowMs, seq, this.rxReceived);
      this.rxBuckets[bucket]!++;
      this.rxBuckets[RX_BUCKETS + bucket]!++;
      this.rxExpectedTotal++;
      return;
    }
    // Serial-number arithmetic (RFC 1982) on uint32 sequences.
    const ahead = (seq - this.rxHighestSeq) | 0;
    if (ahead > 0) {
      // `ahead` new sequence numbers are now expected; gaps are losses until filled.
      const steps = Math.min(ahead, SEEN_WINDOW);
      for (let i = 1; i < steps; i++) this.clearSeen((this.rxHighestSeq + i) >>> 0);
      this.markSeen(seq);
      this.rxBuckets[RX_BUCKETS + bucket] = this.rxBuckets[RX_BUCKETS + bucket]! + Math.min(ahead, 1_000_000);
      this.rxExpectedTotal += Math.min(ahead, 1_000_000);
      this.rxHighestSeq = seq;
      this.marks.note(nowMs, seq, (this.rxReceived + 1) >>> 0);
    } else {
      // Late (reordered) or duplicate. Too old to tell: ignore rather than double count.
      if (-ahead >= SEEN_WINDOW || this.isSeen(seq)) return;
      this.markSeen(seq);
      this.marks.noteLate(seq);
    }
    this.rxReceived = (this.rxReceived + 1) >>> 0;
    this.rxBuckets[bucket]!++;
  }

  /** `n` of this path's datagrams died in our own receive socket, not on the path: received (pathmon/local-drops.ts). */
  onLocalDrops(nowMs: number, n: number): void {
    if (!(n > 0) || this.rxSeqBase === undefined) return;
    this.rollRxBuckets(nowMs);
    const bucket = Math.floor(nowMs / RX_BUCKET_MS) % RX_BUCKETS;
    this.rxReceived = (this.rxReceived + n) >>> 0;
    this.rxBuckets[bucket] = this.rxBuckets[bucket]! + n;
  }

  /**
   * What we report to the peer for its tx-loss measurement: only sequence numbers that were
   * already below the highest seen REORDER_GRACE_MS ago, and how many of those we received.
   * Reporting only settled sequence numbers keeps packets still in flight behind a reordered
   * one from counting as lost (with 10 ms of jitter at 1 kpps, ~10 packets are always
   * "missing" at the head), at any packet rate.
   */
  report(nowMs: number): { received: number; highestSeq: number; jitterUs: number } {
    return this.reportInto(nowMs, { received: 0, highestSeq: 0, jitterUs: 0 });
  }

  /** report() into `out` (the probe writer's fields: no object per probe). */
  reportInto<T extends { received: number; highestSeq: number; jitterUs: number }>(nowMs: number, out: T): T {
    if (this.rxSeqBase === undefined) {
      out.received = out.highestSeq = out.jitterUs = 0;
      return out;
    }
    // Latest highest-seq mark that is at least the grace old.
    const mark = this.marks.newestAtOrBefore(nowMs - REORDER_GRACE_MS);
    const settled = mark < 0 ? (this.rxSeqBase - 1) >>> 0 : this.marks.seqAt(mark);
    const pending = (this.rxHighestSeq - settled) >>> 0;
    let received: number;
    if (pending <= SEEN_WINDOW) {
      // Exact: the bitmap says which of the newer sequence numbers arrived.
      let recentSeen = 0;
      for (let i = 0; i < pending; i++) if (this.isSeen((this.rxHighestSeq - i) >>> 0)) recentSeen++;
      received = (this.rxReceived - recentSeen) >>> 0;
    } else {
      // Past the bitmap (rx-marks.ts): what had arrived at the mark, plus its late arrivals since.
      received = mark < 0 ? 0 : this.marks.settledReceivedAt(mark);
    }
    // 0 on the wire means "not known yet", so a measured jitter of zero goes out as 1 us.
    const jitterUs = this.lastProbeTransit === undefined ? 0 : Math.min(0xffffffff, Math.max(1, Math.round(this.jitterDecisionMs(nowMs) * 1000)));
    out.received = received;
    out.highestSeq = settled;
    out.jitterUs = jitterUs;
    return out;
  }

  private markSeen(seq: number): void {
    const bit = seq % SEEN_WINDOW;
    this.seenBits[bit >>> 5]! |= 1 << (bit & 31);
  }

  private clearSeen(seq: number): void {
    const bit = seq % SEEN_WINDOW;
    this.seenBits[bit >>> 5]! &= ~(1 << (bit & 31));
  }

  private isSeen(seq: number): boolean {
    const bit = seq % SEEN_WINDOW;
    return (this.seenBits[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  private rollRxBuckets(nowMs: number): void {
    const epoch = Math.floor(nowMs / RX_BUCKET_MS);
    if (this.rxBucketEpoch < 0) {
      this.rxBucketEpoch = epoch;
      return;
    }
    const steps = Math.min(epoch - this.rxBucketEpoch, RX_BUCKETS);
    for (let i = 1; i <= steps; i++) {
      const b = (this.rxBucketEpoch + i) % RX_BUCKETS;
      this.rxBuckets[b] = 0;
      this.rxBuckets[RX_BUCKETS + b] = 0;
    }
    if (epoch > this.rxBucketEpoch) this.rxBucketEpoch = epoch;
  }

  /** Loss of the peer -> us direction over the last `windowMs`; undefined with too few samples. */
  rxLossRatio(nowMs: number, windowMs: number): number | undefined {
    this.rollRxBuckets(nowMs);
    const n = Math.min(Math.ceil(windowMs / RX_BUCKET_MS), RX_BUCKETS - 1);
    let recv = 0;
    let expected = 0;
    const epoch = Math.floor(nowMs / RX_BUCKET_MS);
    // Skip the current (partial) bucket: its gaps may still be filled by reordered packets.
    for (let i = 1; i <= n; i++) {
      const b = (((epoch - i) % RX_BUCKETS) + RX_BUCKETS) % RX_BUCKETS;
      recv += this.rxBuckets[b]!;
      expected += this.rxBuckets[RX_BUCKETS + b]!;
    }
    if (expected < MIN_LOSS_SAMPLES) return undefined;
    return Math.max(0, Math.min(1, 1 - recv / expected));
  }

  // ---- tx direction ----------------------------------------------------------------------

  /** We sent sequence `seq` on this path now (one mark per 10 ms is kept). */
  onSent(nowMs: number, seq: number): void {
    this.sentMarks.note(nowMs, seq);
  }

  /**
   * The peer reports what it received from us on this path. A one-way failure freezes the peer's
   * reported highest sequence while the reports themselves keep coming (the other direction
   * works); left alone, "nothing new" would read as "no loss". So what we sent long enough ago
   * that it must have settled at the peer (one RTT + the peer's reorder grace + a margin) counts as
   * expected even when the report does not mention it: unreported means lost. A later report that
   * does cover those packets corrects the figure (received catches up).
   *
   * A report of 0 received up to sequence 0 means the peer has seen nothing from us yet
   * (reportInto): no baseline. Taken as one, with our sequence numbers carrying on (the peer
   * restarted, we did not; these statistics were reset on its new epoch), the next report made
   * everything we ever sent on the path expected and none of it received: 100% loss, every class
   * out of SLA and flows bouncing between paths for seconds after any spoke restart with traffic.
   */
  onPeerReport(nowMs: number, received: number, highestSeq: number): void {
    if (received === 0 && highestSeq === 0) return;
    if (this.srttMs !== undefined) {
      const due = this.sentMarks.sentBy(nowMs - this.srttMs - REORDER_GRACE_MS - OVERDUE_MARGIN_MS);
      if (due !== undefined && ((due - highestSeq) | 0) > 0) highestSeq = due;
    }
    const n = this.reports.length;
    if (n > 0 && ((highestSeq - this.reports.highestOf(n - 1)) | 0) < 0) return; // stale (reordered) report
    this.reports.push(nowMs, received >>> 0, highestSeq >>> 0);
    this.firstReport ??= { atMs: nowMs, received: received >>> 0, highestSeq: highestSeq >>> 0 };
  }

  private readonly lastScratch: Report = { atMs: 0, received: 0, highestSeq: 0 };
  private readonly firstScratch: Report = { atMs: 0, received: 0, highestSeq: 0 };

  /**
   * Loss of the us -> peer direction over about the last `windowMs`; undefined with too few samples.
   * The window runs from report windowStart (the newest at least `windowMs` before the newest, or
   * the oldest) to the newest, read by index: steering and FEC ask a dozen of these a path per probe
   * interval. One query on a full ring (tmp microbenchmark, 1/3/5/10 s windows, load 5.3): 602-863 ns
   * with the backwards scan, 113-136 ns with the binary search and report objects, 51-69 ns now.
   */
  txLossRatio(nowMs: number, windowMs: number, minLost = 0): number | undefined {
    const r = this.reports;
    const n = r.length;
    if (n < 2 || nowMs - r.atMsOf(n - 1) > windowMs + LONG_WINDOW_MS) return undefined;
    const i = r.windowStart(windowMs);
    const expected = (r.highestOf(n - 1) - r.highestOf(i)) >>> 0;
    const received = (r.receivedOf(n - 1) - r.receivedOf(i)) >>> 0;
    if (expected < MIN_LOSS_SAMPLES) return undefined;
    // With few samples one lost probe reads as 10%: below minLost losses, report none.
    if (expected - Math.min(received, expected) < minLost) return 0;
    return Math.max(0, Math.min(1, 1 - received / expected));
  }

  /** The us -> peer direction lost nothing in reports spanning the last `windowMs`, MIN_LOSS_SAMPLES sent or more (false: unknown). */
  txLossless(nowMs: number, windowMs: number): boolean {
    const r = this.reports;
    const n = r.length;
    if (n < 3 || nowMs - r.atMsOf(n - 1) > windowMs) return false;
    const i = r.windowStart(windowMs);
    const sent = (r.highestOf(n - 1) - r.highestOf(i)) >>> 0;
    return r.atMsOf(n - 1) - r.atMsOf(i) >= windowMs && sent >= MIN_LOSS_SAMPLES && ((r.receivedOf(n - 1) - r.receivedOf(i)) >>> 0) >= sent;
  }

  /**
   * Lost and sent packets of the us -> peer direction over about the last `windowMs` (the same
   * window as txLossRatio), for confidence bounds; undefined with too few samples.
   */
  txLossCounts(nowMs: number, windowMs: number): { lost: number; sent: number } | undefined {
    const r = this.reports;
    const n = r.length;
    if (n < 2 || nowMs - r.atMsOf(n - 1) > windowMs + LONG_WINDOW_MS) return undefined;
    const i = r.windowStart(windowMs);
    const sent = (r.highestOf(n - 1) - r.highestOf(i)) >>> 0;
    if (sent < MIN_LOSS_SAMPLES) return undefined;
    return { lost: sent - Math.min((r.receivedOf(n - 1) - r.receivedOf(i)) >>> 0, sent), sent };
  }

  /**
   * The lowest upper confidence bound (Wilson, `z`) on the us -> peer loss over the windows that
   * end at the last report, are at least `minWindowMs` long and start no more than `maxWindowMs`
   * ago: "the loss is below this, with confidence, over some recent stretch". 1 when no such window
   * holds a packet. Every loss counts: this judges recovery.
   */
  txLossBestUpperBound(nowMs: number, minWindowMs: number, maxWindowMs: number, z: number): number {
    const r = this.reports;
    const n = r.length;
    let best = 1;
    if (n < 2) return best;
    const last = r.at(n - 1, this.lastScratch)!;
    if (nowMs - last.atMs > minWindowMs + LONG_WINDOW_MS) return best;
    const first = this.firstScratch;
    for (let i = n - 2; i >= 0; i--) {
      r.at(i, first);
      if (nowMs - first.atMs > maxWindowMs) break;
      if (last.atMs - first.atMs < minWindowMs) continue;
      const sent = (last.highestSeq - first.highestSeq) >>> 0;
      if (sent === 0) continue;
      const lost = sent - Math.min((last.received - first.received) >>> 0, sent);
      const ub = lossUpperBound(lost, sent, z);
      if (ub < best) best = ub;
    }
    return best;
  }

  /** Loss of the us -> peer direction since the first report (the whole session). */
  txLossTotalRatio(): number | undefined {
    const first = this.firstReport;
    if (!first || this.reports.length === 0) return undefined;
    const last = this.reports.at(this.reports.length - 1, this.lastScratch)!;
    const expected = (last.highestSeq - first.highestSeq) >>> 0;
    if (expected < MIN_LOSS_SAMPLES) return undefined;
    return Math.max(0, 1 - ((last.received - first.received) >>> 0) / expected);
  }

  /** Loss of the peer -> us direction over the whole session. */
  rxLossTotalRatio(): number | undefined {
    if (this.rxExpectedTotal < MIN_LOSS_SAMPLES) return undefined;
    return Math.max(0, 1 - this.rxReceived / this.rxExpectedTotal);
  }

  /** Forget the direction measurements (after the peer restarted). */
  resetTx(): void {
    this.reports.clear();
    this.firstReport = undefined;
    this.peerJitterMs = undefined;
  }
}

/** Median of sorted[from, from + n), n > 0. */
function medianOf(sorted: Float64Array, from: number, n: number): number {
  return n % 2 === 1 ? sorted[from + (n - 1) / 2]! : (sorted[from + n / 2 - 1]! + sorted[from + n / 2]!) / 2;
}

/**
 * Sorts a[from, to) ascending in place: insertion sort, for the jitter estimators' at most D_KEPT
 * values. The same order as `a.subarray(from, to).sort()` for the finite numbers they hold, without
 * the subarray object and the builtin's call per sort: jitter was recomputed for every probe and
 * probe reply a path sends (report()), 3-4 sorts each, 2.3% of the fleet's traffic window.
 */
function sortPrefix(a: Float64Array, from: number, to: number): void {
  for (let i = from + 1; i < to; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= from && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
}
