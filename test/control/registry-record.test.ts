import { describe, expect, it } from 'vitest';
import { encodeSiteRecord, fleetPeers, parseSiteRecord, type LocalSite, type SiteRecord } from '../../src/control/registry-record.ts';
import { parseConfigText } from '../../src/control/config.ts';
import { BraidError } from '../../src/core/errors.ts';

const K1 = 'hjV0rQ3Zq9X2bW5tV4Q8n1Jk6Lm7Op8Rs9Tu0Vw1Xy8=';
const K2 = 'AjV0rQ3Zq9X2bW5tV4Q8n1Jk6Lm7Op8Rs9Tu0Vw1Xy8=';
const K3 = 'BjV0rQ3Zq9X2bW5tV4Q8n1Jk6Lm7Op8Rs9Tu0Vw1Xy8=';
const K4 = 'CjV0rQ3Zq9X2bW5tV4Q8n1Jk6Lm7Op8Rs9Tu0Vw1Xy8=';

const value = (o: Record<string, unknown>): string => JSON.stringify({ version: 1, role: 'spoke', publicKey: K1, prefixes: ['10.1.0.0/16'], links: { inet: { endpoint: '192.0.2.1:51900' } }, ...o });

describe('parseSiteRecord', () => {
  it('reads a valid value (canonical prefixes, IPv6 endpoints, links without endpoints, mesh default false)', () => {
    const r = parseSiteRecord('branch-1', value({ prefixes: ['2001:DB8:7::/48'], links: { inet: { endpoint: '[2001:db8::1]:51900' }, lte: {} } }));
    expect(r).toEqual({
      name: 'branch-1',
      role: 'spoke',
      mesh: false,
      publicKey: K1,
      prefixes: ['2001:db8:7::/48'],
      links: { inet: { endpoint: { address: '2001:db8::1', port: 51900, family: 6 } }, lte: {} },
    });
  });

  it('round-trips what encodeSiteRecord writes, and ignores fields it does not know', () => {
    const r = parseSiteRecord('hub', value({ role: 'hub', mesh: true, futureField: { x: 1 } }));
    if (typeof r === 'string') throw new Error(r);
    const { name: _n, ...rest } = r;
    expect(parseSiteRecord('hub', encodeSiteRecord(rest))).toEqual(r);
  });

  it.each([
    ['not JSON', 'garbage{', /^not JSON/],
    ['an array', '[1,2]', /expected a JSON object/],
    ['a newer version', value({ version: 2 }), /^version: expected 1/],
    ['a bad key', value({ publicKey: 'abc' }), /^publicKey: expected a base64 X25519 public key/],
    ['an unknown role', value({ role: 'boss' }), /^role:/],
    ['a prefix with host bits', value({ prefixes: ['10.1.2.0/16'] }), /^prefixes\[0\]: .*host bits/],
    ['a bad endpoint', value({ links: { inet: { endpoint: 'example.com:1' } } }), /^links\.inet\.endpoint: .*not an IP address/],
    ['no links', value({ links: {} }), /^links: expected 1 to/],
    ['a bad link name', value({ links: { 'In Et': {} } }), /^links\.In Et: expected a link name/],
    ['a huge value', 'x'.repeat(20_000), /^value of 20000 bytes/],
  ])('refuses %s with one line naming the field', (_what, v, re) => {
    const r = parseSiteRecord('branch-1', v);
    expect(typeof r).toBe('string');
    expect(r).toMatch(re);
    expect(r as string).not.toContain('\n');
  });

  it('refuses a key that is not a site name (a deeper path under the prefix)', () => {
    expect(parseSiteRecord('a/b', value({}))).toMatch(/is not a site name/);
    expect(parseSiteRecord('', value({}))).toMatch(/is not a site name/);
  });
});

const site = (name: string, role: 'hub' | 'spoke', key: string, prefixes: string[], links: SiteRecord['links'], mesh = false): SiteRecord => ({ name, role, mesh, publicKey: key, prefixes, links });
const ep = (address: string): { endpoint: { address: string; port: number; family: 4 } } => ({ endpoint: { address, port: 51900, family: 4 } });

describe('fleetPeers', () => {
  const hub = site('hub', 'hub', K1, ['10.0.0.0/16'], { inet: ep('192.0.2.1'), lte: ep('198.51.100.1') });
  const s1 = site('branch-1', 'spoke', K2, ['10.1.0.0/16'], { inet: ep('192.0.2.11') });
  const s2 = site('branch-2', 'spoke', K3, ['10.2.0.0/16'], { lte: {} });

  it('a hub peers with every spoke, on the links named alike, with their endpoints', () => {
    const local: LocalSite = { name: 'hub', role: 'hub', mesh: false, publicKey: K1, linkNames: ['inet', 'lte'] };
    const { peers, skipped } = fleetPeers(local, [s2, hub, s1]);
    expect(skipped).toEqual([]);
    expect(peers).toEqual([
      { name: 'branch-1', publicKey: K2, prefixes: ['10.1.0.0/16'], endpoints: { inet: ep('192.0.2.11').endpoint }, links: ['inet'] },
      { name: 'branch-2', publicKey: K3, prefixes: ['10.2.0.0/16'], links: ['lte'] },
    ]);
  });

  it('a spoke peers with the hub only and routes the other spokes through it', () => {
    const local: LocalSite = { name: 'branch-1', role: 'spoke', mesh: false, publicKey: K2, linkNames: ['inet'], persistentKeepalive: 5 };
    const { peers } = fleetPeers(local, [hub, s1, s2]);
    expect(peers).toEqual([{ name: 'hub', publicKey: K1, prefixes: ['10.0.0.0/16', '10.2.0.0/16'], endpoints: { inet: ep('192.0.2.1').endpoint }, links: ['inet'], persistentKeepalive: 5 }]);
  });

  it('a hub prefix that covers the spokes keeps the spoke route list short', () => {
    const bigHub = { ...hub, prefixes: ['10.0.0.0/8'] };
    const local: LocalSite = { name: 'branch-1', role: 'spoke', mesh: false, publicKey: K2, linkNames: ['inet'] };
    expect(fleetPeers(local, [bigHub, s1, s2]).peers[0]!.prefixes).toEqual(['10.0.0.0/8']);
  });

  it('spokes that both say mesh peer directly', () => {
    const local: LocalSite = { name: 'branch-1', role: 'spoke', mesh: true, publicKey: K2, linkNames: ['inet', 'lte'] };
    const m2 = { ...s2, mesh: true };
    expect(fleetPeers(local, [hub, s1, m2]).peers.map((p) => p.name)).toEqual(['branch-2', 'hub']);
    expect(fleetPeers(local, [hub, s1, s2]).peers.map((p) => p.name)).toEqual(['hub']);
  });

  it('skips, with the reason, what cannot be a peer: YAML names, keys and prefixes win; own key; no common link', () => {
    const local: LocalSite = { name: 'hub', role: 'hub', mesh: false, publicKey: K1, linkNames: ['mpls'] };
    const yaml = [{ name: 'branch-1', publicKey: K4, prefixes: ['10.2.0.0/16'] }];
    const clone = site('clone', 'spoke', K1, ['10.9.0.0/16'], { mpls: {} });
    const s3 = site('branch-3', 'spoke', K4, ['10.3.0.0/16'], { mpls: {} });
    const s4 = site('branch-4', 'spoke', 'DjV0rQ3Zq9X2bW5tV4Q8n1Jk6Lm7Op8Rs9Tu0Vw1Xy8=', ['10.2.0.0/16'], { mpls: {} });
    const { peers, skipped } = fleetPeers(local, [s1, s2, clone, s3, s4], yaml);
    expect(peers).toEqual([]);
    expect(skipped).toEqual([
      { name: 'branch-1', reason: 'a peer of that name is in the YAML peers (they win)' },
      { name: 'branch-2', reason: 'no link in common (it has lte; this site mpls)' },
      { name: 'branch-3', reason: 'the public key of another peer' },
      { name: 'branch-4', reason: 'prefix 10.2.0.0/16 is already another peer\'s' },
      { name: 'clone', reason: "this site's own public key" },
    ]);
  });
});

describe('registry: config section', () => {
  const base = (registry: string, peers = ''): string => `site: hub
privateKeyFile: /k
tun: { address: 10.0.0.1/24 }
links: [{ name: inet, interface: eth0 }]
${peers}
registry:
${registry}
`;
  const err = (text: string): string => {
    try {
      parseConfigText(text, 'c.yaml');
    } catch (e) {
      return (e as BraidError).oneLine();
    }
    return 'no error';
  };

  it('takes a registry instead of peers, with the defaults filled in', () => {
    const cfg = parseConfigText(base('  etcd: { endpoints: [http://127.0.0.1:2379] }\n  role: hub\n  prefixes: [10.0.0.0/8]\n  endpoints: { inet: 192.0.2.1:51900 }'), 'c.yaml');
    expect(cfg.peers).toEqual([]);
    expect(cfg.registry).toMatchObject({ etcd: { prefix: '/braid/', leaseTtl: 15 }, role: 'hub', mesh: false, publish: true, prefixes: ['10.0.0.0/8'] });
    expect(cfg.registry!.endpoints!.inet).toEqual({ address: '192.0.2.1', port: 51900, family: 4 });
  });

  it('says what is wrong, with the field and the fix, one line each', () => {
    expect(err(base('  etcd: { endpoints: [] }'))).toMatch(/registry\.etcd\.endpoints: list at least one etcd endpoint/);
    expect(err(base('  etcd: { endpoints: [etcd.example] }'))).toMatch(/registry\.etcd\.endpoints\[0\]: expected an etcd client URL/);
    expect(err(base('  etcd: { endpoints: [http://a:1], prefix: braid }'))).toMatch(/registry\.etcd\.prefix: expected a key prefix that starts and ends with "\/"/);
    expect(err(base('  etcd: { endpoints: [http://a:1] }\n  endpoints: { lte: 192.0.2.1:1 }'))).toMatch(/registry\.endpoints\.lte: no link named "lte".*fix: use one of the link names: inet/);
    expect(err(base('  etcd: { endpoints: [https://a:1] }'))).toMatch(/registry\.etcd\.endpoints\[0\]: https:\/\/a:1 is https but registry\.etcd\.tls is not set/);
    expect(err(base('  etcd: { endpoints: [https://a:1], tls: { ca: /ca, cert: /c } }'))).toMatch(/registry\.etcd\.tls\.key: missing/);
    expect(err(base('  etcd: { endpoints: [http://a:1] }\n  role: boss'))).toMatch(/registry\.role:/);
    expect(err(base('  etcd: { endpoints: [http://a:1] }\n  colour: red'))).toMatch(/unknown key "colour"/);
  });

  it('without a registry, peers are still required', () => {
    const text = `site: hub\nprivateKeyFile: /k\ntun: { address: 10.0.0.1/24 }\nlinks: [{ name: inet, interface: eth0 }]\n`;
    expect(err(text)).toMatch(/peers: missing \(at least one peer is needed\).*fix: .*registry:/);
  });
});

describe('braid status: the registry line', () => {
  it('says connected with the counts, or UNREACHABLE with how long and the last known set', async () => {
    const { registryText } = await import('../../src/cli/status.ts');
    const base = { endpoints: ['http://10.9.0.5:2379'], prefix: '/braid/', sites: 41, peers: 40, invalidValues: 0, published: true };
    expect(registryText({ ...base, state: 'connected' })).toBe('connected (etcd http://10.9.0.5:2379/braid/), 41 sites, 40 peers from it');
    expect(registryText({ ...base, state: 'unreachable', unreachableForMs: 12_345, lastError: 'connect ECONNREFUSED', invalidValues: 2 })).toBe(
      'UNREACHABLE for 12.3s (etcd http://10.9.0.5:2379/braid/: connect ECONNREFUSED); running on the last known 41 sites, 40 peers from it, 2 invalid values ignored',
    );
    expect(registryText({ ...base, state: 'connecting', published: false })).toMatch(/^connecting .*this site not published$/);
  });
});
