import { describe, expect, it } from 'vitest';
import { InnerMtuStage } from '../../../src/core/inner/fit.ts';
import { TooBigRateLimiter } from '../../../src/core/inner/icmp-too-big.ts';
import { newInnerInfo, parseInner } from '../../../src/core/inner.ts';
import { usableInnerMtu } from '../../../src/core/wire/overhead.ts';
import { ipv4HeaderOk, ipv4Tcp, ipv4Udp, ipv6Udp, l4ChecksumOk } from './packets.ts';

/**
 * A host with a PMTU cache, as RFC 1191 / 8201 describe it: sends packets of min(its MTU, the
 * cached PMTU) with DF, and lowers the cache when a Frag Needed / PTB quoting its packet arrives.
 */
class Host {
  pmtuBytes = 1500;
  received = 0;
  constructor(private readonly v6: boolean) {}
  nextPacket(): Uint8Array {
    return this.v6 ? ipv6Udp(this.pmtuBytes) : ipv4Udp(this.pmtuBytes, true);
  }
  deliver(icmp: Uint8Array): void {
    this.received++;
    const v6 = icmp[0]! >> 4 === 6;
    expect(v6 ? true : ipv4HeaderOk(icmp)).toBe(true);
    expect(l4ChecksumOk(icmp)).toBe(true);
    const mtu = v6 ? ((icmp[44]! << 24) | (icmp[45]! << 16) | (icmp[46]! << 8) | icmp[47]!) >>> 0 : (icmp[26]! << 8) | icmp[27]!;
    if (mtu < this.pmtuBytes) this.pmtuBytes = mtu;
  }
}

describe('InnerMtuStage: the send-path too-big stage', () => {
  for (const v6 of [false, true]) {
    it(`${v6 ? 'IPv6' : 'IPv4'} DF flow over a 1400-byte path: one ICMP, then every packet fits`, () => {
      const stage = new InnerMtuStage();
      const host = new Host(v6);
      const usable = usableInnerMtu(1400, 4);
      let sent = 0;
      for (let t = 0; t < 1000; t++) {
        const p = host.nextPacket();
        const r = stage.fit(t, p, usable);
        if (r.kind === 'fits') sent++;
        else if (r.kind === 'tooBig' && r.icmp) host.deliver(r.icmp);
      }
      expect(host.received).toBe(1);
      expect(host.pmtuBytes).toBe(v6 ? Math.max(1280, usable) : usable);
      expect(sent).toBe(999);
      expect(stage.counters).toMatchObject({ tooBig: 1, tooBigIcmpSent: 1, fragmented: 0 });
    });
  }

  it('IPv4 without DF is fragmented inside the tunnel, every fragment fitting', () => {
    const stage = new InnerMtuStage();
    const r = stage.fit(0, ipv4Udp(1500, false), 1313);
    expect(r.kind).toBe('fragments');
    if (r.kind !== 'fragments') return;
    expect(r.fragments.every((f) => f.length <= 1313 && ipv4HeaderOk(f))).toBe(true);
    expect(stage.counters).toMatchObject({ fragmented: 1, fragmentsOut: 2, tooBig: 0 });
  });

  it('a flood of too-big packets gets rate-limited errors, and is dropped all the same', () => {
    const stage = new InnerMtuStage(new TooBigRateLimiter(10, 3));
    let icmps = 0;
    for (let i = 0; i < 50; i++) {
      const r = stage.fit(0, ipv4Udp(1500, true), 1400);
      expect(r.kind).toBe('tooBig');
      if (r.kind === 'tooBig' && r.icmp) icmps++;
    }
    expect(icmps).toBe(3);
    expect(stage.counters).toMatchObject({ tooBig: 50, tooBigIcmpSent: 3, tooBigIcmpRateLimited: 47 });
  });

  it('clampMss uses the usable MTU of the family', () => {
    const stage = new InnerMtuStage();
    const p = ipv4Tcp({ options: [2, 4, 1460 >> 8, 1460 & 255] });
    expect(stage.clampMss(p, parseInner(p, newInnerInfo())!, 1413)).toBe(true);
    expect((p[42]! << 8) | p[43]!).toBe(1373);
    expect(stage.counters.mssClamped).toBe(1);
  });

  it('garbage is a counted drop, not a throw', () => {
    const stage = new InnerMtuStage();
    expect(stage.fit(0, new Uint8Array(2000), 1400).kind).toBe('drop');
    expect(stage.counters.dropped).toBe(1);
  });
});
