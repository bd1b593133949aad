/**
 * End-to-end (root): the operator surface of two real `braid up` processes in network namespaces:
 * `braid status --json` validates against docs/status-schema.json, `braid status` reads well,
 * `/metrics` serves the series, drain over the socket shows up in status. Skipped with a printed
 * reason when not root; CI runs it as root.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTwoSites, type TwoSites } from '../../sim/e2e.ts';
import { isRoot } from '../../sim/netns.ts';
import { parseExposition } from '../control/prom-text.ts';
import { checkSchema } from './json-schema.ts';

const ROOT = isRoot();
if (!ROOT) console.warn('SKIP test/cli/operator.e2e.test.ts: needs root (network namespaces, TUN); CI runs it as root');
const execFileP = promisify(execFile);
const BRAID = fileURLToPath(new URL('../../bin/braid.js', import.meta.url));
const schema = JSON.parse(readFileSync(new URL('../../docs/status-schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;

describe.skipIf(!ROOT)('operator surface of a real braid up', () => {
  let h: TwoSites;
  beforeAll(async () => {
    // Metrics on each namespace's own loopback: both sites can use the default port.
    h = await startTwoSites({ tag: 'ops', extraConfig: { metrics: { listen: '127.0.0.1:9731' } } });
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
  });

  it('braid status --json -c FILE validates against the schema, every field documented', async () => {
    const { stdout } = await execFileP(process.execPath, [BRAID, 'status', '--json', '-c', h.a.configPath]);
    const doc = JSON.parse(stdout) as { status: { site: string; session: { established: boolean } } };
    expect(doc.status.site).toBe('site-a');
    expect(doc.status.session.established).toBe(true);
    const report = checkSchema(schema, doc);
    expect(report.errors).toEqual([]);
    expect(report.undocumented).toEqual([]);
  });

  it('braid status prints the wg-show-like text; drain shows up', async () => {
    expect(await h.control('a', { cmd: 'drain', link: h.topo.a.links[0]!.name })).toEqual({ ok: true });
    const { stdout } = await execFileP(process.execPath, [BRAID, 'status', '--socket', h.a.controlSocket]);
    expect(stdout).toMatch(/^site: site-a\n/);
    expect(stdout).toMatch(/\n {2}session: established, /);
    expect(stdout).toMatch(new RegExp(`\\nlink: ${h.topo.a.links[0]!.name}\\n {2}state: drained`));
    await h.control('a', { cmd: 'undrain', link: h.topo.a.links[0]!.name });
  });

  it('/metrics inside the namespace parses and has the per-path, per-link and drop series', async () => {
    // node's fetch rather than curl: one less tool for CI to have.
    const get = "fetch('http://127.0.0.1:9731/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))";
    const { stdout } = await h.topo.execIn('a', [process.execPath, '-e', get]);
    const m = parseExposition(stdout);
    for (const l of h.topo.a.links) {
      expect(m.find('braid_path_srtt_seconds', { link: l.name, site: 'site-a' })).toHaveLength(1);
      expect(m.value('braid_link_bytes_total', { link: l.name, direction: 'tx' })).toBeGreaterThan(0);
    }
    expect(m.find('braid_drops_total').length).toBeGreaterThan(5);
    expect(m.value('braid_session_established')).toBe(1);
  });
});
