// IPv6 underlay and inner addresses in the config (issue 13): links bound to IPv6 addresses,
// an IPv6 TUN address, and endpoints whose family the link's socket cannot reach refused at load.
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';
import { parseConfigText } from '../../src/control/config.ts';

const KEY = 'YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=';

function config(link: Record<string, unknown>, endpoint: string, tun: Record<string, unknown> = {}): string {
  return stringify({
    site: 'a',
    insecurePlaintext: true,
    tun: { address: '10.99.0.1/24', ...tun },
    links: [{ name: 'wan', interface: 'eth0', ...link }],
    peers: [{ name: 'b', publicKey: KEY, endpoints: { wan: endpoint } }],
  });
}

function errorOf(f: () => unknown): BraidError {
  try {
    f();
  } catch (e) {
    if (e instanceof BraidError) return e;
    throw e;
  }
  throw new Error('expected a BraidError');
}

describe('config: IPv6 underlay', () => {
  it('reads a link bound to an IPv6 address with an IPv6 endpoint, canonicalised', () => {
    const cfg = parseConfigText(config({ bind: 'FD00:0:0::1' }, '[fd00::2]:51820', { address6: 'fd99:0::1/64' }), 'a.yaml');
    expect(cfg.links[0]!.bind).toBe('fd00::1');
    expect(cfg.peers[0]!.endpoints).toEqual({ wan: { address: 'fd00::2', port: 51820, family: 6 } });
    expect(cfg.tun.address6).toBe('fd99::1/64');
  });

  it("'::' takes endpoints of both families; the default bind stays 0.0.0.0", () => {
    expect(parseConfigText(config({ bind: '::' }, '192.0.2.2:51820'), 'a.yaml').links[0]!.bind).toBe('::');
    expect(parseConfigText(config({ bind: '::' }, '[2001:db8::2]:51820'), 'a.yaml').peers[0]!.endpoints!.wan!.family).toBe(6);
    expect(parseConfigText(config({}, '192.0.2.2:51820'), 'a.yaml').links[0]!.bind).toBe('0.0.0.0');
  });

  it.each([
    ['an IPv6 endpoint over a link bound to 0.0.0.0', {}, '[fd00::2]:51820', 'peers[0].endpoints.wan', /IPv6 endpoint, but link "wan" is bound to IPv4 address 0\.0\.0\.0/],
    ['an IPv4 endpoint over a link bound to an IPv6 address', { bind: 'fd00::1' }, '192.0.2.2:51820', 'peers[0].endpoints.wan', /IPv4 endpoint, but link "wan" is bound to IPv6 address fd00::1/],
    ['a bind address that is not one', { bind: 'fd00::1::2' }, '[fd00::2]:51820', 'links[0].bind', /expected an IPv4 address .* or an IPv6 one/],
  ])('refuses %s, naming the field and the fix', (_what, link, endpoint, field, problem) => {
    const e = errorOf(() => parseConfigText(config(link, endpoint), 'a.yaml'));
    expect(e.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(problem);
    expect(e.message).toMatch(/^a\.yaml:\d+:\d+: /);
    expect(e.fix).toBeTruthy();
  });

  it('refuses a TUN IPv6 address without a prefix length or of the wrong family', () => {
    for (const bad of ['fd99::1', '10.0.0.1/24', 'fd99::1/129']) {
      const e = errorOf(() => parseConfigText(config({}, '192.0.2.2:51820', { address6: bad }), 'a.yaml'));
      expect(e.field).toBe('tun.address6');
      expect(e.message).toMatch(/expected an IPv6 address with its prefix length/);
    }
  });
});
