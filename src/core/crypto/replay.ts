/**
 * RFC 6479 anti-replay window: a ring of 32-bit words used as one bitmap, indexed by counter.
 *
 * Moving the window forward clears whole words instead of shifting bits, so the cost of a jump is
 * bounded by the ring size, not by the distance jumped. The usable window is (ringWords - 1) * 32
 * counters: one word is always the partly filled "current" block.
 *
 * check/update are split on purpose (as in WireGuard): `check` runs before decryption so replays and
 * stale packets cost no AEAD work, and `update` runs only after the packet authenticated, so a forged
 * packet can never move the window. `update` re-checks and returns false if the counter was taken in
 * between (a batch may hold the same counter twice).
 */
import { REPLAY_RING_WORDS } from './constants.ts';
import { isValidCounter } from './transport.ts';

const BITS_PER_WORD = 32;

export class ReplayWindow {
  /** Number of counters behind the greatest one that are still accepted. */
  readonly windowSize: number;
  private readonly ring: Uint32Array;
  private readonly mask: number;
  private greatest = 0;

  constructor(ringWords: number = REPLAY_RING_WORDS) {
    if (!Number.isInteger(ringWords) || ringWords < 2 || (ringWords & (ringWords - 1)) !== 0) {
      throw new Error(`replay ring size must be a power of two >= 2, got ${ringWords}`);
    }
    this.ring = new Uint32Array(ringWords);
    this.mask = ringWords - 1;
    this.windowSize = (ringWords - 1) * BITS_PER_WORD;
  }

  /** Greatest counter accepted so far (0 before any). */
  get greatestCounter(): number {
    return this.greatest;
  }

  /** Whether `counter` would be accepted. Does not change state. */
  check(counter: number): boolean {
    if (!isValidCounter(counter)) return false;
    if (counter > this.greatest) return true;
    if (this.greatest - counter >= this.windowSize) return false;
    return (this.ring[Math.floor(counter / BITS_PER_WORD) & this.mask] & (1 << (counter & 31))) === 0;
  }

  /** Records `counter` as seen. Returns false (and changes nothing) if it would not pass `check`. */
  update(counter: number): boolean {
    if (!isValidCounter(counter)) return false;
    const block = Math.floor(counter / BITS_PER_WORD);
    if (counter > this.greatest) {
      const currentBlock = Math.floor(this.greatest / BITS_PER_WORD);
      // Clear the words we move over; never more than the whole ring however far we jump.
      const steps = Math.min(block - currentBlock, this.ring.length);
      for (let i = 1; i <= steps; i++) this.ring[(currentBlock + i) & this.mask] = 0;
      this.greatest = counter;
    } else if (this.greatest - counter >= this.windowSize) {
      return false;
    }
    const index = block & this.mask;
    const bit = 1 << (counter & 31);
    if ((this.ring[index] & bit) !== 0) return false;
    this.ring[index] |= bit;
    return true;
  }
}
