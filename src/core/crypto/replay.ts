/**
 * RFC 6479 anti-replay window: a ring of 32-bit words used as one bitmap, indexed by counter.
 *
 * Moving the window forward clears whole words instead of shifting bits, so the cost of a jump is
 * bounded by the ring size, not by the distance jumped. The usable window is (ringWords - 1) * 32
 * counters: one word is always the partly filled "current" block.
 *
 * The ring starts at REPLAY_FIRST_WORDS and doubles up to ringWords only when it must (issue 12: a
 * hub holds a session per spoke, and 512 words is 2 KB each): a word may leave the ring only when
 * every counter of it that is still inside the window was seen (its 32 bits set) or none of it is
 * inside the window any more. So a counter older than the ring's blocks but inside the window was
 * seen, and is refused as a full-size ring would refuse it: the answers are the full ring's (a
 * model test checks it). An in-order, loss-free session keeps the first size; a hole (a lost
 * packet, one still in flight) keeps its word until the window passes it, growing the ring to span
 * it. A session lives at most REJECT_AFTER_TIME (180 s), so an idle one never spans many words.
 *
 * check/update are split on purpose (as in WireGuard): `check` runs before decryption so replays and
 * stale packets cost no AEAD work, and `update` runs only after the packet authenticated, so a forged
 * packet can never move the window. `update` re-checks and returns false if the counter was taken in
 * between (a batch may hold the same counter twice).
 */
import { REPLAY_FIRST_WORDS, REPLAY_RING_WORDS } from './constants.ts';
import { isValidCounter } from './transport.ts';

const BITS_PER_WORD = 32;
const FULL_WORD = 0xffffffff;

export class ReplayWindow {
  /** Number of counters behind the greatest one that are still accepted. */
  readonly windowSize: number;
  private readonly maxWords: number;
  private ring: Uint32Array;
  private mask: number;
  private greatest = 0;
  /** The greatest counter's block (kept: check would divide for it on every packet). */
  private front = 0;

  constructor(ringWords: number = REPLAY_RING_WORDS, firstWords: number = REPLAY_FIRST_WORDS) {
    if (!Number.isInteger(ringWords) || ringWords < 2 || (ringWords & (ringWords - 1)) !== 0) {
      throw new Error(`replay ring size must be a power of two >= 2, got ${ringWords}`);
    }
    if (!Number.isInteger(firstWords) || firstWords < 2 || (firstWords & (firstWords - 1)) !== 0) {
      throw new Error(`replay ring first size must be a power of two >= 2, got ${firstWords}`);
    }
    this.maxWords = ringWords;
    this.ring = new Uint32Array(Math.min(firstWords, ringWords));
    this.mask = this.ring.length - 1;
    this.windowSize = (ringWords - 1) * BITS_PER_WORD;
  }

  /** Greatest counter accepted so far (0 before any). */
  get greatestCounter(): number {
    return this.greatest;
  }

  /** Words the ring holds now (tests, memory figures). */
  get ringWords(): number {
    return this.ring.length;
  }

  /** Whether `counter` would be accepted. Does not change state. */
  check(counter: number): boolean {
    if (!isValidCounter(counter)) return false;
    if (counter > this.greatest) return true;
    if (this.greatest - counter >= this.windowSize) return false;
    const block = Math.floor(counter / BITS_PER_WORD);
    // Older than the ring's blocks, inside the window: seen (see the file comment).
    if (block <= this.front - this.ring.length) return false;
    return (this.ring[block & this.mask]! & (1 << (counter & 31))) === 0;
  }

  /** Records `counter` as seen. Returns false (and changes nothing) if it would not pass `check`. */
  update(counter: number): boolean {
    if (!isValidCounter(counter)) return false;
    const block = Math.floor(counter / BITS_PER_WORD);
    const bit = 1 << (counter & 31);
    if (counter > this.greatest) {
      const currentBlock = this.front;
      if (block > currentBlock) {
        while (this.ring.length < this.maxWords && !this.canDrop(currentBlock, block, counter)) this.grow(currentBlock);
        // Clear the words we move over; never more than the whole ring however far we jump.
        const steps = Math.min(block - currentBlock, this.ring.length);
        for (let i = 1; i <= steps; i++) this.ring[(currentBlock + i) & this.mask] = 0;
        this.front = block;
      }
      this.greatest = counter;
    } else if (this.greatest - counter >= this.windowSize || block <= this.front - this.ring.length || (this.ring[block & this.mask]! & bit) !== 0) {
      return false;
    }
    this.ring[block & this.mask]! |= bit;
    return true;
  }

  /**
   * Whether moving the front from `currentBlock` to `block` (greatest `counter`) leaves no unseen
   * counter of the window outside the ring: the words it drops are full or out of the window, and
   * so are the never-seen blocks it jumps over that fall outside the ring at once.
   */
  private canDrop(currentBlock: number, block: number, counter: number): boolean {
    const len = this.ring.length;
    const oldestKept = counter - this.windowSize + 1; // the window's first counter after the move
    const lastDropped = block - len; // blocks up to this one are outside the ring after the move
    const lastKnown = Math.min(lastDropped, currentBlock);
    for (let b = Math.max(0, currentBlock - len + 1); b <= lastKnown; b++) {
      if (b * BITS_PER_WORD + 31 >= oldestKept && this.ring[b & this.mask] !== FULL_WORD) return false;
    }
    // Jumped-over blocks, never seen: the newest of them decides (the older are further out).
    return lastDropped <= currentBlock || lastDropped * BITS_PER_WORD + 31 < oldestKept;
  }

  /** Doubles the ring: the covered blocks move to their new slots, the older ones read as seen. */
  private grow(currentBlock: number): void {
    const old = this.ring;
    const len = old.length;
    const next = new Uint32Array(len * 2);
    const mask = next.length - 1;
    for (let b = currentBlock - next.length + 1; b <= currentBlock; b++) {
      if (b < 0) continue;
      next[b & mask] = b > currentBlock - len ? old[b & this.mask]! : FULL_WORD;
    }
    this.ring = next;
    this.mask = mask;
  }
}
