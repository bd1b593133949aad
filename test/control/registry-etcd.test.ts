/**
 * The registry against a real etcd on 127.0.0.1 (a port the kernel picked, data in a temp dir
 * removed after): two sites publish and see each other; garbage under the prefix is counted and
 * logged with its key, never a crash; etcd killed: the sites keep their last known set and say
 * unreachable; etcd back with the same data: the watch resumes (a site added after the restart
 * is seen, one removed is gone). No root needed; skipped with the reason when `etcd` is missing
 * (.ci/run installs Debian's etcd-server).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEtcd, etcdAvailable, freeLoopbackPort, type TestEtcd } from '../../sim/etcd.ts';
import { registrySchema } from '../../src/control/config-registry.ts';
import { Registry, withEtcd } from '../../src/control/registry.ts';
import { encodeSiteRecord, type SiteRecord } from '../../src/control/registry-record.ts';
import { runFleet } from '../../src/cli/fleet.ts';

const K1 = 'hjV0rQ3Zq9X2bW5tV4Q8n1Jk6Lm7Op8Rs9Tu0Vw1Xy8=';
const K2 = 'AjV0rQ3Zq9X2bW5tV4Q8n1Jk6Lm7Op8Rs9Tu0Vw1Xy8=';
const K3 = 'BjV0rQ3Zq9X2bW5tV4Q8n1Jk6Lm7Op8Rs9Tu0Vw1Xy8=';

const have = etcdAvailable();
if (!have) console.log('registry-etcd: skipped: no `etcd` binary (apt-get install etcd-server; .ci/run does)');

async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!have)('registry on a real etcd (loopback)', () => {
  let etcd: TestEtcd;
  const regs: Registry[] = [];
  const logs: string[] = [];
  const log = { info: (_o: object, m: string) => void logs.push(`I ${m}`), warn: (_o: object, m: string) => void logs.push(`W ${m}`), error: (_o: object, m: string) => void logs.push(`E ${m}`) };
  let config: ReturnType<typeof registrySchema.parse>;
  const seen: Map<string, SiteRecord>[] = [new Map(), new Map()];

  beforeAll(async () => {
    etcd = createTestEtcd({ clientPort: await freeLoopbackPort(), peerPort: await freeLoopbackPort() });
    await etcd.start();
    config = registrySchema.parse({ etcd: { endpoints: [etcd.url], prefix: '/brt/', leaseTtl: 10 } });
  }, 60_000);
  afterAll(async () => {
    for (const r of regs) await r.close();
    await etcd?.remove();
  });

  it('publishes, watches, survives garbage and an etcd outage, resumes the watch', async () => {
    const mk = (i: number, name: string, role: 'hub' | 'spoke', key: string): Registry => {
      const r = new Registry({
        config,
        site: name,
        record: { role, mesh: false, publicKey: key, prefixes: [`10.${i}.0.0/16`], links: { inet: {} } },
        log,
        onSites: (m) => void (seen[i] = new Map(m)),
        healthIntervalMs: 200,
      });
      regs.push(r);
      r.start();
      return r;
    };
    const hub = mk(0, 'hub', 'hub', K1);
    const spoke = mk(1, 'branch-1', 'spoke', K2);
    await waitFor('both sites listed at both', () => seen.every((m) => m.size === 2));
    expect(hub.status()).toMatchObject({ state: 'connected', sites: 2, published: true, invalidValues: 0 });
    expect(seen[0]!.get('branch-1')).toMatchObject({ role: 'spoke', publicKey: K2, prefixes: ['10.1.0.0/16'] });

    // Garbage: counted, one log line naming the key, the good sites stay.
    await withEtcd(config, async (c, prefix) => {
      await c.put(`${prefix}bad`).value('not json at all');
      await c.put(`${prefix}worse`).value(JSON.stringify({ version: 1, role: 'spoke', publicKey: 'short', prefixes: [], links: { inet: {} } }));
    });
    await waitFor('both bad values counted', () => hub.status().invalidValues >= 2 && spoke.status().invalidValues >= 2);
    expect(logs.some((l) => /^W registry: \/brt\/sites\/bad: not JSON/.test(l))).toBe(true);
    expect(logs.some((l) => /^W registry: \/brt\/sites\/worse: publicKey: expected a base64/.test(l))).toBe(true);
    expect(hub.status().sites).toBe(2);

    // etcd killed: unreachable (with how long), the last known sites kept.
    await etcd.stop();
    await waitFor('unreachable at both', () => hub.status().state === 'unreachable' && spoke.status().state === 'unreachable');
    await new Promise((r) => setTimeout(r, 1200));
    const down = hub.status();
    expect(down.unreachableForMs).toBeGreaterThan(0);
    expect(down.sites).toBe(2);
    expect(seen[0]!.size).toBe(2);
    expect(logs.filter((l) => /registry: etcd unreachable/.test(l)).length).toBe(2); // once per site, not per retry

    // etcd back (same data): the watch resumes: a site added now is seen, one deleted is gone.
    await etcd.start();
    await waitFor('connected again', () => hub.status().state === 'connected' && spoke.status().state === 'connected', 60_000);
    await withEtcd(config, async (c, prefix) => {
      await c.put(`${prefix}branch-2`).value(encodeSiteRecord({ role: 'spoke', mesh: false, publicKey: K3, prefixes: ['10.2.0.0/16'], links: { inet: {} } }));
      await c.delete().key(`${prefix}bad`);
    });
    await waitFor('branch-2 seen by both after the restart', () => seen.every((m) => m.has('branch-2')), 60_000);
    await withEtcd(config, async (c, prefix) => void (await c.delete().key(`${prefix}branch-2`)));
    await waitFor('branch-2 gone at both', () => seen.every((m) => !m.has('branch-2')), 30_000);
    expect(logs.some((l) => /registry: etcd reachable again after/.test(l))).toBe(true);
  }, 180_000);

  it('braid fleet: add a static site, list (leased and static), show, remove; garbage listed as invalid', async () => {
    let out = '';
    const o = { write: (t: string) => void (out += t) };
    const v = { etcd: etcd.url, 'key-prefix': '/brt/' };
    await runFleet({ ...v, key: K3, link: 'inet=192.0.2.33:51900,lte', prefix: '10.3.0.0/16' }, ['add', 'branch-3'], o);
    expect(out).toBe('/brt/sites/branch-3: spoke, 10.3.0.0/16, links inet,lte (static: no lease)\n');
    out = '';
    await runFleet(v, ['list'], o);
    expect(out).toMatch(/^NAME +ROLE +KEY +PREFIXES +LINKS +LISTED$/m);
    expect(out).toMatch(/^branch-3 +spoke +BjV0rQ3Z\.\.\. +10\.3\.0\.0\/16 +inet=192\.0\.2\.33:51900 lte\(learned\) +static$/m);
    expect(out).toMatch(/^hub +hub .* lease \d+s$/m);
    expect(out).toMatch(/^worse +INVALID .*publicKey: expected a base64/m);
    out = '';
    await runFleet({ ...v, json: true }, ['show', 'branch-3'], o);
    expect(JSON.parse(out)).toMatchObject({ name: 'branch-3', role: 'spoke', prefixes: ['10.3.0.0/16'], links: { inet: { endpoint: '192.0.2.33:51900' }, lte: {} }, static: true });
    out = '';
    await runFleet(v, ['remove', 'branch-3'], o);
    expect(out).toMatch(/^\/brt\/sites\/branch-3 removed/);
    await expect(runFleet(v, ['remove', 'branch-3'], o)).rejects.toThrow(/no such site in the registry/);
    await expect(runFleet({ ...v, key: 'nope', link: 'inet' }, ['add', 'branch-9'], o)).rejects.toThrow(/--key nope: not an X25519 public key/);
  }, 60_000);
});
