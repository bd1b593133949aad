/**
 * Drain by link (every peer) or by (peer, link) through the control socket, on a hub with two
 * spokes in the World; and events logged with their typed fields (peer, link, class, from, to).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketDrainHandler } from '../../src/cli/dash.ts';
import { ControlServer, controlRequest } from '../../src/control/control-socket.ts';
import { drainHandler } from '../../src/control/drain.ts';
import { createLogger, eventLogFields } from '../../src/control/logger.ts';
import type { EdgeEvent } from '../../src/core/types.ts';
import { World } from '../../sim/world.ts';

function hubWorld(): World {
  return new World({
    seed: 5,
    sites: [
      { name: 'hub', role: 'hub', links: ['mpls', 'inet'], prefixes: ['10.1.0.0/16'] },
      { name: 's1', links: ['mpls', 'inet'], prefixes: ['10.2.0.0/16'] },
      { name: 's2', links: ['mpls', 'inet'], prefixes: ['10.3.0.0/16'] },
    ],
    connections: [
      { a: 's1.mpls', b: 'hub.mpls', delayMs: 15 },
      { a: 's1.inet', b: 'hub.inet', delayMs: 10 },
      { a: 's2.mpls', b: 'hub.mpls', delayMs: 12 },
      { a: 's2.inet', b: 'hub.inet', delayMs: 9 },
    ],
  });
}

describe('drain over the control socket on a hub', () => {
  let world: World;
  let server: ControlServer;
  let dir: string;
  let sock: string;
  const states = (): Record<string, string> => Object.fromEntries(world.site('hub').edge.snapshot(world.nowMs).links.map((l) => [`${l.peer}/${l.name}`, l.state]));
  beforeAll(async () => {
    world = hubWorld();
    world.run(3000);
    dir = mkdtempSync(join(tmpdir(), 'braid-drain-'));
    sock = join(dir, 'braid.sock');
    const hub = world.site('hub');
    const peerNames = (): string[] => (hub.edge.snapshot(world.nowMs).peers ?? []).map((p) => p.name);
    server = await ControlServer.listen(sock, {
      status: () => hub.edge.snapshot(world.nowMs),
      drain: drainHandler(
        hub.linkNames,
        { has: (n) => peerNames().includes(n), names: peerNames },
        (id, drained, peer) => {
          hub.edge.setLinkAdmin(world.nowMs, id, drained, peer);
          world.drain(hub);
        },
      ),
    });
  });
  afterAll(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a link for every peer, then undrain', async () => {
    expect(Object.values(states()).every((s) => s === 'up')).toBe(true);
    expect(await controlRequest(sock, { cmd: 'drain', link: 'mpls' })).toEqual({ ok: true });
    expect(states()).toEqual({ 's1/mpls': 'drained', 's1/inet': 'up', 's2/mpls': 'drained', 's2/inet': 'up' });
    expect(await controlRequest(sock, { cmd: 'undrain', link: 'mpls' })).toEqual({ ok: true });
    world.run(world.nowMs + 3000);
    expect(states()).toEqual({ 's1/mpls': 'up', 's1/inet': 'up', 's2/mpls': 'up', 's2/inet': 'up' });
  });

  it('one (peer, link): only that path', async () => {
    expect(await controlRequest(sock, { cmd: 'drain', link: 'inet', peer: 's2' })).toEqual({ ok: true });
    expect(states()).toEqual({ 's1/mpls': 'up', 's1/inet': 'up', 's2/mpls': 'up', 's2/inet': 'drained' });
    expect(await controlRequest(sock, { cmd: 'undrain', link: 'inet', peer: 's2' })).toEqual({ ok: true });
    world.run(world.nowMs + 3000);
    expect(states()['s2/inet']).toBe('up');
  });

  it('unknown peer or link, or a peer that is not a string: an error naming what exists, nothing drained', async () => {
    expect(await controlRequest(sock, { cmd: 'drain', link: 'inet', peer: 's9' })).toEqual({ ok: false, error: 'no peer named "s9" (have: s1, s2)' });
    expect(await controlRequest(sock, { cmd: 'drain', link: 'dsl', peer: 's1' })).toEqual({ ok: false, error: 'no link named "dsl" (have: mpls, inet)' });
    expect((await controlRequest(sock, { cmd: 'drain', link: 'inet', peer: 7 })).error).toMatch(/^peer: expected a peer name/);
    expect(Object.values(states()).every((s) => s === 'up')).toBe(true);
  });

  it("braid dash's drain handler sends the selected path's peer", async () => {
    expect(await socketDrainHandler(sock)('mpls', true, 's1')).toBeUndefined();
    expect(states()).toEqual({ 's1/mpls': 'drained', 's1/inet': 'up', 's2/mpls': 'up', 's2/inet': 'up' });
    expect(await socketDrainHandler(sock)('mpls', false, 's1')).toBeUndefined();
    expect(await socketDrainHandler(sock)('mpls', true, 'nobody')).toBe('no peer named "nobody" (have: s1, s2)');
  });
});

describe('drainHandler', () => {
  it('passes the peer through, or undefined for every peer', () => {
    const calls: Array<[number, boolean, string | undefined]> = [];
    const h = drainHandler(['mpls', 'inet'], { has: (n) => n === 'b1', names: () => ['b1'] }, (...a) => calls.push(a));
    expect(h('inet', true)).toBeUndefined();
    expect(h('mpls', false, 'b1')).toBeUndefined();
    expect(h('mpls', true, 'b2')).toBe('no peer named "b2" (have: b1)');
    expect(calls).toEqual([
      [1, true, undefined],
      [0, false, 'b1'],
    ]);
    const many = Array.from({ length: 12 }, (_, i) => `p${i}`);
    expect(drainHandler(['mpls'], { has: () => false, names: () => many }, () => undefined)('mpls', true, 'x')).toBe('no peer named "x" (have: p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, ... (12))');
  });
});

describe('events in the log', () => {
  it('carry their typed fields as pino fields', () => {
    const world = hubWorld();
    world.run(2000);
    world.site('hub').edge.setLinkAdmin(world.nowMs, 0, true, 's1');
    world.drain(world.site('hub'));
    const events: EdgeEvent[] = [];
    for (let e = world.site('hub').edge.pollEvent(); e; e = world.site('hub').edge.pollEvent()) events.push(e);
    const all = [...world.site('hub').events, ...events];
    const lines: string[] = [];
    const log = createLogger('info', 'hub', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }) as never);
    for (const ev of all) log.info(eventLogFields(ev), ev.message);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.length).toBe(all.length);
    // Every typed field of every event is in its line, under its own name.
    for (const [i, ev] of all.entries()) {
      expect(parsed[i]!.event).toBe(ev.kind);
      for (const k of ['peer', 'link', 'class', 'from', 'to', 'reason', 'flows'] as const) expect(parsed[i]![k]).toBe(ev[k]);
    }
    const drained = parsed.find((p) => p.peer === 's1' && p.link === 'mpls' && p.to === 'drained');
    expect(drained, JSON.stringify(parsed.filter((p) => p.peer === 's1'))).toBeDefined();
    expect(parsed.some((p) => p.peer === 's2')).toBe(true);
  });

  it('leave out the fields an event does not have', () => {
    expect(eventLogFields({ atMs: 1, kind: 'flowMoved', peer: 'b1', link: 'mpls', class: 'voice', from: 'mpls', to: 'inet', reason: 'loss', flows: 3, message: 'x' })).toEqual({ event: 'flowMoved', peer: 'b1', link: 'mpls', class: 'voice', from: 'mpls', to: 'inet', reason: 'loss', flows: 3 });
    expect(eventLogFields({ atMs: 1, kind: 'config', message: 'x' })).toEqual({ event: 'config' });
  });
});
