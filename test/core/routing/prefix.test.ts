import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BraidError, ErrorCode } from '../../../src/core/errors.ts';
import { formatAddress, isPrefix, parsePrefix } from '../../../src/core/routing/prefix.ts';

function errorOf(f: () => unknown): BraidError {
  try {
    f();
  } catch (e) {
    if (e instanceof BraidError) return e;
    throw e;
  }
  throw new Error('expected a BraidError');
}

describe('parsePrefix', () => {
  it('parses IPv4 and IPv6 prefixes into bytes, length and canonical text', () => {
    const p = parsePrefix('10.1.0.0/16');
    expect(p).toMatchObject({ family: 4, lengthBits: 16, text: '10.1.0.0/16' });
    expect([...p.bytes]).toEqual([10, 1, 0, 0]);
    const q = parsePrefix('2001:DB8:0:0:1::/80');
    expect(q).toMatchObject({ family: 6, lengthBits: 80, text: '2001:db8:0:0:1::/80' });
    expect(parsePrefix('0.0.0.0/0').text).toBe('0.0.0.0/0');
    expect(parsePrefix('::/0').text).toBe('::/0');
    expect(parsePrefix('::ffff:192.0.2.0/120').text).toBe('::ffff:c000:200/120');
  });

  it('takes a bare address as a host prefix', () => {
    expect(parsePrefix('192.0.2.7').text).toBe('192.0.2.7/32');
    expect(parsePrefix('2001:db8::7').text).toBe('2001:db8::7/128');
  });

  it('refuses host bits by default, naming the prefix and the masked form', () => {
    const e = errorOf(() => parsePrefix('10.1.2.3/16'));
    expect(e.code).toBe(ErrorCode.PREFIX_INVALID);
    expect(e.message).toContain('"10.1.2.3/16"');
    expect(e.fix).toContain('10.1.0.0/16');
    const e6 = errorOf(() => parsePrefix('2001:db8::1/64'));
    expect(e6.fix).toContain('2001:db8::/64');
  });

  it('masks host bits off with normalise', () => {
    expect(parsePrefix('10.1.2.3/16', { normalise: true }).text).toBe('10.1.0.0/16');
    expect(parsePrefix('10.1.2.255/25', { normalise: true }).text).toBe('10.1.2.128/25');
    expect(parsePrefix('2001:db8:ffff::1/33', { normalise: true }).text).toBe('2001:db8:8000::/33');
  });

  it.each([
    ['10.1.0/16', 'is not an IPv4 address'],
    ['10.1.0.256/32', 'is not an IPv4 address'],
    ['010.1.0.0/16', 'is not an IPv4 address'],
    ['10.1.0.0/33', 'prefix length "33"'],
    ['10.1.0.0/', 'prefix length ""'],
    ['10.1.0.0/016', 'prefix length "016"'],
    ['2001:db8::/129', 'prefix length "129"'],
    ['2001:db8:::/48', 'is not an IPv6 address'],
    ['1:2:3:4:5:6:7:8:9/128', 'is not an IPv6 address'],
    ['1::2::3/128', 'is not an IPv6 address'],
    ['12345::/16', 'is not an IPv6 address'],
    ['fe80::1%eth0/128', 'zone id'],
    ['', 'is not an IPv4 address'],
    ['hub', 'is not an IPv4 address'],
  ])('refuses %s', (text, why) => {
    const e = errorOf(() => parsePrefix(text));
    expect(e.code).toBe(ErrorCode.PREFIX_INVALID);
    expect(e.message).toContain(`prefix "${text}"`);
    expect(e.message).toContain(why);
    expect(e.fix).toBeTruthy();
    expect(isPrefix(text)).toBe(false);
  });

  it('formats IPv6 per RFC 5952 (longest zero run, first on a tie, no :: for one group)', () => {
    const v6 = (s: string): string => formatAddress(parsePrefix(s).bytes);
    expect(v6('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(v6('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(v6('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(v6('1:0:0:0:0:0:0:0')).toBe('1::');
    expect(v6('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3');
  });

  it('round-trips: the canonical text parses back to itself (property, both families)', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(128), (v4, raw, len) => {
        const bytes = v4 ? raw.subarray(0, 4) : raw;
        const lengthBits = v4 ? len % 33 : len;
        const text = `${formatAddress(bytes)}/${lengthBits}`;
        const p = parsePrefix(text, { normalise: true });
        expect(parsePrefix(p.text).text).toBe(p.text);
        expect(p.family).toBe(v4 ? 4 : 6);
        expect(p.lengthBits).toBe(lengthBits);
      }),
    );
  });
});
