import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { formatStatusText, runStatus } from '../../src/cli/status.ts';
import { DROP_REASONS } from '../../src/core/types.ts';
import { failoverSnapshot } from '../ui/fixtures.ts';
import { startWorldEdge, type WorldEdge } from '../control/world-edge.ts';
import { checkSchema } from './json-schema.ts';

const schema = JSON.parse(readFileSync(new URL('../../docs/status-schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;

function collect(): { out: { write(s: string): boolean; isTTY: boolean }; text: () => string } {
  let buf = '';
  return {
    out: {
      isTTY: false,
      write: (s: string) => {
        buf += s;
        return true;
      },
    },
    text: () => buf,
  };
}

let edge: WorldEdge;
beforeAll(async () => {
  // Mid-failover: MPLS cut at 10 s, flows moved, events with reasons.
  edge = await startWorldEdge(12_000);
});
afterAll(() => edge.close());

describe('braid status --json', () => {
  it('prints output that validates against docs/status-schema.json, with every field documented', async () => {
    const c = collect();
    expect(await runStatus({ json: true, socket: edge.socketPath }, c.out)).toBe(0);
    const doc = JSON.parse(c.text()) as { version: number; status: { links: Array<{ state: string }>; recentEvents: unknown[] } };
    expect(doc.version).toBe(1);
    expect(doc.status.links.map((l) => l.state)).toContain('down');
    expect(doc.status.recentEvents.length).toBeGreaterThan(0);
    const report = checkSchema(schema, doc);
    expect(report.errors).toEqual([]);
    expect(report.undocumented, 'fields in `braid status --json` missing from docs/status-schema.json: document them').toEqual([]);
  });

  it('the schema accepts the optional FEC fields and rejects what is wrong', () => {
    const snap = failoverSnapshot();
    const ok = checkSchema(schema, { version: 1, status: snap });
    expect(ok.errors).toEqual([]);
    expect(ok.undocumented).toEqual([]);
    const bad = JSON.parse(JSON.stringify({ version: 1, status: snap })) as { status: { links: Array<Record<string, unknown>>; drops: Record<string, unknown> } };
    bad.status.links[0]!.state = 'sideways';
    bad.status.links[1]!.txLossRatio = 1.5;
    delete bad.status.drops.malformed;
    const report = checkSchema(schema, bad);
    expect(report.errors).toEqual([
      '$.status.links[0].state: "sideways" not in ["up","degraded","down","drained"]',
      '$.status.links[1].txLossRatio: 1.5 > maximum 1',
      '$.status.drops: missing required "malformed"',
    ]);
  });

  it('documents exactly the drop reasons the core counts', () => {
    const drops = (schema.$defs as Record<string, { required: string[] }>).drops;
    expect(drops.required).toEqual([...DROP_REASONS]);
  });
});

describe('braid status (text)', () => {
  it('reads like wg show: the site, one block per link, busy classes, recent events', async () => {
    const c = collect();
    await runStatus({ socket: edge.socketPath }, c.out);
    const t = c.text();
    expect(t).toMatch(/^site: a\n {2}time: 12\.0s since the edge started\n/);
    expect(t).toMatch(/\n {2}session: (established|plaintext|not established)/);
    expect(t).toMatch(/\nlink: mpls\n {2}state: down, 1 flaps\n {2}tier: primary\n {2}remote: b-mpls:51900 \(peer's mpls\)\n/);
    expect(t).toMatch(/\nlink: inet\n {2}state: (up|degraded)/);
    expect(t).toMatch(/\nlink: lte\n/);
    // Path MTU discovery on the World's 1500-byte paths: confirmed at the link MTU.
    expect(t).toMatch(/\n {2}path mtu: 1500 \(inner 1413; \d+ probes, 0 black holes\)\n/);
    expect(t).toMatch(/\nclass: voice\n {2}strategy: best\n {2}flows: 8 on \w+/);
    expect(t).toMatch(/\nidle classes: control, video, signaling, business, bulk\n/);
    expect(t).toMatch(/\ntop flows sent \(\d+ largest of \d+\):\n +[\d.]+ (B|KiB|MiB) +[\d.]+ (k|M)?bit\/s +(voice|default) +\w+ +10\.1\.0\.2:\d+ > 10\.2\.0\.2:5000 udp\n/);
    expect(t).toMatch(/recent events \(8 of \d+\):\n/);
    expect(t).not.toContain('\x1b[');
  });

  it('shows FEC when the class has it, and colours only when asked', () => {
    const t = formatStatusText(failoverSnapshot(), false);
    expect(t).toContain('  fec: 8+2, recovered 1,234, unrecoverable 3, residual loss 0.04%');
    expect(t).toContain('  drops: malformed 2');
    expect(t).toContain('  session: established, chacha20-poly1305, 1:23.0 old');
    expect(t).toContain('  handshake drops: badMac1 3');
    const down = failoverSnapshot();
    down.session = { encrypted: true, established: false, ageMs: undefined, cipher: undefined, handshakeAttempts: 4, handshakeDrops: {}, underLoad: true };
    expect(formatStatusText(down)).toContain('  session: not established (4 handshake attempts), under load (cookies required)');
    const coloured = formatStatusText(failoverSnapshot(), true);
    expect(coloured).toContain('\x1b[31mdown\x1b[0m');
  });

  it('shows per-rule counters and each top flow\'s rule; the JSON with them validates against the schema', () => {
    const base = failoverSnapshot();
    const snap = failoverSnapshot({
      topFlows: base.topFlows.map((f) => (f.class === 'voice' ? { ...f, rule: 'teams-audio' } : f)),
      rules: [
        { name: 'teams-audio', class: 'voice', packets: 2_764, bytes: 552_800, flows: 1 },
        { name: 'teams-video', class: 'video', packets: 0, bytes: 0, flows: 0 },
        { name: 'backup-remark', packets: 12, bytes: 1_008, flows: 1 },
      ],
    });
    const t = formatStatusText(snap, false);
    expect(t).toContain('10.1.0.31:16384 > 10.2.0.44:16384 udp  (rule teams-audio)');
    expect(t).toContain('application rules (3, first match wins; 1 matched nothing yet):');
    expect(t).toMatch(/ {2}teams-audio {4}voice {5}2,764 packets, [^,]+, 1 flow\n/);
    expect(t).toMatch(/ {2}backup-remark {2}by dscp {3}12 packets, [^,]+, 1 flow\n/);
    expect(t).not.toContain('teams-video');
    expect(formatStatusText(base, false)).not.toContain('application rules');
    const report = checkSchema(schema, { version: 1, status: snap });
    expect(report.errors).toEqual([]);
    expect(report.undocumented).toEqual([]);
    const bad = checkSchema(schema, { version: 1, status: { ...snap, rules: [{ name: 'x', packets: -1, bytes: 0 }] } });
    expect(bad.errors.length).toBeGreaterThan(0);
  });

  it('without braid up: one line, exit 1', async () => {
    const errs: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => {
      errs.push(s);
      return true;
    }) as typeof process.stderr.write;
    try {
      expect(await main(['status', '--socket', '/nonexistent/braid.sock'])).toBe(1);
    } finally {
      process.stderr.write = orig;
    }
    expect(errs).toEqual(['braid: control socket /nonexistent/braid.sock: not found (is braid up running?); fix: start the edge with `braid up -c FILE`, or point at its socket with --socket PATH or -c FILE\n']);
  });
});
