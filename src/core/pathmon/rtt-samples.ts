/**
 * The recent RTT samples of one path (path-stats.ts), for percentiles: the last RTT_SAMPLES_KEPT,
 * whatever their age. The ring grows (doubling from RTT_SAMPLES_FIRST) as samples come, so sample
 * i sits at i % RTT_SAMPLES_KEPT as in a full-size ring and the figures are the same; a hub keeps
 * one per path of every spoke (issue 12), and an idle path adds one sample per 2 s.
 */

/** Ring of recent RTT samples for percentiles (30 s of 100 ms probes). */
export const RTT_SAMPLES_KEPT = 300;
const RTT_SAMPLES_FIRST = 16;
/** Percentile of recent RTT samples taken as the path's base RTT (queue-free delay). */
export const RTT_BASE_PERCENTILE = 10;

/** The sort buffer every path shares, and whose samples it holds. */
const rttSort = { scratch: new Float64Array(RTT_SAMPLES_KEPT), ownerId: -1, atCount: -1, nextId: 0 };

export class RttSamples {
  private ring = new Float64Array(RTT_SAMPLES_FIRST);
  /** Samples taken so far. */
  count = 0;
  /** Which ring this is (the shared sort buffer's owner). */
  private readonly id = rttSort.nextId++;
  /** Percentiles taken at count = pctAtCount (NaN: not yet). */
  private pctAtCount = -1;
  private pctBase = NaN;
  private pct50 = NaN;
  private pct99 = NaN;

  /** The newest sample (undefined before any). */
  last(): number | undefined {
    return this.count > 0 ? this.ring[(this.count - 1) % RTT_SAMPLES_KEPT] : undefined;
  }

  add(rttMs: number): void {
    if (this.count === this.ring.length && this.count < RTT_SAMPLES_KEPT) {
      const grown = new Float64Array(Math.min(RTT_SAMPLES_KEPT, 2 * this.count));
      grown.set(this.ring);
      this.ring = grown;
    }
    this.ring[this.count % RTT_SAMPLES_KEPT] = rttMs;
    this.count++;
  }

  /** The recent samples sorted in the buffer all paths share (a hub has thousands of paths). */
  private sorted(): Float64Array {
    const n = Math.min(this.count, RTT_SAMPLES_KEPT);
    const sorted = rttSort.scratch.subarray(0, n);
    if (rttSort.ownerId !== this.id || rttSort.atCount !== this.count) {
      sorted.set(this.ring.subarray(0, n));
      sorted.sort();
      rttSort.ownerId = this.id;
      rttSort.atCount = this.count;
    }
    return sorted;
  }

  /**
   * Percentile (0..100) over the recent samples; undefined before any. The base percentile and the
   * snapshot's p50/p99 are remembered until the next sample: the FEC adapter asks for the base at
   * every class's tick (the sort of 300 samples per call was ~10% of a virtual-time run).
   */
  percentileMs(p: number): number | undefined {
    if (this.count === 0) return undefined;
    if (this.pctAtCount !== this.count) {
      this.pctAtCount = this.count;
      this.pctBase = this.pct50 = this.pct99 = NaN;
    }
    const cached = p === RTT_BASE_PERCENTILE ? this.pctBase : p === 50 ? this.pct50 : p === 99 ? this.pct99 : NaN;
    if (!Number.isNaN(cached)) return cached;
    const sorted = this.sorted();
    const n = sorted.length;
    const v = sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
    if (p === RTT_BASE_PERCENTILE) this.pctBase = v;
    else if (p === 50) this.pct50 = v;
    else if (p === 99) this.pct99 = v;
    return v;
  }
}
