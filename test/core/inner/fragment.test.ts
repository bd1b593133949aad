import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fragmentIpv4, MAX_FRAGMENTS_PER_PACKET } from '../../../src/core/inner/fragment.ts';
import { ipv4HeaderOk, ipv4Udp } from './packets.ts';

const u16 = (p: Uint8Array, at: number): number => (p[at]! << 8) | p[at + 1]!;

/** RFC 815-style reassembly of one datagram's fragments, written independently of the module. */
function reassemble(frags: Uint8Array[]): { header: Uint8Array; payload: Uint8Array; lastMf: boolean; offsetUnits: number } {
  const sorted = frags.slice().sort((a, b) => (u16(a, 6) & 0x1fff) - (u16(b, 6) & 0x1fff));
  const first = sorted[0]!;
  const ihl = (first[0]! & 15) * 4;
  const base = (u16(first, 6) & 0x1fff) * 8;
  const parts: number[] = [];
  let expectAt = base;
  for (const f of sorted) {
    const fihl = (f[0]! & 15) * 4;
    const at = (u16(f, 6) & 0x1fff) * 8;
    expect(at).toBe(expectAt); // no gap, no overlap
    const data = f.subarray(fihl, u16(f, 2));
    parts.push(...data);
    expectAt += data.length;
  }
  const last = sorted[sorted.length - 1]!;
  return { header: first.subarray(0, ihl), payload: Uint8Array.from(parts), lastMf: (last[6]! & 0x20) !== 0, offsetUnits: base / 8 };
}

describe('IPv4 fragmentation inside the tunnel', () => {
  it('cuts a 1500-byte packet for a 1420 MTU into two valid fragments', () => {
    const p = ipv4Udp(1500, false);
    const frags = fragmentIpv4(p, 1420)!;
    expect(frags.length).toBe(2);
    expect(frags[0]!.length).toBe(20 + 1400);
    expect(u16(frags[0]!, 6)).toBe(0x2000); // MF, offset 0
    expect(u16(frags[1]!, 6)).toBe(1400 / 8);
    expect(frags[1]!.length).toBe(20 + 80);
    for (const f of frags) {
      expect(ipv4HeaderOk(f)).toBe(true);
      expect(u16(f, 4)).toBe(0xabcd); // identification kept
    }
  });

  it('refuses DF packets and returns a fitting packet unchanged', () => {
    expect(fragmentIpv4(ipv4Udp(1500, true), 1420)).toBeUndefined();
    const small = ipv4Udp(1000, false);
    expect(fragmentIpv4(small, 1420)).toEqual([small]);
    expect(fragmentIpv4(ipv4Udp(1500, false), 60)).toBeUndefined();
    const lying = ipv4Udp(1500, false).subarray(0, 1400); // total length says 1500
    expect(fragmentIpv4(lying, 1000)).toBeUndefined();
  });

  it('copies only the "copied" options into later fragments', () => {
    // Loose source route (0x83, copied) and Record Route (0x07, not copied), then a NOP.
    const lsrr = [0x83, 7, 4, 10, 9, 9, 9];
    const rr = [0x07, 7, 4, 0, 0, 0, 0];
    const p = ipv4Udp(1200, false, [...rr, 1, ...lsrr]);
    expect((p[0]! & 15) * 4).toBe(36);
    const frags = fragmentIpv4(p, 500)!;
    expect(Array.from(frags[0]!.subarray(20, 36))).toEqual(Array.from(p.subarray(20, 36)));
    for (const f of frags.slice(1)) {
      expect((f[0]! & 15) * 4).toBe(28);
      expect(Array.from(f.subarray(20, 28))).toEqual([...lsrr, 0]);
      expect(ipv4HeaderOk(f)).toBe(true);
    }
  });

  it('reassembling the fragments gives the original (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 48, max: 9000 }),
        fc.integer({ min: 68, max: 9000 }), // 68: every header (up to 32 bytes here) + 8 fits
        fc.constantFrom<number[][]>([], [[0x83, 7, 4, 10, 9, 9, 9]], [[0x07, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0], [1]], [[0x94, 4, 0, 0]]),
        fc.boolean(),
        (len, mtu, optionLists, alreadyFragment) => {
          const p = ipv4Udp(len, false, optionLists.flat());
          const ihl = (p[0]! & 15) * 4;
          if (alreadyFragment) {
            // A first fragment of a bigger datagram: MF set, must stay set on every piece.
            p[6] = 0x20;
            p[10] = p[11] = 0;
            const c = ipv4HeaderChecksumRef(p, ihl);
            p[10] = c >> 8;
            p[11] = c & 255;
          }
          const frags = fragmentIpv4(p, mtu);
          expect(frags).toBeDefined();
          expect(frags!.length).toBeLessThanOrEqual(MAX_FRAGMENTS_PER_PACKET);
          for (const [i, f] of frags!.entries()) {
            expect(f.length).toBeLessThanOrEqual(mtu);
            expect(u16(f, 2)).toBe(f.length);
            expect(ipv4HeaderOk(f)).toBe(true);
            if (i < frags!.length - 1) {
              expect(f[6]! & 0x20).toBe(0x20);
              expect((f.length - (f[0]! & 15) * 4) % 8).toBe(0);
            }
          }
          const r = reassemble(frags!);
          expect(r.offsetUnits).toBe(0);
          expect(r.lastMf).toBe(alreadyFragment);
          expect(Array.from(r.header.subarray(12, 20))).toEqual(Array.from(p.subarray(12, 20)));
          expect(Array.from(r.header.subarray(20))).toEqual(Array.from(p.subarray(20, ihl)));
          expect(Array.from(r.payload)).toEqual(Array.from(p.subarray(ihl)));
        },
      ),
    );
  });
});

function ipv4HeaderChecksumRef(p: Uint8Array, ihl: number): number {
  let sum = 0;
  for (let i = 0; i < ihl; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
