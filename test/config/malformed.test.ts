/**
 * 20 malformed configurations: each gives one line naming the field and the fix (and `braid check`
 * exits 2). The base config is valid; each case breaks one thing.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { checkInterfaces, parseConfigText } from '../../src/control/config.ts';
import { BraidError } from '../../src/core/errors.ts';

const BASE = `
site: branch-1
privateKeyFile: /etc/braid/private.key
tun:
  name: braid0
  address: 10.99.0.1/24
links:
  - name: mpls
    interface: eth1
    port: 51900
  - name: inet
    interface: eth2
    port: 51901
peers:
  - name: hub
    publicKey: nWHbP7EvwEY9ni0OdZ11prXcrYKBoMLgjn6s9KzOB1w=
    endpoints:
      mpls: 192.0.2.20:51900
      inet: 198.51.100.7:51901
`;

type Doc = Record<string, unknown> & { links: Record<string, unknown>[]; peers: Record<string, unknown>[]; tun: Record<string, unknown> };
const mutate = (f: (d: Doc) => void): string => {
  const d = parse(BASE) as Doc;
  f(d);
  return stringify(d);
};

const CASES: Array<{ name: string; text: string; field: RegExp }> = [
  { name: 'site is a number', text: mutate((d) => (d.site = 42)), field: /site/ },
  { name: 'site missing', text: mutate((d) => delete d.site), field: /site/ },
  { name: 'unknown top-level key', text: mutate((d) => (d.sitte = 'x')), field: /sitte/ },
  { name: 'unknown link key', text: mutate((d) => (d.links[0]!.bandwith = '10mbit')), field: /links\[0\].*bandwith|bandwith/ },
  { name: 'link port out of range', text: mutate((d) => (d.links[1]!.port = 70000)), field: /links\[1\]\.port/ },
  { name: 'link port is a string', text: mutate((d) => (d.links[1]!.port = 'fifty')), field: /links\[1\]\.port/ },
  { name: 'duplicate link names', text: mutate((d) => (d.links[1]!.name = 'mpls')), field: /links\[1\]\.name/ },
  { name: 'bad link name', text: mutate((d) => (d.links[0]!.name = 'MPLS Link!')), field: /links\[0\]\.name/ },
  { name: 'bad bandwidth', text: mutate((d) => (d.links[0]!.bandwidthUp = 'fast')), field: /links\[0\]\.bandwidthUp/ },
  { name: 'bad cost tier', text: mutate((d) => (d.links[0]!.costTier = 'cheap')), field: /links\[0\]\.costTier/ },
  { name: 'no links', text: mutate((d) => (d.links = [])), field: /links/ },
  { name: 'tun address without prefix', text: mutate((d) => (d.tun.address = '10.99.0.1')), field: /tun\.address/ },
  { name: 'tun mtu too small', text: mutate((d) => (d.tun.mtu = 100)), field: /tun\.mtu/ },
  { name: 'bad peer key', text: mutate((d) => (d.peers[0]!.publicKey = 'not-a-key')), field: /peers\[0\]\.publicKey/ },
  { name: 'missing peer key', text: mutate((d) => delete d.peers[0]!.publicKey), field: /peers\[0\]\.publicKey/ },
  { name: 'missing private key file', text: mutate((d) => delete d.privateKeyFile), field: /privateKeyFile/ },
  { name: 'endpoint without port', text: mutate((d) => ((d.peers[0]!.endpoints as Record<string, string>).mpls = '192.0.2.20')), field: /peers\[0\]\.endpoints\.mpls/ },
  { name: 'endpoint for an unknown link', text: mutate((d) => ((d.peers[0]!.endpoints as Record<string, string>).lte = '192.0.2.20:1')), field: /peers\[0\]\.endpoints\.lte/ },
  { name: 'two peers with the same prefix', text: mutate((d) => { d.peers[0]!.prefixes = ['10.2.0.0/16']; d.peers.push({ ...d.peers[0]!, name: 'hub2', publicKey: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' }); }), field: /peers\[1\]\.prefixes/ },
  { name: 'not YAML at all', text: 'site: [unclosed\n  links: {', field: /YAML/ },
];

describe('malformed configurations: one line naming the field and the fix', () => {
  it('has 20 cases', () => expect(CASES.length).toBe(20));
  for (const c of CASES) {
    it(c.name, () => {
      let err: unknown;
      try {
        parseConfigText(c.text, 'branch.yaml');
      } catch (e) {
        err = e;
      }
      expect(err, `${c.name}: accepted`).toBeInstanceOf(BraidError);
      const line = (err as BraidError).oneLine();
      expect(line.includes('\n'), line).toBe(false);
      expect(line).toMatch(c.field);
      expect(line).toMatch(/^branch\.yaml:\d+:\d+: /); // FILE:LINE:COLUMN (DESIGN.md section 6)
      expect(line).toMatch(/; fix: \S/);
      expect((err as BraidError).exitCode).toBe(2);
    });
  }

  it('a missing interface names links[i].interface', () => {
    const cfg = parseConfigText(BASE, 'branch.yaml');
    let err: unknown;
    try {
      checkInterfaces(cfg, 'branch.yaml', (n) => n === 'eth1');
    } catch (e) {
      err = e;
    }
    expect((err as BraidError).oneLine()).toMatch(/^branch\.yaml:12:16: links\[1\]\.interface: interface "eth2" does not exist.*; fix: /);
  });

  it('braid check prints exactly one line on stderr and exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'braid-cfg-'));
    try {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, CASES[4]!.text);
      const bin = fileURLToPath(new URL('../../bin/braid.js', import.meta.url));
      const r = spawnSync(process.execPath, [bin, 'check', '-c', file], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^braid: .*bad\.yaml:\d+:\d+: links\[1\]\.port: .*; fix: /);
      const missing = spawnSync(process.execPath, [bin, 'check', '-c', join(dir, 'nope.yaml')], { encoding: 'utf8', timeout: 30_000 });
      expect(missing.status).toBe(2);
      expect(missing.stderr).toMatch(/cannot read \(ENOENT\); fix: pass the right path/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
