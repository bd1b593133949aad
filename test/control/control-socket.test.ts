import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { controlRequest, subscribeControl, type ControlMessage } from '../../src/control/control-socket.ts';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';
import type { EdgeEvent, EdgeSnapshot } from '../../src/core/types.ts';
import { startWorldEdge, type WorldEdge } from './world-edge.ts';

let edge: WorldEdge | undefined;
afterEach(() => {
  edge?.close();
  edge = undefined;
});

const until = async (cond: () => boolean, timeoutMs = 5000): Promise<void> => {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('control socket protocol v1', () => {
  it('status returns the snapshot with the protocol version', async () => {
    edge = await startWorldEdge(2_000);
    const reply = await controlRequest(edge.socketPath, { cmd: 'status' });
    expect(reply.ok).toBe(true);
    expect(reply.version).toBe(1);
    expect(reply.status?.site).toBe('a');
    expect(reply.status?.links.map((l) => l.name)).toEqual(['mpls', 'inet', 'lte']);
  });

  it('drain and undrain reach the edge; an unknown link is an error naming the links', async () => {
    edge = await startWorldEdge(2_000);
    expect(await controlRequest(edge.socketPath, { cmd: 'drain', link: 'inet' })).toEqual({ ok: true });
    expect(edge.snapshot().links[1]!.state).toBe('drained');
    expect(await controlRequest(edge.socketPath, { cmd: 'undrain', link: 'inet' })).toEqual({ ok: true });
    expect(edge.snapshot().links[1]!.state).not.toBe('drained');
    const bad = await controlRequest(edge.socketPath, { cmd: 'drain', link: 'dsl' });
    expect(bad).toEqual({ ok: false, error: 'no link named "dsl" (have: mpls, inet, lte)' });
    expect((await controlRequest(edge.socketPath, { cmd: 'drain' })).error).toMatch(/^link: expected a link name/);
  });

  it('answers unknown commands and reload without a handler with an error line', async () => {
    edge = await startWorldEdge(1_000);
    expect((await controlRequest(edge.socketPath, { cmd: 'frobnicate' })).error).toMatch(/unknown cmd "frobnicate": expected status, drain, undrain, subscribe or reload/);
    expect((await controlRequest(edge.socketPath, { cmd: 'reload' })).error).toBe('reload is not supported by this edge');
  });

  it('subscribe streams snapshots and events until closed', async () => {
    edge = await startWorldEdge(9_000);
    const snaps: EdgeSnapshot[] = [];
    const events: EdgeEvent[] = [];
    const sub = await subscribeControl(edge.socketPath, 100, { onStatus: (s) => snaps.push(s), onEvent: (e) => events.push(e), onClose: () => undefined });
    expect(snaps).toHaveLength(1); // the first snapshot arrives before subscribe resolves
    edge.runTo(12_000); // the MPLS blackout at 10 s
    await until(() => snaps.length >= 3 && events.some((e) => e.kind === 'flowMoved'));
    expect(events.map((e) => e.message)).toContainEqual(expect.stringMatching(/^voice: mpls -> inet \(mpls down/));
    expect(snaps.at(-1)!.links[0]!.state).toBe('down');
    sub.close();
  });

  it('a second subscribe on one connection replaces the first (no leaked timer)', async () => {
    edge = await startWorldEdge(1_000);
    const { connect } = await import('node:net');
    const sock = connect(edge.socketPath);
    const lines: ControlMessage[] = [];
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, nl)) as ControlMessage);
        buf = buf.slice(nl + 1);
      }
    });
    await new Promise((r) => sock.once('connect', r));
    sock.write('{"cmd":"subscribe","intervalMs":100}\n{"cmd":"subscribe","intervalMs":100}\n');
    await new Promise((r) => setTimeout(r, 1050));
    sock.destroy();
    const periodic = lines.filter((l) => l.ok === undefined && l.status).length;
    // One 100 ms timer gives ~10 lines a second; two would give ~20.
    expect(periodic).toBeGreaterThanOrEqual(6);
    expect(periodic).toBeLessThanOrEqual(13);
  });

  it('subscriber closes are reported once when the edge goes away', async () => {
    edge = await startWorldEdge(1_000);
    let closes = 0;
    await subscribeControl(edge.socketPath, 1000, { onStatus: () => undefined, onClose: () => closes++ });
    edge.close();
    edge = undefined;
    await until(() => closes > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(closes).toBe(1);
  });
});

describe('control clients say what is wrong in one line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'braid-ctl-missing-'));

  it('a missing socket: "is braid up running?"', async () => {
    const err = await controlRequest(join(dir, 'nope.sock'), { cmd: 'status' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BraidError);
    expect((err as BraidError).code).toBe(ErrorCode.CONTROL_UNAVAILABLE);
    expect((err as BraidError).oneLine()).toMatch(/control socket .*nope\.sock: not found \(is braid up running\?\); fix: start the edge with `braid up -c FILE`/);
  });

  it('a stale socket file with nobody listening', async () => {
    const path = join(dir, 'stale.sock');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(path, r));
    // Closing a listening unix server removes its file; recreate the file as a plain one to mimic a crash leftover.
    await new Promise<void>((r) => srv.close(() => r()));
    writeFileSync(path, '');
    const err = (await subscribeControl(path, 1000, { onStatus: () => undefined, onClose: () => undefined }).catch((e: unknown) => e)) as BraidError;
    expect(err.code).toBe(ErrorCode.CONTROL_UNAVAILABLE);
    expect(err.message).toMatch(/is braid up running\?/);
    rmSync(path);
  });

  it('something that is not a braid edge', async () => {
    const path = join(dir, 'other.sock');
    const conns: Array<{ destroy(): void }> = [];
    const srv = createServer((s) => {
      conns.push(s);
      s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    await new Promise<void>((r) => srv.listen(path, r));
    const err = (await controlRequest(path, { cmd: 'status' }).catch((e: unknown) => e)) as BraidError;
    expect(err.message).toMatch(/does not speak braid's protocol|closed before replying/);
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });
});
