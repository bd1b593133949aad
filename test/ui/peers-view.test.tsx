/**
 * The dashboard on a hub: the peers view pages (PgUp/PgDn) and filters (/ then the name), the
 * selected peer's paths show as a links table where d drains that path (peer, link); the other
 * views name paths "peer/link". A single-peer edge's peers view shows its one peer.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { Dashboard, type DashboardProps } from '../../src/ui/dashboard.tsx';
import { HistoryStore } from '../../src/ui/hooks/use-history.ts';
import { filterPeers, pageStart, peerListRows, peerPaths } from '../../src/ui/peers.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';
import { failoverSnapshot } from './fixtures.ts';
import { hubSnapshot, peer } from './peer-fixtures.ts';

const tick = (ms = 60): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ESC = '\u001B';
const KEY = { down: `${ESC}[B`, up: `${ESC}[A`, pgDn: `${ESC}[6~`, pgUp: `${ESC}[5~`, enter: '\r', esc: ESC, backspace: '\u007F' };

const lines = (f: string | undefined): string[] => (f ?? '').split('\n');
const peerRows = (f: string | undefined): string[] => lines(f).filter((l) => /^[ >*] b\d{3} /.test(l)).map((l) => l.slice(2, 6));

function expectFits(frame: string | undefined, columns: number, rows: number): void {
  const ls = lines(frame);
  expect(ls.length).toBeLessThanOrEqual(rows - 1);
  for (const l of ls) expect(l.length, `line wider than ${columns}: "${l}"`).toBeLessThanOrEqual(columns);
}

function mount(props: Partial<DashboardProps> & { snapshot: EdgeSnapshot | undefined }) {
  const all: DashboardProps = { columns: 80, rows: 24, ...props };
  const r = render(<Dashboard {...all} />);
  return { ...r, update: (p: Partial<DashboardProps>) => r.rerender(<Dashboard {...all} {...p} />) };
}

async function keys(stdin: { write(s: string): void }, ...ks: string[]): Promise<void> {
  for (const k of ks) {
    stdin.write(k);
    await tick();
  }
}

afterEach(() => cleanup());

describe('peers view', () => {
  it('lists the peers a page at a time; PgDn and PgUp turn pages; the selected peer shows its paths', async () => {
    const { lastFrame, stdin } = mount({ snapshot: hubSnapshot(100) });
    await tick();
    await keys(stdin, '5');
    const f = lastFrame();
    expectFits(f, 80, 24);
    expect(lines(f)[0]).toContain('[peers]');
    expect(f).toMatch(/^peers {2}100 of 100, page 1\/\d+ {3}\/ filters/m);
    expect(f).toMatch(/^ {2}peer +state +paths +loss +rtt +received +sent +handshk/m);
    const page1 = peerRows(f);
    expect(page1[0]).toBe('b001');
    expect(page1.length).toBeGreaterThanOrEqual(10);
    expect(lines(f).find((l) => l.startsWith('> b001'))).toMatch(/UP +2\/2 +0\.0% +20\.0ms +781\.25 KiB +1\.14 MiB +42\.0s/);
    expect(lines(f).find((l) => l.startsWith('  b002'))).toMatch(/IDLE +0\/0 +- +- .* none/);
    expect(f).toContain('paths of b001');
    expect(f).toMatch(/^ {2}mpls +UP +20\.0ms/m);
    expect(f).toMatch(/^ {2}inet +UP +40\.0ms/m);

    await keys(stdin, KEY.pgDn);
    const page2 = peerRows(lastFrame());
    expect(page2[0]).toBe(`b${String(page1.length + 1).padStart(3, '0')}`);
    expect(page2).not.toContain('b001');
    expect(lastFrame()).toMatch(/page 2\//);
    expect(lastFrame()).toContain(`paths of ${page2[0]}`);
    await keys(stdin, KEY.pgUp);
    expect(peerRows(lastFrame())[0]).toBe('b001');
    expectFits(lastFrame(), 80, 24);
  });

  it('/ filters by name as you type (q and d are text there); esc clears; enter keeps it', async () => {
    const onQuit = vi.fn();
    const { lastFrame, stdin } = mount({ snapshot: hubSnapshot(30), onQuit });
    await tick();
    await keys(stdin, '5', '/', 'b', '0', '2');
    expect(peerRows(lastFrame())).toEqual(['b020', 'b021', 'b022', 'b023', 'b024', 'b025', 'b026', 'b027', 'b028', 'b029']);
    expect(lastFrame()).toMatch(/10 of 30, page 1\/1 {3}filter: b02_/);
    await keys(stdin, KEY.backspace, KEY.backspace, '0', '0', '7');
    expect(peerRows(lastFrame())).toEqual(['b007']);
    await keys(stdin, 'q', 'd');
    expect(onQuit).not.toHaveBeenCalled();
    expect(lastFrame()).toContain('no peer matches "b007qd"');
    await keys(stdin, KEY.esc);
    expect(peerRows(lastFrame()).length).toBeGreaterThan(5);
    expect(lastFrame()).toContain('/ filters');
    await keys(stdin, '/', '1', '3', KEY.enter);
    expect(peerRows(lastFrame())).toEqual(['b013']);
    expect(lastFrame()).toMatch(/filter: 13 /);
    await keys(stdin, KEY.esc);
    expect(lastFrame()).toContain('30 of 30');
  });

  it('enter selects a path of the peer; d asks and y drains that path only (peer, link); esc goes back', async () => {
    const onDrain = vi.fn((_link: string, _drained: boolean, _peer?: string) => undefined);
    const { lastFrame, stdin } = mount({ snapshot: hubSnapshot(30), onDrain });
    await tick();
    await keys(stdin, '5', '/', 'b013', KEY.enter);
    await keys(stdin, 'd');
    expect(onDrain).not.toHaveBeenCalled();
    expect(lastFrame()).toContain('enter selects a path of this peer');
    await keys(stdin, KEY.enter);
    expect(lastFrame()).toMatch(/^> mpls +UP/m);
    expect(lastFrame()).toMatch(/^\* b013 /m);
    await keys(stdin, KEY.down);
    expect(lastFrame()).toMatch(/^> inet +UP +40\.0ms +\S+ +5\.0%\/0\.0%/m);
    await keys(stdin, 'd');
    expect(lines(lastFrame()).at(-1)).toMatch(/^drain inet to b013\? .*y to confirm/);
    await keys(stdin, 'y');
    expect(onDrain).toHaveBeenCalledWith('inet', true, 'b013');
    expect(lastFrame()).toContain('inet to b013 drained');
    await keys(stdin, KEY.esc);
    expect(lastFrame()).toMatch(/^> b013 /m);
  });

  it('a drained path undrains at once with d', async () => {
    const onDrain = vi.fn(() => undefined);
    const snap = hubSnapshot(3);
    snap.links.find((l) => l.peer === 'b003' && l.name === 'mpls')!.state = 'drained';
    const { stdin } = mount({ snapshot: snap, onDrain });
    await tick();
    await keys(stdin, '5', KEY.down, KEY.down, KEY.enter, 'd');
    expect(onDrain).toHaveBeenLastCalledWith('mpls', false, 'b003');
  });

  it('a single-peer edge shows its one peer with every link as its paths', async () => {
    const { lastFrame, stdin } = mount({ snapshot: failoverSnapshot({ peers: [peer('hq')] }), columns: 160, rows: 48 });
    await tick();
    await keys(stdin, '5');
    const f = lastFrame();
    expect(lines(f)[0]).toMatch(/\[5 peers\]/);
    expect(f).toMatch(/^> hq +UP/m);
    expect(f).toContain('paths of hq');
    for (const l of ['mpls', 'inet', 'lte']) expect(f).toMatch(new RegExp(`^ {2}${l} `, 'm'));
    expectFits(f, 160, 48);
  });
});

describe('other views on a hub', () => {
  it('the overview names paths peer/link, scrolls to the selection, and d drains that path', async () => {
    const onDrain = vi.fn((_link: string, _drained: boolean, _peer?: string) => undefined);
    const { lastFrame, stdin } = mount({ snapshot: hubSnapshot(30), onDrain });
    await tick();
    expect(lastFrame()).toMatch(/^> b001\/mpls +UP/m);
    expectFits(lastFrame(), 80, 24);
    await keys(stdin, ...Array.from({ length: 15 }, () => KEY.down));
    expect(lastFrame()).not.toMatch(/b001\/mpls/);
    expect(lastFrame()).toMatch(/^> b009\/inet +UP/m);
    await keys(stdin, 'd', 'y');
    expect(onDrain).toHaveBeenCalledWith('inet', true, 'b009');
    for (const v of ['2', '3', '4']) {
      await keys(stdin, v);
      expectFits(lastFrame(), 80, 24);
      // Classes view: flows per local link over all peers (29 spokes with paths, 4 flows each), then the top flows.
      if (v === '3') {
        expect(lastFrame()).toMatch(/^ {2}mpls \(all peers\) +█+ +116 flows$/m);
        expect(lastFrame()).toMatch(/^ {2}inet \(all peers\) +█+ +116 flows$/m);
        expect(lastFrame()).toContain('10.0.13.5:5060 > 10.1.0.9:5060 udp');
      }
    }
  });
});

describe('peers view arithmetic', () => {
  it('filters by name or site, case-insensitive; pages hold the selection; the list leaves room for the paths', () => {
    const ps = [peer('Branch-1'), peer('branch-2', { site: 'Lyon' }), peer('dc')];
    expect(filterPeers(ps, 'BRANCH').map((p) => p.name)).toEqual(['Branch-1', 'branch-2']);
    expect(filterPeers(ps, 'lyon').map((p) => p.name)).toEqual(['branch-2']);
    expect(filterPeers(ps, '  ').length).toBe(3);
    expect(pageStart(0, 100, 10)).toBe(0);
    expect(pageStart(19, 100, 10)).toBe(10);
    expect(pageStart(250, 100, 10)).toBe(90);
    expect(peerListRows(21, 2)).toBe(14);
    expect(peerListRows(5, 3)).toBe(3);
    const hub = hubSnapshot(3);
    expect(peerPaths(hub, 'b003').map((l) => l.name)).toEqual(['mpls', 'inet']);
    expect(peerPaths(hub, 'b002')).toEqual([]);
  });

  it('history keys a hub path by peer/link and records only what `keep` allows', () => {
    const h = new HistoryStore();
    const hub = hubSnapshot(3);
    h.push(hub, (l) => l.peer === 'b003');
    expect(h.samples('b003/inet')).toHaveLength(1);
    expect(h.samples('b001/inet')).toHaveLength(0);
    h.push({ ...hub, nowMs: hub.nowMs + 1000 }, (l) => l.peer === 'b001');
    expect(h.samples('b003/inet')).toHaveLength(0);
    expect(h.samples('b001/inet')).toHaveLength(1);
  });
});
