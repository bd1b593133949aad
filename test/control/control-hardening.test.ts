/**
 * Issue 14 findings 3 and 4: the control socket under clients that do not read, clients that say
 * nothing, many readers at once, and a `control.socket` path that is not a socket.
 */
import { lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlServer, controlRequest, subscribeControl, type ControlHandlers, type ControlServerOptions } from '../../src/control/control-socket.ts';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';

let dir: string;
let servers: ControlServer[] = [];
let sockets: Socket[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'braid-ctl-hard-'));
});
afterEach(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  sockets = [];
  servers = [];
  rmSync(dir, { recursive: true, force: true });
});

const until = async (what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> => {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A snapshot-shaped object of about `padBytes` bytes of JSON (only the control socket reads it). */
function fakeSnapshot(padBytes: number): EdgeSnapshot {
  return { site: 'a', links: [], classes: [], pad: 'x'.repeat(padBytes) } as unknown as EdgeSnapshot;
}

interface Counting extends ControlHandlers {
  statusCalls: number;
  drainCalls: number;
}
function counting(padBytes = 100): Counting {
  const h: Counting = {
    statusCalls: 0,
    drainCalls: 0,
    status: () => {
      h.statusCalls++;
      return fakeSnapshot(padBytes);
    },
    drain: () => {
      h.drainCalls++;
      return 'no such link';
    },
  };
  return h;
}

async function listen(handlers: ControlHandlers, options?: ControlServerOptions): Promise<{ server: ControlServer; path: string }> {
  const path = join(dir, 'braid.sock');
  const server = await ControlServer.listen(path, handlers, options);
  servers.push(server);
  return { server, path };
}

async function rawClient(path: string): Promise<Socket> {
  const sock = connect(path);
  sockets.push(sock);
  sock.on('error', () => undefined);
  await new Promise((r) => sock.once('connect', r));
  return sock;
}

describe('control socket: slow and silent clients (issue 14, finding 3)', () => {
  it('stops reading from a client that pipelines requests but does not read the replies', async () => {
    const h = counting(16 * 1024); // 16 KiB replies: the socket buffers fill after a few dozen
    const { server, path } = await listen(h);
    const sock = await rawClient(path);
    sock.pause(); // never read
    // 1 MB of pipelined requests: every other one a drain, which we can count on the server.
    const pairs = Math.ceil((1024 * 1024) / 44);
    const chunk = '{"cmd":"status"}\n{"cmd":"drain","link":"x"}\n'.repeat(pairs);
    sock.write(chunk);
    // Let the server take in as much as it is going to.
    let last = -1;
    while (h.drainCalls !== last) {
      last = h.drainCalls;
      await sleep(200);
    }
    // Before the fix every request was answered into an unbounded buffer.
    expect(h.drainCalls).toBeLessThan(pairs / 20);
    expect(server.clientCount).toBe(1); // held, not dropped: it may yet read
    // Once the client reads, the server goes on answering.
    const stalledAt = h.drainCalls;
    sock.on('data', () => undefined);
    sock.resume();
    await until('more replies', () => h.drainCalls > stalledAt + 1000, 30_000);
    sock.destroy();
  }, 60_000);

  it('drops a subscriber whose unread output exceeds its budget', async () => {
    const h = counting(64 * 1024);
    const { server, path } = await listen(h, { maxClientBacklogBytes: 256 * 1024 });
    const sock = await rawClient(path);
    sock.pause(); // (a paused socket does not see its own close either: watch the server)
    sock.write('{"cmd":"subscribe","intervalMs":100}\n');
    await until('the subscriber to be registered', () => server.clientCount === 1);
    await until('the server to drop the subscriber', () => server.clientCount === 0, 30_000);
  }, 40_000);

  it('closes a client that says nothing for the idle timeout', async () => {
    const { path } = await listen(counting(), { idleTimeoutMs: 200 });
    const sock = await rawClient(path);
    let closed = false;
    sock.once('close', () => (closed = true));
    await until('the idle client to be closed', () => closed, 3000);
  });

  it('32 silent clients do not lock out the 33rd: the least recently active one is closed', async () => {
    const { path } = await listen(counting());
    const silent: Socket[] = [];
    for (let i = 0; i < 32; i++) silent.push(await rawClient(path));
    await sleep(100);
    const reply = await controlRequest(path, { cmd: 'status' });
    expect(reply.ok).toBe(true);
    expect(reply.status?.site).toBe('a');
    await until('the oldest silent client to be closed', () => silent[0]!.destroyed || silent[0]!.readableEnded);
  });

  it('builds one snapshot per tick for every reader, requests and subscribers alike', async () => {
    let nowMs = 0;
    const h = counting();
    const { path } = await listen(h, { nowMs: () => nowMs });
    const subs = await Promise.all(
      Array.from({ length: 10 }, () => subscribeControl(path, 100, { onStatus: () => undefined, onClose: () => undefined })),
    );
    const replies = await Promise.all(Array.from({ length: 20 }, () => controlRequest(path, { cmd: 'status' })));
    expect(replies.every((r) => r.ok === true && r.status?.site === 'a')).toBe(true);
    expect(h.statusCalls).toBe(1);
    nowMs = 1000; // the next tick
    await controlRequest(path, { cmd: 'status' });
    expect(h.statusCalls).toBe(2);
    for (const s of subs) s.close();
  });
});

describe('control socket path (issue 14, finding 4)', () => {
  it('refuses to delete a regular file at the socket path, with a clear error', async () => {
    const path = join(dir, 'braid.sock');
    writeFileSync(path, 'precious');
    const err = (await ControlServer.listen(path, counting()).catch((e: unknown) => e)) as BraidError;
    expect(err).toBeInstanceOf(BraidError);
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toMatch(/braid\.sock.*not a socket/);
    expect(readFileSync(path, 'utf8')).toBe('precious');
  });

  it('refuses a symlink at the socket path (and leaves its target alone)', async () => {
    const target = join(dir, 'target');
    writeFileSync(target, 'precious');
    const path = join(dir, 'braid.sock');
    symlinkSync(target, path);
    const err = (await ControlServer.listen(path, counting()).catch((e: unknown) => e)) as BraidError;
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(lstatSync(path).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('precious');
  });

  it('refuses to take over a socket another edge is listening on', async () => {
    const { path } = await listen(counting());
    const err = (await ControlServer.listen(path, counting()).catch((e: unknown) => e)) as BraidError;
    expect(err.code).toBe(ErrorCode.CONTROL_UNAVAILABLE);
    expect(err.message).toMatch(/already listening/);
    expect((await controlRequest(path, { cmd: 'status' })).ok).toBe(true);
  });
});
