/**
 * The ring of the peer's receive reports one path keeps for its tx-loss windows (path-stats.ts).
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

  atMsOf(i: number): number {
    return this.atMs![(this.head + i) % this.cap()]!;
  }

  highestOf(i: number): number {
    return this.highest![(this.head + i) % this.cap()]!;
  }

  receivedOf(i: number): number {
    return this.received![(this.head + i) % this.cap()]!;
  }

  push(atMs: number, received: number, highestSeq: number): void {
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
    const at = new Float64Array(cap);
    const rec = new Uint32Array(cap);
    const hi = new Uint32Array(cap);
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
  }
}
