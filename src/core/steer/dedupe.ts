/**
 * Duplicate suppression for duplicated classes: the sender stamps each duplicated packet with one
 * sequence number (the same on both copies); the receiver delivers the first copy and drops the
 * second. A sliding bitmap window (as in RFC 6479) of DEDUPE_WINDOW sequence numbers: copies
 * arriving further apart than that (impossible at sane rates: 8192 packets) count as new.
 */
export const DEDUPE_WINDOW = 8192;
const WORDS = DEDUPE_WINDOW / 32;

export class DedupeWindow {
  /** Made at the first duplicated packet: a hub's peers mostly carry no duplicated class (1 KB each, issue 12). */
  private bits: Uint32Array | undefined;
  private highest = -1;

  /** True if `seq` is new (deliver it), false if it is a duplicate or too old. */
  accept(seq: number): boolean {
    seq = seq >>> 0;
    if (this.highest < 0) {
      this.bits = new Uint32Array(WORDS);
      this.highest = seq;
      this.set(seq);
      return true;
    }
    const ahead = (seq - this.highest) | 0;
    if (ahead > 0) {
      // Clear the words we slide over.
      const steps = Math.min(ahead, DEDUPE_WINDOW);
      for (let i = 1; i <= steps; i++) this.clear((this.highest + i) >>> 0);
      this.highest = seq;
      this.set(seq);
      return true;
    }
    // Far behind: ancient. (A restarted peer is not guessed from a jump back: an old copy still in
    // flight would clear the window and let second copies through. The peer's new epoch, seen in
    // its probes, gives it a new window: peer.ts onPeerEpoch.)
    if (-ahead >= DEDUPE_WINDOW) return false;
    if (this.isSet(seq)) return false;
    this.set(seq);
    return true;
  }

  private set(seq: number): void {
    const bit = seq % DEDUPE_WINDOW;
    this.bits![bit >>> 5]! |= 1 << (bit & 31);
  }

  private clear(seq: number): void {
    const bit = seq % DEDUPE_WINDOW;
    this.bits![bit >>> 5]! &= ~(1 << (bit & 31));
  }

  private isSet(seq: number): boolean {
    const bit = seq % DEDUPE_WINDOW;
    return (this.bits![bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }
}

/** Duplicate numbers remembered for the epoch handover (a second of CS6 at 256 pps). */
export const RECENT_DUPS = 256;

/**
 * Duplicate numbers accepted lately and the session (receiver index) each came in, a ring of
 * RECENT_DUPS (peer.ts onPeerEpoch carries the new life's into its new window). One array of
 * pairs, made at the first duplicated packet (2 KB a peer on a hub that carries none, issue 12);
 * before it, every slot reads as (0, 0), and receiver index 0 names no session.
 */
export class RecentDups {
  private pairs: Uint32Array | undefined;
  private head = 0;

  note(seq: number, receiverIndex: number): void {
    const pairs = (this.pairs ??= new Uint32Array(2 * RECENT_DUPS));
    pairs[2 * this.head] = seq;
    pairs[2 * this.head + 1] = receiverIndex;
    this.head = (this.head + 1) % RECENT_DUPS;
  }

  /** Every slot in ring order (unused ones, if any: (0, 0)); nothing before the first note. */
  forEach(fn: (seq: number, receiverIndex: number) => void): void {
    const pairs = this.pairs;
    if (pairs === undefined) return;
    for (let i = 0; i < RECENT_DUPS; i++) fn(pairs[2 * i]!, pairs[2 * i + 1]!);
  }
}
