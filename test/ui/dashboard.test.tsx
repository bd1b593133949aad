import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { Dashboard, type DashboardProps } from '../../src/ui/dashboard.tsx';
import { FAILOVER_EVENT, failoverSnapshot, link } from './fixtures.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';

const tick = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ESC = '\u001B';
const KEY = { down: `${ESC}[B`, up: `${ESC}[A`, tab: '\t' };

function lines(frame: string | undefined): string[] {
  return (frame ?? '').split('\n');
}

/** Every frame must fit the terminal: rows-1 lines (ink redraws the whole screen otherwise), no line wider. */
function expectFits(frame: string | undefined, columns: number, rows: number): void {
  const ls = lines(frame);
  expect(ls.length).toBeLessThanOrEqual(rows - 1);
  for (const l of ls) expect(l.length, `line wider than ${columns}: "${l}"`).toBeLessThanOrEqual(columns);
}

function row(frame: string | undefined, startsWith: RegExp): string {
  const r = lines(frame).find((l) => startsWith.test(l));
  expect(r, `no row matching ${startsWith}`).toBeDefined();
  return r!;
}

function mount(props: Partial<DashboardProps> & { snapshot: EdgeSnapshot | undefined }) {
  const all: DashboardProps = { columns: 80, rows: 24, ...props };
  const r = render(<Dashboard {...all} />);
  return { ...r, update: (p: Partial<DashboardProps>) => r.rerender(<Dashboard {...all} {...p} />) };
}

afterEach(() => cleanup());

describe('dashboard at 80x24', () => {
  it('shows every link with its state, rtt, loss and flows, the classes with FEC, and the failover event', () => {
    const { lastFrame } = mount({ snapshot: failoverSnapshot() });
    const f = lastFrame();
    expectFits(f, 80, 24);
    expect(row(f, /^> mpls /)).toMatch(/DOWN\s+20\.0ms\s+1\.0ms\s+100%\/100%/);
    expect(row(f, /^ {2}inet /)).toMatch(/UP\s+40\.0ms\s+4\.0ms\s+0\.36%\/0\.0%\s+14\.3M\/\S+\s+10/);
    expect(row(f, /^ {2}lte /)).toMatch(/DEGRADED\s+60\.0ms/);
    expect(row(f, /^ {2}voice /)).toMatch(/best\s+8\s+inet\s+8\s+5,528\s+8\+2\s+1,234\s+0\.04%/);
    expect(row(f, /^ {2}default /)).toMatch(/balance\s+6\s+inet,lte/);
    expect(f).toContain(FAILOVER_EVENT);
    expect(f).toContain('mpls: up -> down (nothing heard for 300 ms)');
    // Newest first: the DOWN event (10.3 s) above the move (10.0 s).
    expect(f!.indexOf('up -> down')).toBeLessThan(f!.indexOf(FAILOVER_EVENT));
    expect(lines(f)[0]).toMatch(/^braid\s+site branch-1\s+t 12\.0s\s+flows 14\s+moves 9\s+drops 2/);
    expect(lines(f).at(-1)).toMatch(/q quit/);
  });

  it('says it is waiting before the first snapshot, and shows the feed status', () => {
    const { lastFrame } = mount({ snapshot: undefined, status: { text: 'connecting to /run/braid/braid.sock', level: 'info' } });
    expect(lastFrame()).toContain('waiting for the first snapshot');
    expect(lastFrame()).toContain('connecting to /run/braid/braid.sock');
    expectFits(lastFrame(), 80, 24);
  });

  it('shouts NO SESSION in the header when an encrypted edge has no session (nothing passes)', () => {
    const snap = failoverSnapshot();
    snap.session = { ...snap.session, established: false };
    const { lastFrame } = mount({ snapshot: snap });
    expect(lines(lastFrame())[0]).toMatch(/site branch-1\s+NO SESSION/);
  });

  it('renders classes without FEC fields as "-" (the core adds them later)', () => {
    const snap = failoverSnapshot();
    snap.classes = snap.classes.map((c) => ({ name: c.name, strategy: c.strategy, flows: c.flows, activeLinks: c.activeLinks, txPackets: c.txPackets, txBytes: c.txBytes, moves: c.moves }));
    const { lastFrame } = mount({ snapshot: snap });
    expect(row(lastFrame(), /^ {2}voice /)).toMatch(/5,528\s+-\s+-\s+-$/);
  });

  it('keeps fitting with many links and a short terminal: idle classes go first, then all classes', () => {
    const snap = failoverSnapshot({ links: Array.from({ length: 8 }, (_, i) => link(i, `wan${i}`)) });
    for (const rows of [24, 18, 12]) {
      const { lastFrame, unmount } = mount({ snapshot: snap, rows });
      expectFits(lastFrame(), 80, rows);
      expect(lastFrame()).toContain('wan7');
      unmount();
    }
  });
});

describe('dashboard at 160x48', () => {
  it('adds tier, p99, 30 s loss, DSCP and bytes, and shows more events', () => {
    const small = mount({ snapshot: failoverSnapshot() });
    const smallEvents = lines(small.lastFrame()).filter((l) => /lte: filler event/.test(l)).length;
    small.unmount();
    const { lastFrame } = mount({ snapshot: failoverSnapshot(), columns: 160, rows: 48 });
    const f = lastFrame();
    expectFits(f, 160, 48);
    expect(row(f, /^ {2}link /)).toMatch(/tier\s+rtt\s+p99\s+jitter\s+loss tx\/rx\s+30s tx\/rx\s+rate tx\/rx\s+flows\s+rtt 1m\s+loss 1m/);
    expect(row(f, /^ {2}lte /)).toMatch(/DEGRADED\s+backup\s+60\.0ms\s+80\.0ms/);
    expect(row(f, /^ {2}voice /)).toMatch(/EF CS5\s+best/);
    expect(row(f, /^ {2}voice /)).toMatch(/1\.05 MiB/);
    expect(lines(f)[0]).toMatch(/\[1 overview\] 2 links\s+3 classes\s+4 events/);
    const bigEvents = lines(f).filter((l) => /lte: filler event/.test(l)).length;
    expect(bigEvents).toBeGreaterThan(smallEvents + 15);
  });
});

describe('sparklines', () => {
  it('draw the last 60 s of RTT and loss from the snapshots seen, with a gap while a link is down', () => {
    const { lastFrame, update } = mount({ snapshot: undefined, columns: 160, rows: 48 });
    for (let t = 1000; t <= 60_000; t += 1000) {
      const down = t >= 20_000 && t < 30_000;
      const snap = failoverSnapshot({
        nowMs: t,
        links: [
          link(0, 'mpls', { state: down ? 'down' : 'up', rttMs: 20 + (t % 7000 === 0 ? 30 : 0), txLossRatio: down ? 1 : 0 }),
          link(1, 'inet'),
          link(2, 'lte'),
        ],
      });
      update({ snapshot: snap });
    }
    const mpls = row(lastFrame(), /^> mpls /);
    const spark = mpls.slice(mpls.indexOf('    ', 100)).trim();
    expect(spark).toMatch(/[▁▂▃▄▅▆▇█]/);
    // The rtt line has a hole (down), the loss line a full bar (100% loss) for the same stretch.
    expect(mpls).toMatch(/[▁▂▃▄▅▆▇█] +[▁▂▃▄▅▆▇█]/);
    expect(mpls).toContain('█');
  });
});

describe('keys', () => {
  it('arrows select a link; d asks, y drains through the callback; d on a drained link undrains at once', async () => {
    const onDrain = vi.fn((_link: string, _drained: boolean) => undefined);
    const { lastFrame, stdin, update } = mount({ snapshot: failoverSnapshot(), onDrain });
    await tick();
    stdin.write(KEY.down);
    await tick();
    expect(row(lastFrame(), /^> /)).toMatch(/^> inet /);
    stdin.write('d');
    await tick();
    expect(lines(lastFrame()).at(-1)).toMatch(/drain inet\? .*y to confirm/);
    expect(onDrain).not.toHaveBeenCalled();
    stdin.write('y');
    await tick();
    expect(onDrain).toHaveBeenCalledWith('inet', true);
    expect(lastFrame()).toContain('inet drained');

    const snap = failoverSnapshot();
    snap.links[1] = { ...snap.links[1]!, state: 'drained' };
    update({ snapshot: snap });
    await tick();
    expect(row(lastFrame(), /^> inet /)).toMatch(/DRAINED/);
    stdin.write('d');
    await tick();
    expect(onDrain).toHaveBeenLastCalledWith('inet', false);
    expect(lastFrame()).toContain('inet back in service');
  });

  it('any key but y cancels a drain; a failed drain says why', async () => {
    const onDrain = vi.fn(async () => 'no link named "mpls"');
    const { lastFrame, stdin } = mount({ snapshot: failoverSnapshot(), onDrain });
    await tick();
    stdin.write('d');
    await tick();
    stdin.write('n');
    await tick();
    expect(onDrain).not.toHaveBeenCalled();
    stdin.write('d');
    await tick();
    stdin.write('y');
    await tick();
    expect(lastFrame()).toContain('drain mpls failed: no link named "mpls"');
  });

  it('tab cycles overview -> links -> classes -> events; number keys jump; ? shows help; q quits', async () => {
    const onQuit = vi.fn();
    const { lastFrame, stdin } = mount({ snapshot: failoverSnapshot(), onQuit });
    await tick();
    stdin.write(KEY.tab);
    await tick();
    expect(lines(lastFrame())[0]).toContain('[links]');
    expect(lastFrame()).toMatch(/remote 198\.51\.100\.8:51901 \(peer's inet\)/);
    expect(lastFrame()).toMatch(/loss 1s\/30s\/total\s+tx 0\.36%/);
    stdin.write(KEY.tab);
    await tick();
    expect(lines(lastFrame())[0]).toContain('[classes]');
    expect(lastFrame()).toMatch(/inet\s+█+\s+10 flows/);
    expect(lastFrame()).toContain('drops: malformed 2');
    expect(lastFrame()).toContain('session: established, chacha20-poly1305, 1:23.0 old');
    // The top flows this site sends, as many as fit at 24 rows, largest first.
    expect(lastFrame()).toMatch(/16\.03 MiB\s+3\.4M\s+default\s+inet\s+10\.1\.0\.20:51000 > 10\.2\.0\.9:443 tcp/);
    expectFits(lastFrame(), 80, 24);
    stdin.write(KEY.tab);
    await tick();
    expect(lines(lastFrame())[0]).toContain('[events]');
    expect(lastFrame()).toContain(FAILOVER_EVENT);
    stdin.write('1');
    await tick();
    expect(lines(lastFrame())[0]).toContain('[overview]');
    stdin.write('?');
    await tick();
    expect(lastFrame()).toContain('drain the selected link');
    expectFits(lastFrame(), 80, 24);
    stdin.write('x');
    await tick();
    expect(lastFrame()).not.toContain('drain the selected link');
    stdin.write('q');
    await tick();
    expect(onQuit).toHaveBeenCalledOnce();
  });
});

describe('colour', () => {
  it('paints states with colour on, and is plain text with every state spelled out when off (NO_COLOR)', () => {
    const on = mount({ snapshot: failoverSnapshot(), color: true });
    expect(on.lastFrame()).toContain('\x1b[31mDOWN');
    on.unmount();
    const off = mount({ snapshot: failoverSnapshot(), color: false });
    expect(off.lastFrame()).not.toMatch(/\x1b\[/);
    for (const s of ['DOWN', 'UP', 'DEGRADED']) expect(off.lastFrame()).toContain(s);
  });
});
