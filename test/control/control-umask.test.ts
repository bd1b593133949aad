/**
 * Issue 14 finding 4: the control socket must be born 0600-ish (created under a 077 umask), not
 * chmod-ed after listen() (a window where anyone may connect). chmod is stubbed out here, so only
 * the mode the socket was created with counts.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const noop = (): void => undefined;
  return { ...fs, default: { ...fs, chmodSync: noop }, chmodSync: noop };
});

const { ControlServer } = await import('../../src/control/control-socket.ts');

let oldUmask: number | undefined;
afterEach(() => {
  if (oldUmask !== undefined) process.umask(oldUmask);
});

describe('control socket creation mode', () => {
  it('creates the socket with no group or other permissions, whatever the process umask', async () => {
    oldUmask = process.umask(0o022);
    const dir = mkdtempSync(join(tmpdir(), 'braid-ctl-umask-'));
    const path = join(dir, 'braid.sock');
    const server = await ControlServer.listen(path, { status: () => ({}) as never, drain: () => undefined });
    try {
      expect(statSync(path).isSocket()).toBe(true);
      expect((statSync(path).mode & 0o077).toString(8)).toBe('0');
      expect(process.umask()).toBe(0o022); // restored
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
