/**
 * The receiver's "highest sequence number as of a moment" marks, for PathStats.report()'s reorder
 * grace: the report names the highest sequence number seen at least REORDER_GRACE_MS ago
 * ("settled") and how many packets up to it arrived.
 *
 * Each mark also keeps how many packets had arrived at that moment, and counts the late ones
 * (behind the highest) that arrive after it with a sequence number at or below its own. Why: below SEEN_WINDOW sequence numbers between the settled one and the
 * newest, the seen-bitmap says exactly which of the newer ones arrived; past it (over ~41,000
 * packets a second on one path at the 100 ms grace) it cannot, and the old count took every
 * packet newer than the bitmap as settled. When such a path's rate then fell (a flow moved away,
 * TCP backed off), the excess vanished from the count and a loss-free path read 10-60% loss over
 * the next second (tmp unit run: 130 -> 1 packets/ms), enough to take it out of SLA. Past the
 * bitmap the report now counts what had arrived at the mark plus the late arrivals since that
 * belong to it: exact, as the bitmap is. A late packet costs a look at each of the 16 marks.
 */

/**
 * Marks are >= 10 ms apart, so the 11th newest is >= 100 ms (REORDER_GRACE_MS) old and report()'s
 * pick is always among the newest 11: 16 give the answers 64 did (issue 12: 0.6 KB less a path).
 */
const HIGH_MARKS = 16;
/** One mark per this many ms is plenty to find "the highest as of 100 ms ago". */
const MARK_SPACING_MS = 10;

export class RxMarks {
  /** [time, highest seq, received at it, late arrivals since at or below its seq] per mark, in rings of HIGH_MARKS. */
  private readonly m = new Float64Array(4 * HIGH_MARKS);
  private head = 0;
  private count = 0;

  /** A new highest `seq` at `nowMs`, with `received` packets so far (this one included). */
  note(nowMs: number, seq: number, received: number): void {
    const m = this.m;
    const last = (this.head - 1 + HIGH_MARKS) % HIGH_MARKS;
    let at = this.head;
    if (this.count > 0 && nowMs - m[last]! < MARK_SPACING_MS) {
      at = last; // the newest mark moves on (its time stays)
    } else {
      m[at] = nowMs;
      this.head = (this.head + 1) % HIGH_MARKS;
      if (this.count < HIGH_MARKS) this.count++;
    }
    m[HIGH_MARKS + at] = seq;
    m[2 * HIGH_MARKS + at] = received;
    m[3 * HIGH_MARKS + at] = 0;
  }

  /** A packet `seq` arrived behind the highest: it counts for every mark at or above it. */
  noteLate(seq: number): void {
    const m = this.m;
    for (let i = 0; i < this.count; i++) {
      const idx = (this.head - 1 - i + HIGH_MARKS) % HIGH_MARKS;
      if (((m[HIGH_MARKS + idx]! - seq) | 0) >= 0) m[3 * HIGH_MARKS + idx]!++;
    }
  }

  /** The newest mark made at or before `atMs`, or -1. */
  newestAtOrBefore(atMs: number): number {
    for (let i = 0; i < this.count; i++) {
      const idx = (this.head - 1 - i + HIGH_MARKS) % HIGH_MARKS;
      if (this.m[idx]! <= atMs) return idx;
    }
    return -1;
  }

  seqAt(i: number): number {
    return this.m[HIGH_MARKS + i]!;
  }

  /** Packets received at or below mark `i`'s sequence number: at the mark and late since. */
  settledReceivedAt(i: number): number {
    return (this.m[2 * HIGH_MARKS + i]! + this.m[3 * HIGH_MARKS + i]!) >>> 0;
  }
}
