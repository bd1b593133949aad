import { describe, expect, it } from 'vitest';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';
import { MAX_PEERS } from '../../src/core/constants.ts';
import { parseEndpoint, peerLinks, peersSchema, validatePeers, type CheckPeersContext } from '../../src/control/config-peers.ts';

const KEY_A = 'YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=';
const KEY_B = 'YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI=';
const KEY_C = 'Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2M=';
const ctx: CheckPeersContext = { source: 'hub.yaml', linkNames: ['mpls', 'inet', 'lte'] };

function errorOf(f: () => unknown): BraidError {
  try {
    f();
  } catch (e) {
    if (e instanceof BraidError) return e;
    throw e;
  }
  throw new Error('expected a BraidError');
}

const branch = (name: string, key: string, prefixes: string[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name, publicKey: key, prefixes, ...extra });

describe('peers schema (issue 11)', () => {
  it('reads a hub with three spokes: endpoints per link name, both families, learned endpoints, links, keepalive', () => {
    const peers = validatePeers(
      [
        branch('branch-1', KEY_A, ['10.1.0.0/16', '2001:DB8:1::/48'], { endpoints: { mpls: '203.0.113.7:51820', lte: '[2001:db8:0::1]:51820' } }),
        branch('branch-2', KEY_B, ['10.2.0.0/16'], { links: ['inet', 'lte'], endpoints: { inet: '198.51.100.2:51900' } }),
        branch('branch-3', KEY_C, ['10.3.0.0/24', '10.3.0.0/25'], { links: ['lte'], persistentKeepalive: 25 }),
      ],
      ctx,
    );
    expect(peers[0]!.prefixes).toEqual(['10.1.0.0/16', '2001:db8:1::/48']);
    expect(peers[0]!.endpoints).toEqual({ mpls: { address: '203.0.113.7', port: 51820, family: 4 }, lte: { address: '2001:db8::1', port: 51820, family: 6 } });
    expect(peers[2]!.endpoints).toBeUndefined();
    expect(peers[2]!.persistentKeepalive).toBe(25);
    expect(peerLinks(peers[0]!, ctx.linkNames)).toEqual(['mpls', 'inet', 'lte']);
    expect(peerLinks(peers[1]!, ctx.linkNames)).toEqual(['inet', 'lte']);
  });

  it('takes up to MAX_PEERS peers and refuses one more', () => {
    const many = Array.from({ length: MAX_PEERS + 1 }, (_, i) => ({ name: `b${i}`, prefixes: [] }));
    expect(peersSchema.safeParse(many.slice(0, MAX_PEERS)).success).toBe(true);
    const e = errorOf(() => validatePeers(many, { ...ctx, requirePublicKeys: false }));
    expect(e.message).toContain(`at most ${MAX_PEERS} peers`);
  });

  it.each([
    ['host bits in a prefix', [branch('b1', KEY_A, ['10.1.2.0/16'])], 'peers[0].prefixes[0]', /prefix "10\.1\.2\.0\/16": host bits are set.*10\.1\.0\.0\/16/],
    ['a prefix that is not one', [branch('b1', KEY_A, ['10.1.0.0/40'])], 'peers[0].prefixes[0]', /prefix length "40" is not 0\.\.32/],
    ['an endpoint without a port', [branch('b1', KEY_A, [], { endpoints: { mpls: '203.0.113.7' } })], 'peers[0].endpoints.mpls', /expected "ADDRESS:PORT"/],
    ['an IPv6 endpoint without brackets', [branch('b1', KEY_A, [], { endpoints: { lte: '2001:db8::1:51820' } })], 'peers[0].endpoints.lte', /brackets/],
    ['a host name as endpoint', [branch('b1', KEY_A, [], { endpoints: { lte: 'hub.example.net:51820' } })], 'peers[0].endpoints.lte', /names are not resolved/],
    ['keepalive in fractions', [branch('b1', KEY_A, [], { persistentKeepalive: 2.5 })], 'peers[0].persistentKeepalive', /whole seconds/],
    ['an unknown key', [branch('b1', KEY_A, [], { allowedIPs: ['10.0.0.0/8'] })], 'peers[0].allowedIPs', /unknown key "allowedIPs"/],
    ['a missing name', [{ publicKey: KEY_A }], 'peers[0].name', /missing/],
  ])('schema: %s names the field', (_what, raw, field, problem) => {
    const e = errorOf(() => validatePeers(raw, ctx));
    expect(e.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(new RegExp(`^config hub\\.yaml: ${field.replace(/[.[\]]/g, '\\$&')}: `));
    expect(e.message).toMatch(problem);
    expect(e.fix).toBeTruthy();
  });

  it.each([
    ['duplicate names', [branch('b1', KEY_A, []), branch('b1', KEY_B, [])], 'peers[1].name', /duplicate peer name "b1" \(also peers\[0\]\)/, /unique name/],
    ['duplicate keys', [branch('b1', KEY_A, []), branch('b2', KEY_A, [])], 'peers[1].publicKey', /the same key as peers\[0\] \("b1"\)/, /braid pubkey/],
    ['a missing key', [{ name: 'b1', prefixes: [] }], 'peers[0].publicKey', /missing/, /braid pubkey/],
    ['one prefix on two peers', [branch('b1', KEY_A, ['10.1.0.0/16']), branch('b2', KEY_B, ['10.2.0.0/16', '10.1.0.0/16'])], 'peers[1].prefixes[1]', /10\.1\.0\.0\/16 is also a prefix of peers\[0\] \("b1"\)/, /longest match/],
    ['the same IPv6 prefix spelt twice', [branch('b1', KEY_A, ['2001:db8:1::/48']), branch('b2', KEY_B, ['2001:DB8:1:0::/48'])], 'peers[1].prefixes[0]', /2001:db8:1::\/48 is also a prefix of peers\[0\]/, /one peer/],
    ['a prefix listed twice on one peer', [branch('b1', KEY_A, ['10.1.0.0/16', '10.1.0.0/16'])], 'peers[0].prefixes[1]', /listed twice/, /remove/],
    ['an endpoint on a link that does not exist', [branch('b1', KEY_A, [], { endpoints: { dsl: '192.0.2.1:51820' } })], 'peers[0].endpoints.dsl', /no link named "dsl"/, /mpls, inet, lte/],
    ['a link that does not exist', [branch('b1', KEY_A, [], { links: ['mpls', 'sat'] })], 'peers[0].links[1]', /no link named "sat"/, /mpls, inet, lte/],
    ['a link listed twice', [branch('b1', KEY_A, [], { links: ['mpls', 'mpls'] })], 'peers[0].links[1]', /listed twice/, /remove/],
    ['an endpoint on a link the peer may not use', [branch('b1', KEY_A, [], { links: ['lte'], endpoints: { mpls: '192.0.2.1:51820' } })], 'peers[0].endpoints.mpls', /not in peers\[0\]\.links \(lte\)/, /add mpls to peers\[0\]\.links/],
  ])('cross-check: %s names the field and the fix', (_what, raw, field, problem, fix) => {
    const e = errorOf(() => validatePeers(raw, ctx));
    expect(e.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(e.field).toBe(field);
    expect(e.message.startsWith(`config hub.yaml: ${field}: `)).toBe(true);
    expect(e.message).toMatch(problem);
    expect(e.fix).toMatch(fix);
  });

  it('lets overlapping prefixes of different lengths through (longest match decides) and keys be absent in plaintext mode', () => {
    const peers = validatePeers([{ name: 'hub', prefixes: ['10.0.0.0/8'] }, { name: 'b1', prefixes: ['10.1.0.0/16'] }], { ...ctx, requirePublicKeys: false });
    expect(peers.map((p) => p.prefixes)).toEqual([['10.0.0.0/8'], ['10.1.0.0/16']]);
  });
});

describe('parseEndpoint', () => {
  it('reads IPv4 and bracketed IPv6, canonical address', () => {
    expect(parseEndpoint('203.0.113.7:51820')).toEqual({ address: '203.0.113.7', port: 51820, family: 4 });
    expect(parseEndpoint('[2001:DB8::0:1]:443')).toEqual({ address: '2001:db8::1', port: 443, family: 6 });
  });
  it.each(['203.0.113.7:0', '203.0.113.7:65536', '[203.0.113.7]:51820', '[fe80::1%eth0]:51820', '203.0.113:51820', ':51820'])('refuses %s with a reason', (s) => {
    expect(typeof parseEndpoint(s)).toBe('string');
  });
});
