import { describe, expect, it } from 'vitest';
import { CookieDemand, HandshakeLoad } from '../../../src/core/crypto/handshake-load.ts';
import { COOKIE_FREE_PER_SOURCE_BURST, HANDSHAKE_BURST_PER_PEER, UNDER_LOAD_HOLD_MS, UNDER_LOAD_INITIATIONS_PER_SECOND } from '../../../src/core/crypto/constants.ts';

describe('HandshakeLoad: who must show a cookie', () => {
  it('a flood from one address needs cookies after its allowance; every other source still goes straight through', () => {
    const load = new HandshakeLoad(UNDER_LOAD_INITIATIONS_PER_SECOND, HANDSHAKE_BURST_PER_PEER);
    const demands: CookieDemand[] = [];
    for (let i = 0; i < 10_000; i++) demands.push(load.demand(i * 0.1, '198.51.100.7', 1000));
    const straight = demands.filter((d) => d === CookieDemand.None).length;
    // The allowance (8) and its refill (2/s over 1 s).
    expect(straight).toBeGreaterThanOrEqual(COOKIE_FREE_PER_SOURCE_BURST);
    expect(straight).toBeLessThanOrEqual(COOKIE_FREE_PER_SOURCE_BURST + 3);
    expect(demands.filter((d) => d === CookieDemand.Source).length).toBe(10_000 - straight);
    // Meanwhile 1,000 spokes restart, one initiation per link (2,000 addresses): none needs a cookie.
    for (let s = 0; s < 2000; s++) expect(load.demand(1000, `10.${s >> 8}.${s & 255}.1`, 1000)).toBe(CookieDemand.None);
    expect(1000 < load.underLoadUntilMs).toBe(false);
  });

  it('a flood over many addresses spends the global budget, then everyone needs a cookie for UNDER_LOAD_HOLD_MS', () => {
    const peers = 10;
    const load = new HandshakeLoad(UNDER_LOAD_INITIATIONS_PER_SECOND, HANDSHAKE_BURST_PER_PEER);
    const burst = UNDER_LOAD_INITIATIONS_PER_SECOND + HANDSHAKE_BURST_PER_PEER * peers;
    let straight = 0;
    const seen: CookieDemand[] = [];
    for (let i = 0; i < 5000; i++) {
      const d = load.demand(0, `203.0.${i >> 8}.${i & 255}`, peers);
      if (d === CookieDemand.None) straight++;
      seen.push(d);
    }
    expect(straight).toBe(burst);
    expect(seen.filter((d) => d === CookieDemand.GlobalStarts).length).toBe(1);
    // A real spoke's address now needs a cookie too, until the hold ends.
    expect(load.demand(UNDER_LOAD_HOLD_MS - 1, '192.0.2.1', peers)).toBe(CookieDemand.Global);
    // After the hold, the refill (64/s over the hold) lets a few through; the flood spends it
    // again: the same episode, said once.
    let after = 0;
    const later: CookieDemand[] = [];
    for (let i = 0; i < 500; i++) {
      const d = load.demand(UNDER_LOAD_HOLD_MS + 1, `203.1.${i >> 8}.${i & 255}`, peers);
      if (d === CookieDemand.None) after++;
      later.push(d);
    }
    expect(after).toBeLessThanOrEqual(UNDER_LOAD_INITIATIONS_PER_SECOND + 1);
    expect(later.includes(CookieDemand.GlobalStarts)).toBe(false);
    expect(later.includes(CookieDemand.Global)).toBe(true);
  });

  it('no rate and no burst: every initiation needs a cookie', () => {
    const load = new HandshakeLoad(0, 0);
    expect(load.demand(0, '192.0.2.1', 5)).toBe(CookieDemand.GlobalStarts);
    expect(load.demand(10_000, '192.0.2.1', 5)).toBe(CookieDemand.GlobalStarts);
    expect(load.demand(10_001, '192.0.2.2', 5)).toBe(CookieDemand.Global);
  });
});
