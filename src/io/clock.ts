/** The shell's clock and randomness: the only places the core's `nowMs` and Rng come from. */
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Rng } from '../core/rng.ts';

/** Monotonic milliseconds (fractional), never goes backwards with wall-clock changes. */
export function monotonicNowMs(): number {
  return performance.now();
}

/** Cryptographically secure Rng; refills a pool so the per-call cost is a few array reads. */
export class SystemRng implements Rng {
  private readonly pool = new Uint32Array(1024);
  private index = this.pool.length;

  nextU32(): number {
    if (this.index >= this.pool.length) {
      randomFillSync(this.pool);
      this.index = 0;
    }
    return this.pool[this.index++]!;
  }

  nextFloat(): number {
    return this.nextU32() / 4294967296;
  }

  fillBytes(out: Uint8Array): void {
    randomFillSync(out);
  }
}
