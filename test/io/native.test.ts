// The addon loader: a clear NATIVE_MISSING error when the addon is not built, and the UDP
// fallback that takes over. Runs in a child process because the loader caches its result.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('native addon loader', () => {
  it('reports NATIVE_MISSING with the fix, and openUdpLink falls back to node:dgram', { timeout: 30_000 }, async () => {
    const child = fileURLToPath(new URL('./helpers/native-missing-child.ts', import.meta.url));
    const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [runTs, child],
        { timeout: 25_000, env: { ...process.env, BRAID_NATIVE_ADDON: '/nonexistent/braid_native.node' } },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${String(err)}`)) : resolve(String(out))),
      );
    });
    const outcome = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
      thrown: { code?: string; message?: string };
      tryLoad: string;
      kind: string;
    };
    expect(outcome.thrown.code).toBe('BRAID_NATIVE_MISSING');
    expect(outcome.thrown.message).toMatch(/^braid native addon is not built or does not load \(\/nonexistent\/braid_native\.node: /);
    expect(outcome.thrown.message).toMatch(/run `npm ci` \(or `npm rebuild`\)/);
    expect(outcome.thrown.message?.includes('\n')).toBe(false);
    expect(outcome.tryLoad).toBe('undefined');
    expect(outcome.kind).toBe('dgram');
  });
});
