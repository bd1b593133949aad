/**
 * Issue 16's FEC acceptance in virtual time: voice over one link with 5% random loss (10 calls at
 * 50 pps, 40 s) keeps the residual loss under 0.1% for seeds 1-20 within the 30% parity budget,
 * and a clean link carries no parity. The harness and the per-seed figures (k', m, overhead,
 * congestion verdicts) are sim/tools/fec-single-link.ts; run it to see why a seed fails.
 */
import { describe, expect, it } from 'vitest';
import { formatRun, runSingleLinkVoice } from '../../sim/tools/fec-single-link.ts';

const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);

describe('voice FEC on a single lossy link (issue 16)', () => {
  it('5% random loss, 10 calls, 40 s: residual < 0.1% for seeds 1-20, overhead <= 30%, groups of 20', () => {
    let worst = 0;
    for (const seed of SEEDS) {
      const r = runSingleLinkVoice(seed);
      console.log(formatRun(r));
      worst = Math.max(worst, r.residualRatio);
      expect(r.residualRatio, `seed ${seed}`).toBeLessThan(0.001);
      expect(r.overheadRatio, `seed ${seed}`).toBeLessThanOrEqual(0.3);
      // The fix's mechanism: 40 ms flushes fill k = 20 at 500 pps (20 ms closed groups of 10).
      expect(r.groupsByK[20]!, `seed ${seed}`).toBeGreaterThan(r.groups * 0.9);
      expect(r.congestedTicks, `seed ${seed}`).toBe(0);
    }
    console.log(`seeds 1-20: worst residual ${(worst * 100).toFixed(3)}%`);
  }, 120_000);

  it('the same link clean: not one parity packet', () => {
    const r = runSingleLinkVoice(1, { lossRatio: 0 });
    console.log(formatRun(r));
    expect(r.parityShards).toBe(0);
    expect(r.residualRatio).toBe(0);
  });

  // Queueing is judged with fec/congestion.ts: normal delay variation is not a queue.
  it('5% random loss on a link with 2 ms normal jitter each way: no congestion verdict, residual < 0.1% (seeds 1-20)', () => {
    for (const seed of SEEDS) {
      const r = runSingleLinkVoice(seed, { netem: 'delay 10ms 2ms distribution normal' });
      console.log(formatRun(r));
      expect(r.congestedTicks, `seed ${seed}`).toBe(0);
      expect(r.residualRatio, `seed ${seed}`).toBeLessThan(0.001);
    }
  }, 120_000);
});
