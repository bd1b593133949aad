/**
 * Application rules (steer/rules.ts) on real packets built byte by byte: ordered, first match
 * wins, every field, counters, remarking, and no match for what a rule does not describe.
 */
import { describe, expect, it } from 'vitest';
import { newInnerInfo, parseInner, type InnerInfo } from '../../../src/core/inner.ts';
import { CLASS_NAMES } from '../../../src/core/steer/classes.ts';
import { RuleSet, parsePrefix, remarkDscp, type RuleSpec } from '../../../src/core/steer/rules.ts';
import { ipv4Packet } from './ipv4-packet.ts';

function ipv6Packet(o: { src: string; dst: string; protocol: number; sport: number; dport: number; dscp?: number }): Uint8Array {
  const p = new Uint8Array(80);
  const tc = (o.dscp ?? 0) << 2;
  p[0] = 0x60 | (tc >> 4);
  p[1] = (tc & 0x0f) << 4;
  p[6] = o.protocol;
  p[7] = 64;
  const put = (text: string, at: number): void => {
    const w = parsePrefix(text)!.words;
    for (let i = 0; i < 4; i++) {
      p[at + 4 * i] = w[i]! >>> 24;
      p[at + 4 * i + 1] = (w[i]! >>> 16) & 0xff;
      p[at + 4 * i + 2] = (w[i]! >>> 8) & 0xff;
      p[at + 4 * i + 3] = w[i]! & 0xff;
    }
  };
  put(o.src, 8);
  put(o.dst, 24);
  p[40] = o.sport >> 8;
  p[41] = o.sport & 0xff;
  p[42] = o.dport >> 8;
  p[43] = o.dport & 0xff;
  return p;
}

function parsed(p: Uint8Array): InnerInfo {
  const info = parseInner(p, newInnerInfo());
  if (!info) throw new Error('test packet did not parse');
  return info;
}

const cls = (name: (typeof CLASS_NAMES)[number]): number => CLASS_NAMES.indexOf(name);

const RULES: RuleSpec[] = [
  { name: 'ef-stays', match: { dscp: [46] }, set: { class: 'voice' } },
  { name: 'branch-erp', match: { protocol: 'tcp', srcPrefixes: ['10.1.0.0/16'], dstPrefixes: ['10.9.0.0/16', '2001:db8:9::/48'], dstPorts: [[443, 443], [8000, 8099]] }, set: { class: 'business', dscp: 18 } },
  { name: 'rtp', match: { protocol: 'udp', ports: [[16384, 32767]] }, set: { class: 'voice', dscp: 46 } },
  { name: 'ping', match: { protocol: 'icmp' }, set: { class: 'control' } },
  { name: 'backup-src', match: { protocol: 6, srcPorts: [[873, 873]] }, set: { dscp: 8 } },
];

describe('application rules', () => {
  it('first match wins, in order; every field narrows; no match falls back to the DSCP class', () => {
    const rs = new RuleSet(RULES);
    const check = (p: Uint8Array, rule: string | undefined, klass: (typeof CLASS_NAMES)[number], dscp: number): void => {
      const v = rs.classifyInner(p, parsed(p));
      expect(v.rule === -1 ? undefined : rs.names[v.rule]).toBe(rule);
      expect(v.classId).toBe(cls(klass));
      expect(v.dscp).toBe(dscp);
    };
    // EF-marked RTP matches 'ef-stays' first, not 'rtp'.
    check(ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 17, sport: 20000, dport: 20002, dscp: 46 }), 'ef-stays', 'voice', 46);
    // Unmarked RTP (either port in the range) -> voice, remarked EF.
    check(ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 17, sport: 5555, dport: 20002 }), 'rtp', 'voice', 46);
    check(ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 17, sport: 16384, dport: 5555 }), 'rtp', 'voice', 46);
    check(ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 17, sport: 16383, dport: 32768 }), undefined, 'default', 0);
    // TCP to the ERP: prefix AND port AND protocol.
    check(ipv4Packet({ src: '10.1.7.7', dst: '10.9.1.1', protocol: 6, sport: 40000, dport: 8050 }), 'branch-erp', 'business', 18);
    check(ipv4Packet({ src: '10.3.7.7', dst: '10.9.1.1', protocol: 6, sport: 40000, dport: 8050 }), undefined, 'default', 0); // wrong source
    check(ipv4Packet({ src: '10.1.7.7', dst: '10.8.1.1', protocol: 6, sport: 40000, dport: 443 }), undefined, 'default', 0); // wrong destination
    check(ipv4Packet({ src: '10.1.7.7', dst: '10.9.1.1', protocol: 6, sport: 40000, dport: 8100 }), undefined, 'default', 0); // port past the range
    check(ipv4Packet({ src: '10.1.7.7', dst: '10.9.1.1', protocol: 17, sport: 40000, dport: 443 }), undefined, 'default', 0); // UDP, not TCP
    // Protocol only; a set DSCP without a class gives that DSCP's class (CS1 -> bulk).
    check(ipv4Packet({ src: '10.1.0.5', dst: '8.8.8.8', protocol: 1 }), 'ping', 'control', 0);
    check(ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 6, sport: 873, dport: 40000, dscp: 0 }), 'backup-src', 'bulk', 8);
    // A non-first fragment has no ports: port rules do not match it.
    check(ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 17, sport: 20000, dport: 20002, fragOffset: 100 }), undefined, 'default', 0);
    // Marked AF41 with no rule: classes.ts's DSCP map.
    check(ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 17, sport: 1, dport: 2, dscp: 34 }), undefined, 'video', 34);
  });

  it('IPv6: prefixes of either family only match their own family', () => {
    const rs = new RuleSet(RULES);
    const erp6 = ipv6Packet({ src: '2001:db8:1::5', dst: '2001:db8:9::10', protocol: 6, sport: 40000, dport: 443 });
    // The source prefix list is IPv4 only: an IPv6 source does not match it.
    expect(rs.classifyInner(erp6, parsed(erp6)).rule).toBe(-1);
    const rs6 = new RuleSet([{ name: 'erp6', match: { protocol: 'tcp', srcPrefixes: ['2001:db8:1::/48'], dstPrefixes: ['2001:db8:9::/48'] }, set: { class: 'business' } }]);
    expect(rs6.names[rs6.classifyInner(erp6, parsed(erp6)).rule]).toBe('erp6');
    const other6 = ipv6Packet({ src: '2001:db8:1::5', dst: '2001:db8:a::10', protocol: 6, sport: 40000, dport: 443 });
    expect(rs6.classifyInner(other6, parsed(other6)).rule).toBe(-1);
    const rtp6 = ipv6Packet({ src: '2001:db8:1::5', dst: '2001:db8:2::5', protocol: 17, sport: 20000, dport: 20000 });
    expect(rs.names[rs.classifyInner(rtp6, parsed(rtp6)).rule]).toBe('rtp');
  });

  it('counts packets and bytes per rule; a reload keeps the counts of rules that kept their name and place', () => {
    const rs = new RuleSet(RULES);
    const rtp = ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 17, sport: 5555, dport: 20002, sizeBytes: 200 });
    const info = parsed(rtp);
    for (let i = 0; i < 5; i++) rs.classifyInner(rtp, info);
    const other = ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 17, sport: 1, dport: 2 });
    rs.classifyInner(other, parsed(other));
    const c = rs.counters();
    expect(c.find((r) => r.name === 'rtp')).toEqual({ name: 'rtp', class: 'voice', packets: 5, bytes: 1000, flows: 0 });
    expect(c.find((r) => r.name === 'backup-src')!.class).toBeUndefined(); // sets only a DSCP
    expect(c.reduce((s, r) => s + r.packets, 0)).toBe(5);
    const next = new RuleSet(RULES);
    rs.refs[2]!.flows = 2; // steering counts the flows a rule starts (World test: teams-rules-world)
    next.carryCountersFrom(rs);
    expect(next.counters()[2]!.packets).toBe(5);
    expect(next.counters()[2]!.flows).toBe(2);
    const reordered = new RuleSet([RULES[2]!, ...RULES.slice(0, 2)]);
    reordered.carryCountersFrom(rs);
    expect(reordered.counters()[0]!.packets).toBe(0); // moved: counted afresh
  });

  it('remarkDscp rewrites the DSCP, keeps ECN and leaves a valid IPv4 header checksum', () => {
    const p = ipv4Packet({ src: '10.1.0.5', dst: '10.2.0.9', protocol: 17, sport: 5555, dport: 20002 });
    p[1] = p[1]! | 0x02; // ECT(0)
    // fix the checksum for the ECN change
    p[10] = 0;
    p[11] = 0;
    const sum16 = (b: Uint8Array): number => {
      let s = 0;
      for (let i = 0; i < 20; i += 2) s += (b[i]! << 8) | b[i + 1]!;
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      return s;
    };
    const c = ~sum16(p) & 0xffff;
    p[10] = c >> 8;
    p[11] = c & 0xff;
    const info = parsed(p);
    remarkDscp(p, info, 46);
    expect(p[1]! >> 2).toBe(46);
    expect(p[1]! & 0x03).toBe(0x02);
    expect(sum16(p)).toBe(0xffff); // a valid header sums to all ones
    expect(info.dscp).toBe(46);
    const p6 = ipv6Packet({ src: '2001:db8::1', dst: '2001:db8::2', protocol: 17, sport: 1, dport: 2, dscp: 10 });
    const info6 = parsed(p6);
    remarkDscp(p6, info6, 46);
    expect(parsed(p6).dscp).toBe(46);
    expect(p6[0]! >> 4).toBe(6);
  });

  it('refuses rules the core cannot run, naming the rule and the field', () => {
    expect(() => new RuleSet([{ name: 'x', match: { protocol: 'udpp' }, set: { class: 'voice' } }])).toThrow(/rule x: protocol udpp/);
    expect(() => new RuleSet([{ name: 'y', match: { dstPrefixes: ['10.0.0.0/33'] }, set: { class: 'voice' } }])).toThrow(/rule y: dstPrefixes: "10.0.0.0\/33"/);
    expect(() => new RuleSet([{ name: 'z', match: { ports: [[10, 5]] }, set: { class: 'voice' } }])).toThrow(/rule z: ports: 10-5/);
    expect(() => new RuleSet([{ name: 'w', match: {}, set: {} }])).toThrow(/rule w: set needs a class or a dscp/);
  });

  it('parses prefixes: IPv4 hosts and networks, IPv6 with ::, and masks the host bits', () => {
    expect(Array.from(parsePrefix('52.113.1.1/14')!.words)).toEqual([0x34700000, 0, 0, 0]);
    expect(parsePrefix('192.0.2.7')!.len).toBe(32);
    expect(Array.from(parsePrefix('2603:1063::/38')!.words)).toEqual([0x26031063, 0, 0, 0]);
    expect(Array.from(parsePrefix('::1')!.words)).toEqual([0, 0, 0, 1]);
    for (const bad of ['10.0.0/8', '10.0.0.256', '1::2::3', '2001:db8::/129', 'x', '10.0.0.0/']) expect(parsePrefix(bad)).toBeUndefined();
  });
});
