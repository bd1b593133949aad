/**
 * Rings one path keeps for its tx-loss figures (path-stats.ts): the peer's receive reports, and
 * marks of what we had sent when. Both grow with the rate and shrink when the path goes quiet: a
 * hub keeps them for two paths of each of a thousand spokes.
 */

/** The windows callers ask for are at most this long (path-stats.ts LONG_WINDOW_MS). */
export const REPORT_WINDOW_MAX_MS = 30_000;
/** Reports kept for tx-loss windows (about 30 s at one per 100 ms). */
export const REPORTS_KEPT = 320;

export interface Report {
  atMs: number;
  received: number;
  highestSeq: number;
}

/** First capacity of the report ring; it doubles up to REPORTS_KEPT as reports come faster. */
const REPORTS_FIRST = 16;

/**
 * The peer's receive reports, oldest first, in typed arrays (16 bytes a report, not a ~60-byte
 * object and its boxed time: a hub keeps these for two paths of every spoke). The ring starts
 * small, doubles up to REPORTS_KEPT, and drops a report no query can reach any more: every window
 * a caller asks for is at most REPORT_WINDOW_MAX_MS, and a window needs one report older than its start,
 * so the oldest goes once the second-oldest is more than REPORT_WINDOW_MAX_MS older than the newest.
 * When at most a quarter of it is in use (an idle path probes every 2 s) it halves.
 */
export class ReportRing {
  private atMs: Float64Array | undefined;
  private received: Uint32Array | undefined;
  private highest: Uint32Array | undefined;
  private head = 0;
  length = 0;
  /**
   * No report's time was below the one before it since the ring was last empty: windowStart may
   * binary-search. The core's time never goes back; a caller's that did gets the linear scan.
   */
  private ordered = true;

  private cap(): number {
    return this.atMs?.length ?? 0;
  }

  /** Report `i` (0 = the oldest, -1 = the newest, as Array.at) into `out`; undefined out of range. */
  at(i: number, out: Report = { atMs: 0, received: 0, highestSeq: 0 }): Report | undefined {
    if (i < 0) i += this.length;
    if (!(i >= 0 && i < this.length)) return undefined;
    const k = (this.head + i) % this.cap();
    out.atMs = this.atMs![k]!;
    out.received = this.received![k]!;
    out.highestSeq = this.highest![k]!;
    return out;
  }

  /** Where report `i` (0 <= i < length) sits: head + i wraps at most once, so no division. */
  private slot(i: number): number {
    const k = this.head + i;
    const cap = this.atMs!.length;
    return k >= cap ? k - cap : k;
  }

  atMsOf(i: number): number {
    return this.atMs![this.slot(i)]!;
  }

  highestOf(i: number): number {
    return this.highest![this.slot(i)]!;
  }

  receivedOf(i: number): number {
    return this.received![this.slot(i)]!;
  }

  /**
   * Where the window of at least `windowMs` that ends at the newest report starts: the newest
   * report i >= 1 at least `windowMs` older than the newest, else 0 (the oldest). PathStats asks
   * for it up to a dozen times a path per probe interval (steering's SLA windows, FEC adaptation);
   * the backwards scan it replaces walked up to 100 reports a call for a 10 s window and was 4% of
   * the fleet's traffic window (atMsOf), a binary search reads ~8.
   */
  windowStart(windowMs: number): number {
    const n = this.length;
    if (n < 3) return 0;
    const newest = this.atMsOf(n - 1);
    if (!this.ordered) {
      let i = n - 2;
      for (; i > 0; i--) if (newest - this.atMsOf(i) >= windowMs) break;
      return i;
    }
    // Times ascend, so "at least windowMs older" holds for a prefix of [1, n - 2]: its last index.
    let lo = 1;
    let hi = n - 2;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (newest - this.atMsOf(mid) >= windowMs) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  push(atMs: number, received: number, highestSeq: number): void {
    if (this.length > 0 && !(atMs >= this.atMsOf(this.length - 1))) this.ordered = false;
    // Reports no window reaches (see the class comment).
    while (this.length >= 2 && atMs - this.atMsOf(1) > REPORT_WINDOW_MAX_MS) this.shift();
    if (this.length === REPORTS_KEPT) this.shift();
    if (this.length === this.cap()) this.resize(Math.min(REPORTS_KEPT, Math.max(REPORTS_FIRST, this.cap() * 2)));
    else if (this.cap() > REPORTS_FIRST && this.length * 4 <= this.cap()) this.resize(this.cap() / 2);
    const k = (this.head + this.length) % this.cap();
    this.atMs![k] = atMs;
    this.received![k] = received;
    this.highest![k] = highestSeq;
    this.length++;
  }

  private shift(): void {
    this.head = (this.head + 1) % this.cap();
    this.length--;
  }

  private resize(cap: number): void {
    // One buffer for the three (a separate ArrayBuffer is ~80 B of object and a malloc each, issue 12).
    const buf = new ArrayBuffer(16 * cap);
    const at = new Float64Array(buf, 0, cap);
    const rec = new Uint32Array(buf, 8 * cap, cap);
    const hi = new Uint32Array(buf, 12 * cap, cap);
    for (let i = 0; i < this.length; i++) {
      at[i] = this.atMsOf(i);
      rec[i] = this.receivedOf(i);
      hi[i] = this.highestOf(i);
    }
    this.atMs = at;
    this.received = rec;
    this.highest = hi;
    this.head = 0;
  }

  clear(): void {
    this.atMs = this.received = this.highest = undefined;
    this.head = 0;
    this.length = 0;
    this.ordered = true;
  }
}

/** Sent-sequence marks kept at most (one per 10 ms: 2.56 s, more than any RTT we steer on). */
export const SENT_MARKS = 256;
/** The span the marks always cover (what SENT_MARKS covers at a mark per 10 ms). */
export const SENT_MARK_SPAN_MS = SENT_MARKS * 10;
const SENT_MARKS_FIRST = 16;

/**
 * Marks of (time, highest sequence sent by then), one per 10 ms at most, newest last: what
 * PathStats.onPeerReport asks "what had we sent by then" (about one RTT + 250 ms ago). Kept in
 * typed arrays that start at 16 marks and grow to SENT_MARKS with the send rate; a mark goes once
 * the next one is itself SENT_MARK_SPAN_MS old (it can no longer answer a question about the last
 * SENT_MARK_SPAN_MS), and the arrays halve when a quarter is in use: an idle path sending a probe
 * a second keeps three marks, not 256. Answers about the last SENT_MARK_SPAN_MS are the same as
 * a full 256-mark ring's; older ones (an RTT above ~2.3 s) may find no mark, as at 100 packets/s.
 */
export class SentMarks {
  private timeMs: Float64Array | undefined;
  private seq: Uint32Array | undefined;
  private head = 0;
  private count = 0;

  private cap(): number {
    return this.timeMs?.length ?? 0;
  }

  private idx(i: number): number {
    return (this.head + i) % this.cap();
  }

  /** We had sent up to `seq` at `nowMs`. */
  note(nowMs: number, seq: number): void {
    if (this.count > 0) {
      const last = this.idx(this.count - 1);
      if (nowMs - this.timeMs![last]! < 10) {
        this.seq![last] = seq;
        return;
      }
    }
    while (this.count >= 2 && this.timeMs![this.idx(1)]! <= nowMs - SENT_MARK_SPAN_MS) this.shift();
    if (this.count === SENT_MARKS) this.shift();
    if (this.count === this.cap()) this.resize(Math.min(SENT_MARKS, Math.max(SENT_MARKS_FIRST, this.cap() * 2)));
    else if (this.cap() > SENT_MARKS_FIRST && this.count * 4 <= this.cap()) this.resize(this.cap() / 2);
    const k = this.idx(this.count);
    this.timeMs![k] = nowMs;
    this.seq![k] = seq;
    this.count++;
  }

  /**
   * Highest sequence sent by `atMs`; undefined if no mark is that old. A binary search: note()
   * only adds a mark 10 ms or more after the newest, so mark times ascend, and the newest mark at
   * or before `atMs` is the one the backwards scan found (it read ~30 marks for every report a
   * busy path received: one RTT + 250 ms back at a mark per 10 ms).
   */
  sentBy(atMs: number): number | undefined {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timeMs![this.idx(mid)]! <= atMs) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : this.seq![this.idx(found)];
  }

  get length(): number {
    return this.count;
  }

  private shift(): void {
    this.head = (this.head + 1) % this.cap();
    this.count--;
  }

  private resize(cap: number): void {
    const buf = new ArrayBuffer(12 * cap);
    const t = new Float64Array(buf, 0, cap);
    const s = new Uint32Array(buf, 8 * cap, cap);
    for (let i = 0; i < this.count; i++) {
      t[i] = this.timeMs![this.idx(i)]!;
      s[i] = this.seq![this.idx(i)]!;
    }
    this.timeMs = t;
    this.seq = s;
    this.head = 0;
  }
}
