// The routing benchmark's measurement (bench/lib/routing-lookup.ts), run small: it checks that the
// trie and the linear scan agree on every hit and miss packet before it times anything (it throws
// otherwise), so the hub benchmark can call it and trust the figure. No timing is asserted.
import { describe, expect, it } from 'vitest';
import { measureRoutingLookup, peerPrefixes } from '../../../bench/lib/routing-lookup.ts';
import { parsePrefix } from '../../../src/core/routing/prefix.ts';

describe('measureRoutingLookup', () => {
  it('builds peers x 4 prefixes plus the aggregate, agrees with the scan, and reports finite figures', () => {
    const r = measureRoutingLookup({ peers: 300, reps: 1, lookups: 2000 });
    expect(r.prefixes).toBe(300 * 4 + 1);
    expect(r.trieNodes).toBeLessThanOrEqual(2 * r.prefixes);
    for (const v of [r.hitNs, r.missNs, r.hitV4Ns, r.hitV6Ns, r.linearHitNs, r.linearMissNs]) expect(Number.isFinite(v) && v >= 0).toBe(true);
  });

  it('gives every peer distinct, valid prefixes up to 4,096 peers', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4096; i++) for (const p of peerPrefixes(i)) seen.add(parsePrefix(p).text);
    expect(seen.size).toBe(4096 * 4);
  });
});
