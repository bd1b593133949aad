/**
 * The parity budget (FecEncoderConfig.maxOverheadRatio): small groups flushed by time share
 * parity instead of each paying a copy's worth; full groups within the ratio are untouched.
 */
import { describe, expect, it } from 'vitest';
import { FecEncoder } from '../../../src/core/fec/encoder.ts';
import { createGf256Codec } from '../../../src/core/fec/gf256.ts';
import { checkFecPolicy, DEFAULT_FEC_POLICIES } from '../../../src/core/fec/policy.ts';

function drain(enc: FecEncoder): number {
  let n = 0;
  while (enc.pollParity()) n++;
  return n;
}

describe('FEC parity budget', () => {
  /** One call at 50 pps, 20 ms flush: 400 groups of one packet each, m = 1 wanted for each. */
  function oneCall(maxOverheadRatio?: number): { parity: number; enc: FecEncoder } {
    const enc = new FecEncoder(createGf256Codec(), { k: 20, m: 1, flushMs: 20, ...(maxOverheadRatio === undefined ? {} : { maxOverheadRatio }) });
    const packet = new Uint8Array(200).fill(3);
    let parity = 0;
    for (let i = 0; i < 400; i++) {
      enc.push(i * 20, packet, 0);
      enc.onTimeout(i * 20 + 20);
      parity += drain(enc);
    }
    return { parity, enc };
  }

  it('one packet per group (one call at 50 pps, 20 ms flush): 25% budget gives parity to one group in four', () => {
    const { parity, enc } = oneCall(0.25);
    // Credit starts at one shard (the first group of a call is protected) and each packet adds
    // 0.25: 1 + 400 x 0.25 = 101 shards for 400 packets.
    expect(parity).toBe(101);
    expect(enc.counters.parityCapped).toBe(299);
  });

  it('without a budget the same stream pays one parity per packet (the 100% it replaces)', () => {
    expect(oneCall().parity).toBe(400);
  });

  it('full groups whose m/k is within the ratio are untouched (voice at 5% loss: 20 + 5 under 30%)', () => {
    const enc = new FecEncoder(createGf256Codec(), { k: 20, m: 6, flushMs: 20, maxOverheadRatio: 0.3 });
    const packet = new Uint8Array(200).fill(5);
    let parity = 0;
    for (let g = 0; g < 50; g++) {
      for (let i = 0; i < 20; i++) enc.push(g * 20, packet, 0);
      parity += drain(enc);
    }
    expect(parity).toBe(50 * 6);
    expect(enc.counters.parityCapped).toBe(0);
  });

  it('a fixed floor above the budget is a policy error naming both fields', () => {
    const bulk = { ...DEFAULT_FEC_POLICIES[6]!, enabled: true, k: 16, minM: 8, maxM: 8 };
    expect(() => checkFecPolicy(bulk, 'classes.bulk')).toThrow(/maxOverheadRatio=0.25 is below minM\/k = 8\/16: raise maxOverheadRatio to at least 0.50 or lower minM/);
    expect(() => checkFecPolicy({ ...bulk, maxOverheadRatio: 0.5 }, 'classes.bulk')).not.toThrow();
  });
});

describe('FEC flush extension (FecEncoderConfig.maxFlushMs)', () => {
  /** `calls` packets per 20 ms, evenly spread, for `ms`; returns the closed groups' sizes. */
  function groupSizes(calls: number, ms: number, opts: { maxFlushMs?: number } = {}): number[] {
    const enc = new FecEncoder(createGf256Codec(), { k: 20, m: 2, flushMs: 20, ...opts });
    const sizes: number[] = [];
    const packet = new Uint8Array(200).fill(7);
    const step = 20 / calls;
    let last = enc.counters.groups;
    for (let i = 0; i * step < ms; i++) {
      const t = i * step;
      for (let d = enc.nextDeadlineMs(); d !== undefined && d <= t; d = enc.nextDeadlineMs()) enc.onTimeout(d);
      enc.push(t, packet, 0);
      for (let s = enc.pollParity(); s !== undefined; s = enc.pollParity()) if (s.index === s.k) sizes.push(s.k);
      last = enc.counters.groups;
    }
    void last;
    return sizes;
  }

  it('10 calls (10 packets per 20 ms) wait to fill k = 20 by 40 ms; 3 calls close at 20 ms as before', () => {
    const ten = groupSizes(10, 2000);
    expect(ten.length).toBeGreaterThan(40);
    expect(ten.every((k) => k === 20)).toBe(true);
    const three = groupSizes(3, 2000);
    expect(three.every((k) => k <= 4)).toBe(true);
    // Without the extension (maxFlushMs = flushMs) 10 calls close groups of ~10.
    const fixed = groupSizes(10, 2000, { maxFlushMs: 20 });
    expect(Math.max(...fixed)).toBeLessThanOrEqual(11);
  });

  it('the extended deadline is what nextDeadlineMs reports, so the caller re-arms its timer', () => {
    const enc = new FecEncoder(createGf256Codec(), { k: 20, m: 2, flushMs: 20 });
    const packet = new Uint8Array(100);
    for (let i = 0; i < 10; i++) enc.push(i * 2, packet, 0);
    expect(enc.nextDeadlineMs()).toBe(20);
    enc.onTimeout(20);
    expect(enc.counters.groups).toBe(0);
    expect(enc.nextDeadlineMs()).toBe(40);
    enc.onTimeout(40); // only 10 by then (nothing else came): it closes with what it has
    expect(enc.counters.groups).toBe(1);
    expect(enc.nextDeadlineMs()).toBeUndefined();
  });
});
