/**
 * `braid status` on a hub: peers `wg show` style, a summary past 20 peers, `--all`, `--peer NAME`
 * (text and JSON), against fixtures and against a real hub-and-spokes World behind a control socket.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatStatusText, runStatus, snapshotForPeer } from '../../src/cli/status.ts';
import { comparePeersWorstFirst, selectPeer } from '../../src/cli/status-peers.ts';
import { ControlServer } from '../../src/control/control-socket.ts';
import { BraidError } from '../../src/core/errors.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';
import { World } from '../../sim/world.ts';
import { failoverSnapshot } from '../ui/fixtures.ts';
import { hubSnapshot, peer } from '../ui/peer-fixtures.ts';
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

const blocks = (t: string): string[] => [...t.matchAll(/^peer: (\S+)/gm)].map((m) => m[1]!);

describe('braid status with a few peers', () => {
  it('prints one block per peer: state, endpoint per path, latest handshake, transfer, prefixes, forwarded', () => {
    const t = formatStatusText(hubSnapshot(5));
    expect(blocks(t)).toEqual(['b001', 'b002', 'b003', 'b004', 'b005']);
    expect(t).toContain('  peers: 5 peers: 4 up, 0 down, 1 idle; 1 without a session\n');
    expect(t).toContain('  sessions: 4 of 5 peers established\n');
    expect(t).not.toContain('  session: ');
    expect(t).toMatch(
      /\npeer: b003\n {2}state: up, 2\/2 paths up\n {2}endpoints:\n {4}mpls > mpls: 192\.0\.2\.3:51900, up, rtt 20\.0ms, loss 0\.0%\/0\.0%\n {4}inet > inet: 198\.51\.100\.3:51901, up, rtt 40\.0ms, loss 0\.0%\/0\.0%\n {2}latest handshake: 42\.0s ago\n {2}transfer: 781\.25 KiB received, 1\.14 MiB sent \(900 \/ 1,000 packets\)\n {2}prefixes: 10\.0\.3\.0\/24\n {2}forwarded: 0 packets to other peers\n/,
    );
    expect(t).toMatch(/\npeer: b002\n {2}state: idle, 0\/0 paths up\n {2}endpoints: none known yet/);
    // Totals per local link instead of one block per path; no summary below the threshold.
    expect(t).toMatch(/\nlinks \(paths to all peers\):\n {2}mpls: 4 paths \(4 up\)\n {2}inet: 4 paths \(4 up\)\n/);
    expect(t).not.toMatch(/^link: /m);
    expect(t).not.toContain('worst');
  });

  it('says when a peer is probed at the idle pace (no data lately) and not when it is probed every 100 ms', () => {
    const snap = hubSnapshot(3);
    snap.peers![0] = { ...snap.peers![0]!, probeIntervalMs: 2000 };
    snap.peers![2] = { ...snap.peers![2]!, probeIntervalMs: 100 };
    const t = formatStatusText(snap);
    expect(t).toMatch(new RegExp(`\\npeer: ${snap.peers![0]!.name}\\n {2}state: \\w+, \\d/\\d paths up, no data lately: probed every 2 s, one side per path\\n`));
    expect(t).toMatch(new RegExp(`\\npeer: ${snap.peers![2]!.name}\\n {2}state: \\w+, \\d/\\d paths up\\n`));
  });

  it('a single-peer edge keeps its link blocks and gains the peer block', () => {
    const t = formatStatusText(failoverSnapshot({ peers: [peer('hq', { site: 'hq-site' })] }));
    expect(t).toMatch(/\npeer: hq \(site hq-site\)\n {2}state: up, 2\/2 paths up\n {2}endpoints:\n {4}mpls > mpls: 198\.51\.100\.7:51900, down, rtt 20\.0ms, loss 100%\/100%\n/);
    expect(t).toMatch(/\nlink: mpls\n {2}state: down, 1 flaps\n/);
    expect(t).toMatch(/\nlink: lte\n/);
  });
});

describe('braid status with many peers', () => {
  it('past 20 peers: counts by state, the 10 worst (down, then loss, then rtt, idle last), their blocks only', () => {
    const t = formatStatusText(hubSnapshot(30));
    expect(t).toContain('  peers: 30 peers: 28 up, 1 down, 1 idle; 1 with a path out, 2 without a session\n');
    expect(t).toMatch(/\npeers: 30 peers: 28 up, 1 down, 1 idle.*\n {2}worst 10 \(down first, then by loss sent, then rtt\):\n {4}peer +state +paths +loss +rtt +received +sent\n {4}b007 +down +0\/2 +- +- /);
    expect(t).toMatch(/\n {4}b013 +up +2\/2 +5\.0% +20\.0ms +781\.25 KiB +1\.14 MiB\n {4}b021 +up +2\/2 +0\.0% +300ms/);
    expect(blocks(t)).toEqual(['b007', 'b013', 'b021', 'b001', 'b003', 'b004', 'b005', 'b006', 'b008', 'b009']);
    expect(t).toContain('(10 of 30 peers shown: --all for every peer, --peer NAME for one in full)');
    expect(t).toMatch(/\npeer: b013\n[^]*?forwarded: 77 packets to other peers\n/);
    const all = formatStatusText(hubSnapshot(30), false, { all: true });
    expect(blocks(all)).toHaveLength(30);
    expect(all).not.toContain('worst 10');
  });

  it('orders worst first with a stable tie-break by name', () => {
    const ps = [peer('z'), peer('a'), peer('m', { state: 'idle' }), peer('d', { state: 'down' }), peer('l', { worstTxLossRatio: 0.01 }), peer('r', { worstRttMs: 99 })];
    expect(ps.sort(comparePeersWorstFirst).map((p) => p.name)).toEqual(['d', 'l', 'r', 'a', 'z', 'm']);
  });

  it('--peer narrows to that peer: its paths in full, its flows and events; unknown peer is a usage error', () => {
    const one = selectPeer(hubSnapshot(30), 'b013')!;
    expect(one.peers!.map((p) => p.name)).toEqual(['b013']);
    expect(one.links.map((l) => `${l.peer}/${l.name}`)).toEqual(['b013/mpls', 'b013/inet']);
    expect(one.topFlows.map((f) => f.peer)).toEqual(['b013']);
    expect(one.recentEvents.map((e) => e.peer)).toEqual(['b013']);
    const t = formatStatusText(one);
    expect(blocks(t)).toEqual(['b013']);
    expect(t).toMatch(/\nlink: inet\n {2}state: up, 0 flaps\n {2}tier: primary\n {2}remote: 198\.51\.100\.13:51901 \(peer's inet\)\n[^]*?loss sent: 5\.0%/);
    expect(t).not.toContain('b007');
    let err: unknown;
    try {
      snapshotForPeer(hubSnapshot(30), 'nosuch');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BraidError);
    expect((err as BraidError).exitCode).toBe(2);
    expect((err as BraidError).message).toMatch(/^--peer nosuch: no such peer \(have: b001, b002, .*, \.\.\. \(30\)\)$/);
  });
});

describe('braid status against a running hub (World, control socket)', () => {
  let dir: string;
  let server: ControlServer;
  let world: World;
  beforeAll(async () => {
    world = new World({
      seed: 11,
      sites: [
        { name: 'hub', role: 'hub', links: ['mpls', 'inet'], prefixes: ['10.1.0.0/16'] },
        { name: 's1', links: ['mpls', 'inet'], prefixes: ['10.2.0.0/16'] },
        { name: 's2', links: ['inet'], prefixes: ['10.3.0.0/16'] },
      ],
      connections: [
        { a: 's1.mpls', b: 'hub.mpls', delayMs: 15 },
        { a: 's1.inet', b: 'hub.inet', delayMs: 10 },
        { a: 's2.inet', b: 'hub.inet', delayMs: 12 },
      ],
    });
    world.run(3000);
    dir = mkdtempSync(join(tmpdir(), 'braid-status-peers-'));
    server = await ControlServer.listen(join(dir, 'braid.sock'), { status: (): EdgeSnapshot => world.site('hub').edge.snapshot(world.nowMs), drain: () => undefined });
  });
  afterAll(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('text lists both spokes with their learned endpoints and handshakes', async () => {
    const c = collect();
    expect(await runStatus({ socket: join(dir, 'braid.sock') }, c.out)).toBe(0);
    const t = c.text();
    expect(blocks(t)).toEqual(['s1', 's2']);
    expect(t).toMatch(/\npeer: s1\n {2}state: up, 2\/2 paths up\n {2}endpoints:\n {4}inet > inet: s1-inet:51901, up, rtt [\d.]+ms, loss [\d.]+%\/[\d.]+%\n {4}mpls > mpls: s1-mpls:51900, up, rtt [\d.]+ms, loss/);
    expect(t).toMatch(/\npeer: s2\n[^]*?latest handshake: [\d.:]+s? ago\n[^]*?prefixes: 10\.3\.0\.0\/16\n/);
  });

  it('--peer with --json keeps the documented format, narrowed to the peer', async () => {
    const c = collect();
    expect(await runStatus({ socket: join(dir, 'braid.sock'), json: true, peer: 's2' }, c.out)).toBe(0);
    const doc = JSON.parse(c.text()) as { version: number; status: EdgeSnapshot };
    expect(doc.status.peers!.map((p) => p.name)).toEqual(['s2']);
    expect(doc.status.links.map((l) => [l.peer, l.name])).toEqual([['s2', 'inet']]);
    const report = checkSchema(schema, doc);
    expect(report.errors).toEqual([]);
    expect(report.undocumented).toEqual([]);
  });
});
