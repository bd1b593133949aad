import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  buildIpv4FragNeeded,
  buildIpv6PacketTooBig,
  buildTooBig,
  ipv4DontFragment,
  TooBigRateLimiter,
} from '../../../src/core/inner/icmp-too-big.ts';
import { ipv4HeaderOk, ipv4Tcp, ipv4Udp, ipv6Udp, l4ChecksumOk } from './packets.ts';

const u16 = (p: Uint8Array, at: number): number => (p[at]! << 8) | p[at + 1]!;

describe('ICMP Fragmentation Needed (IPv4)', () => {
  it('goes back to the sender, from the destination, with the MTU and valid checksums', () => {
    const orig = ipv4Udp(1500, true);
    expect(ipv4DontFragment(orig)).toBe(true);
    const icmp = buildIpv4FragNeeded(orig, 1420)!;
    expect(icmp.length).toBe(576); // quotes as much as fits RFC 1812's 576
    expect(icmp[0]).toBe(0x45);
    expect(u16(icmp, 2)).toBe(576);
    expect(icmp[9]).toBe(1);
    expect(Array.from(icmp.subarray(12, 16))).toEqual([10, 2, 0, 9]);
    expect(Array.from(icmp.subarray(16, 20))).toEqual([10, 1, 0, 5]);
    expect(ipv4HeaderOk(icmp)).toBe(true);
    expect(icmp[20]).toBe(3);
    expect(icmp[21]).toBe(4);
    expect(u16(icmp, 24)).toBe(0); // unused
    expect(u16(icmp, 26)).toBe(1420);
    expect(l4ChecksumOk(icmp)).toBe(true);
    expect(Array.from(icmp.subarray(28))).toEqual(Array.from(orig.subarray(0, 548)));
  });

  it('quotes a short packet whole', () => {
    const orig = ipv4Tcp({ options: [2, 4, 5, 180] });
    const icmp = buildTooBig(orig, 1000)!;
    expect(icmp.length).toBe(28 + orig.length);
    expect(l4ChecksumOk(icmp)).toBe(true);
  });

  it('is not sent about ICMP errors, later fragments, multicast/broadcast or bogus sources', () => {
    const err = buildIpv4FragNeeded(ipv4Udp(1500, true), 1400)!;
    expect(buildIpv4FragNeeded(err, 500)).toBeUndefined();
    const frag = ipv4Udp(1500, true);
    frag[7] = 10; // offset 80
    expect(buildIpv4FragNeeded(frag, 1400)).toBeUndefined();
    for (const [at, v] of [[16, 224], [16, 255], [12, 0], [12, 127], [12, 239]] as const) {
      const p = ipv4Udp(1500, true);
      p[at] = v;
      expect(buildIpv4FragNeeded(p, 1400), `byte ${at} = ${v}`).toBeUndefined();
    }
    expect(buildTooBig(new Uint8Array([0x45, 0]), 1400)).toBeUndefined();
  });

  it('any well-formed DF packet gets a well-formed error (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 28, max: 9000 }), fc.integer({ min: 68, max: 9000 }), (len, mtu) => {
        const icmp = buildIpv4FragNeeded(ipv4Udp(len, true), mtu)!;
        expect(icmp.length).toBeLessThanOrEqual(576);
        expect(ipv4HeaderOk(icmp)).toBe(true);
        expect(l4ChecksumOk(icmp)).toBe(true);
        expect(u16(icmp, 26)).toBe(mtu);
      }),
    );
  });
});

describe('ICMPv6 Packet Too Big', () => {
  it('carries the MTU, quotes up to 1280 bytes and has a valid pseudo-header checksum', () => {
    const orig = ipv6Udp(1500);
    const ptb = buildTooBig(orig, 1400)!;
    expect(ptb.length).toBe(1280);
    expect(ptb[0]! >> 4).toBe(6);
    expect(u16(ptb, 4)).toBe(1240);
    expect(ptb[6]).toBe(58);
    expect(Array.from(ptb.subarray(8, 24))).toEqual(Array.from(orig.subarray(24, 40)));
    expect(Array.from(ptb.subarray(24, 40))).toEqual(Array.from(orig.subarray(8, 24)));
    expect(ptb[40]).toBe(2);
    expect(ptb[41]).toBe(0);
    expect((u16(ptb, 44) << 16) | u16(ptb, 46)).toBe(1400);
    expect(l4ChecksumOk(ptb)).toBe(true);
    expect(Array.from(ptb.subarray(48))).toEqual(Array.from(orig.subarray(0, 1232)));
  });

  it('never announces less than the IPv6 minimum MTU', () => {
    const ptb = buildIpv6PacketTooBig(ipv6Udp(1400), 1200)!;
    expect(u16(ptb, 46)).toBe(1280);
  });

  it('is not sent about ICMPv6 errors or from unspecified/multicast sources', () => {
    const ptb = buildIpv6PacketTooBig(ipv6Udp(1500), 1400)!;
    expect(buildIpv6PacketTooBig(ptb, 1300)).toBeUndefined();
    const mc = ipv6Udp(1500);
    mc[8] = 0xff;
    expect(buildIpv6PacketTooBig(mc, 1300)).toBeUndefined();
    const unspecified = ipv6Udp(1500);
    unspecified.fill(0, 8, 24);
    expect(buildIpv6PacketTooBig(unspecified, 1300)).toBeUndefined();
  });
});

describe('TooBigRateLimiter', () => {
  it('allows a burst, then the rate', () => {
    const rl = new TooBigRateLimiter(10, 5);
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (rl.allow(1000)) allowed++;
    expect(allowed).toBe(5);
    expect(rl.allow(1050)).toBe(false); // half a token
    expect(rl.allow(1100)).toBe(true);
    allowed = 0;
    for (let t = 2000; t < 12_000; t += 10) if (rl.allow(t)) allowed++;
    expect(allowed).toBeGreaterThanOrEqual(100);
    expect(allowed).toBeLessThanOrEqual(106);
  });

  it('does not mint tokens when time goes backwards', () => {
    const rl = new TooBigRateLimiter(10, 1);
    expect(rl.allow(5000)).toBe(true);
    expect(rl.allow(1000)).toBe(false);
    expect(rl.allow(5000)).toBe(false);
  });
});
