import { describe, expect, it } from 'vitest';
import { MAX_SOURCE_ENDPOINTS, SourceEndpointCache } from '../../src/io/source-endpoints.ts';
import { parseIpv6, writeV4Mapped } from '../../src/io/ipv6.ts';
import type { DatagramBatch } from '../../src/io/udp.ts';

/** A batch of sources given as [address text, port]. */
function batchOf(sources: Array<[string, number]>): DatagramBatch {
  const six = sources.map(([a]) => {
    const out = new Uint8Array(16);
    if (a.includes(':')) parseIpv6(a, out);
    else writeV4Mapped(a.split('.').reduce((x, o) => x * 256 + Number(o), 0), out);
    return out;
  });
  return {
    count: sources.length,
    datagram: () => Buffer.alloc(0),
    fromAddressU32: (i) => (sources[i]![0].includes(':') ? 0 : sources[i]![0].split('.').reduce((x, o) => x * 256 + Number(o), 0)),
    fromFamily: (i) => (sources[i]![0].includes(':') ? 6 : 4),
    fromAddress6: (i) => six[i]!,
    fromAddress: (i) => sources[i]![0],
    fromPort: (i) => sources[i]![1],
    tos: () => 0,
  };
}

describe('SourceEndpointCache', () => {
  it('tells IPv6 sources apart (all have fromAddressU32 0) and returns one object per source', () => {
    const cache = new SourceEndpointCache();
    const b = batchOf([
      ['2001:db8::1', 51900],
      ['2001:db8::2', 51900],
      ['2001:db8::1', 51901],
      ['192.0.2.7', 51900],
      ['2001:db8::1', 51900],
    ]);
    const got = [0, 1, 2, 3, 4].map((i) => cache.get(b, i));
    expect(got.map((e) => `${e.address} ${e.port}`)).toEqual(['2001:db8::1 51900', '2001:db8::2 51900', '2001:db8::1 51901', '192.0.2.7 51900', '2001:db8::1 51900']);
    expect(got[4]).toBe(got[0]);
    expect(new Set(got).size).toBe(4);
  });

  it('stays bounded under a flood of distinct sources', () => {
    const cache = new SourceEndpointCache();
    for (let i = 0; i < MAX_SOURCE_ENDPOINTS * 3; i++) {
      const e = cache.get(batchOf([[`2001:db8::${(i % 65535).toString(16)}`, 1 + Math.floor(i / 65535)]]), 0);
      expect(e.address.startsWith('2001:db8::')).toBe(true);
    }
    const internals = cache as unknown as { v6: Map<string, unknown> };
    expect(internals.v6.size).toBeLessThanOrEqual(MAX_SOURCE_ENDPOINTS);
  });
});
