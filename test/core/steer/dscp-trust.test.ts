/** Issue 14 finding 7: LAN-marked DSCP is policed per class, or re-marked to best effort. */
import { describe, expect, it } from 'vitest';
import { classOfDscp } from '../../../src/core/steer/classes.ts';
import { DEFAULT_DSCP_TRUST, DscpTrust } from '../../../src/core/steer/dscp-trust.ts';

const CS6 = 48;
const EF = 46;
const AF41 = 34;

describe('DscpTrust (issue 14, finding 7)', () => {
  it('remarkUntrusted puts every LAN packet in best effort', () => {
    const t = new DscpTrust({ remarkUntrusted: true, classRateCapsBps: [] });
    for (const dscp of [CS6, 56, EF, AF41, 8, 0]) expect(classOfDscp(t.admit(0, dscp, 100))).toBe(classOfDscp(0));
    expect(t.counters.remarkedUntrusted).toBe(5);
  });

  it('a LAN host flooding CS6 keeps network-control priority only up to the cap', () => {
    // 1 Mbit/s cap, 100 ms burst: 12,500 bytes of burst, 125 bytes per ms.
    const t = new DscpTrust({ remarkUntrusted: false, classRateCapsBps: [1_000_000] });
    let kept = 0;
    // 10 s of a 1400-byte CS6 packet every 1 ms: 11.2 Mbit/s.
    for (let ms = 0; ms < 10_000; ms++) if (t.admit(ms, CS6, 1400) === CS6) kept++;
    const keptBits = kept * 1400 * 8;
    expect(keptBits).toBeLessThanOrEqual(1_000_000 * 10 + 12_500 * 8 + 1400 * 8);
    expect(keptBits).toBeGreaterThanOrEqual(1_000_000 * 10 * 0.95);
    expect(t.counters.overCap[0]).toBe(10_000 - kept);
    // Other classes are not charged for it.
    expect(t.admit(10_000, AF41, 1400)).toBe(AF41);
  });

  it('traffic within the cap is untouched, and the bucket refills with time', () => {
    const t = new DscpTrust({ remarkUntrusted: false, classRateCapsBps: [undefined, 80_000], burstMs: 100 });
    // 80 kbit/s = 10 bytes/ms; depth max(1600, 1000) = 1600 bytes.
    expect(t.admit(0, EF, 1000)).toBe(EF);
    expect(t.admit(0, EF, 1000)).toBe(0); // 600 left
    expect(t.admit(40, EF, 1000)).toBe(EF); // +400 = 1000
    expect(t.admit(40, CS6, 60_000)).toBe(CS6); // control uncapped here
    expect(t.admit(1_000_000, EF, 1600)).toBe(EF); // refilled to the depth, no more
    expect(t.admit(1_000_000, EF, 1)).toBe(0);
  });

  it('defaults cap network control and voice, and leave best effort alone', () => {
    const t = new DscpTrust(DEFAULT_DSCP_TRUST);
    let cs6 = 0;
    for (let i = 0; i < 1000; i++) if (t.admit(0, CS6, 1400) === CS6) cs6++;
    expect(cs6).toBeLessThan(1000); // a burst of 1.4 MB at one instant is over 2 Mbit/s x 100 ms
    for (let i = 0; i < 1000; i++) expect(t.admit(0, 0, 1400)).toBe(0);
    for (let i = 0; i < 1000; i++) expect(t.admit(0, AF41, 1400)).toBe(AF41);
  });
});
