import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isIPv6 } from 'node:net';
import { addressFamily, formatEndpointText, formatIpv6, isV4Mapped, parseEndpointText, parseIpv6, writeV4Mapped } from '../../src/io/ipv6.ts';

describe('IPv6 addresses and endpoints', () => {
  it('parses the usual forms', () => {
    expect(Array.from(parseIpv6('2001:db8::1')!)).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(Array.from(parseIpv6('::')!)).toEqual(new Array(16).fill(0));
    expect(Array.from(parseIpv6('::1')!).at(-1)).toBe(1);
    expect(Array.from(parseIpv6('::ffff:192.0.2.1')!).slice(10)).toEqual([0xff, 0xff, 192, 0, 2, 1]);
    expect(parseIpv6('1:2:3:4:5:6:7:8')).toBeDefined();
    for (const bad of ['', ':', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'fe80::1%eth0', '::g', '1.2.3.4', '1:2:3:4:5:6:7::8:9']) {
      expect(parseIpv6(bad), bad).toBeUndefined();
    }
  });

  it('formats in RFC 5952 form and round-trips random addresses; agrees with node:net on validity (property)', () => {
    expect(formatIpv6(parseIpv6('2001:0db8:0000:0000:0001:0000:0000:0001')!)).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6(parseIpv6('2001:db8:0:1:1:1:1:1')!)).toBe('2001:db8:0:1:1:1:1:1');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.boolean(), (bytes, sparse) => {
        if (sparse) bytes.fill(0, 4, 12);
        const text = formatIpv6(bytes);
        expect(isIPv6(text)).toBe(true);
        expect(Array.from(parseIpv6(text)!)).toEqual(Array.from(bytes));
      }),
    );
    fc.assert(
      fc.property(fc.ipV6(), (text) => {
        expect(parseIpv6(text) !== undefined).toBe(isIPv6(text));
      }),
    );
  });

  it('v4-mapped helpers', () => {
    const b = new Uint8Array(20);
    writeV4Mapped(0xc0000201, b, 4);
    expect(isV4Mapped(b, 4)).toBe(true);
    expect(formatIpv6(b, 4)).toBe('::ffff:192.0.2.1');
  });

  it('endpoints: [v6]:port and v4:port', () => {
    expect(parseEndpointText('[2001:db8::1]:51900')).toEqual({ address: '2001:db8::1', port: 51900 });
    expect(parseEndpointText('[2001:DB8:0::1]:1')).toEqual({ address: '2001:db8::1', port: 1 });
    expect(parseEndpointText('[::ffff:192.0.2.7]:5')).toEqual({ address: '192.0.2.7', port: 5 });
    expect(parseEndpointText('192.0.2.20:51900')).toEqual({ address: '192.0.2.20', port: 51900 });
    for (const bad of ['2001:db8::1:51900', '[2001:db8::1]51900', '[2001:db8::1]:0', '1.2.3.4:70000', '[::1]:', 'host:80']) {
      expect(parseEndpointText(bad), bad).toBeUndefined();
    }
    expect(formatEndpointText({ address: '2001:db8::1', port: 51900 })).toBe('[2001:db8::1]:51900');
    expect(formatEndpointText({ address: '192.0.2.1', port: 7 })).toBe('192.0.2.1:7');
    expect(addressFamily('::1')).toBe(6);
    expect(addressFamily('10.0.0.1')).toBe(4);
    expect(addressFamily('x')).toBeUndefined();
  });
});
