import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { newInnerInfo, parseInner } from '../../../src/core/inner.ts';
import { clampTcpMss, mssForMtu } from '../../../src/core/inner/mss.ts';
import { updateChecksum16 } from '../../../src/core/inner/checksum.ts';
import { ipv4Tcp, ipv6Tcp, l4ChecksumOk, naiveChecksum } from './packets.ts';

const MSS = (v: number): number[] => [2, 4, v >> 8, v & 255];
const info = newInnerInfo();
function clamp(p: Uint8Array, max: number): boolean {
  const i = parseInner(p, info);
  expect(i).toBeDefined();
  return clampTcpMss(p, i!, max);
}
function mssOf(p: Uint8Array, at: number): number {
  return (p[at]! << 8) | p[at + 1]!;
}

describe('MSS clamp', () => {
  it('mssForMtu: 40 bytes of headers on IPv4, 60 on IPv6', () => {
    expect(mssForMtu(1420, 4)).toBe(1380);
    expect(mssForMtu(1420, 6)).toBe(1360);
  });

  it('lowers an IPv4 SYN MSS and keeps the checksum valid', () => {
    const p = ipv4Tcp({ options: MSS(1460) });
    expect(l4ChecksumOk(p)).toBe(true);
    expect(clamp(p, 1380)).toBe(true);
    expect(mssOf(p, 42)).toBe(1380);
    expect(l4ChecksumOk(p)).toBe(true);
  });

  it('lowers an IPv6 SYN-ACK MSS after other options and keeps the checksum valid', () => {
    // NOP NOP SACK-permitted(2) ... then MSS at an even offset
    const p = ipv6Tcp({ ack: true, options: [1, 1, 4, 2, ...MSS(1440), 1, 3, 3, 7] });
    expect(clamp(p, 1360)).toBe(true);
    expect(mssOf(p, 40 + 24 + 2)).toBe(1360);
    expect(l4ChecksumOk(p)).toBe(true);
  });

  it('handles an MSS option at an odd offset (straddling two checksum words)', () => {
    const p = ipv4Tcp({ options: [1, ...MSS(8960), 1, 1, 1], payload: [0xde, 0xad] });
    expect(clamp(p, 1380)).toBe(true);
    expect(mssOf(p, 20 + 20 + 1 + 2)).toBe(1380);
    expect(l4ChecksumOk(p)).toBe(true);
  });

  it('leaves a smaller MSS, a non-SYN, a SYN without MSS and a UDP packet alone', () => {
    const small = ipv4Tcp({ options: MSS(1200) });
    const copy = small.slice();
    expect(clamp(small, 1380)).toBe(false);
    expect(small).toEqual(copy);
    const data = ipv4Tcp({ syn: false, ack: true, options: MSS(1460) });
    expect(clamp(data, 1380)).toBe(false);
    expect(mssOf(data, 42)).toBe(1460);
    expect(clamp(ipv4Tcp({ options: [1, 1, 4, 2] }), 1380)).toBe(false);
  });

  it('never reads past a truncated or malformed option list', () => {
    const p = ipv4Tcp({ options: [1, 2, 9, 5, 0] }); // MSS with length 9 running off the header
    expect(clamp(p, 1000)).toBe(false);
    const q = ipv4Tcp({ options: [3, 0, 2, 4] }); // length 0 option
    expect(clamp(q, 1000)).toBe(false);
  });

  it('incremental update equals a full recomputation (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 536, max: 65535 }), fc.integer({ min: 0, max: 65535 }), fc.nat(3), fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }), (mss, max, nops, payload) => {
        const options = [...Array<number>(nops).fill(1), ...MSS(mss)];
        const p = ipv4Tcp({ options, payload });
        const changed = clamp(p, max);
        expect(changed).toBe(mss > max);
        expect(mssOf(p, 40 + nops + 2)).toBe(Math.min(mss, max));
        expect(l4ChecksumOk(p)).toBe(true);
      }),
    );
  });

  it('updateChecksum16 matches recomputing the sum', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 65535 }), { minLength: 1, maxLength: 20 }), fc.nat(), fc.integer({ min: 0, max: 65535 }), (words, idx, w) => {
        const i = idx % words.length;
        const bytes = (ws: number[]): number[] => ws.flatMap((x) => [x >> 8, x & 255]);
        const before = naiveChecksum(bytes(words));
        const after = words.slice();
        after[i] = w;
        const updated = updateChecksum16(before, words[i]!, w);
        // 0x0000 and 0xffff are the same number in ones' complement: compare as sums.
        const full = naiveChecksum(bytes(after));
        expect(updated === full || (updated ^ full) === 0xffff).toBe(true);
      }),
    );
  });
});
