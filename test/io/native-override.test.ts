/**
 * Issue 14 finding 11: BRAID_NATIVE_ADDON loads only a .node file inside the package's native/
 * directory, never an arbitrary shared object named in the environment.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { addonPathProblem, NATIVE_DIR } from '../../src/io/native.ts';

const BUILT = join(NATIVE_DIR, 'build/Release/braid_native.node');

function loadIn(env: Record<string, string>): Promise<{ thrown: { message?: string }; tryLoad: string }> {
  const child = fileURLToPath(new URL('./helpers/native-missing-child.ts', import.meta.url));
  const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [runTs, child], { timeout: 25_000, env: { ...process.env, ...env } }, (error, out, err) =>
      error ? reject(new Error(`${error.message}\n${String(err)}`)) : resolve(JSON.parse(String(out).trim().split('\n').at(-1) ?? '{}')),
    );
  });
}

describe('BRAID_NATIVE_ADDON (issue 14, finding 11)', () => {
  it.skipIf(!existsSync(BUILT))('refuses a working addon copied outside native/, loads one inside', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'braid-addon-'));
    try {
      const outside = join(dir, 'evil.node');
      copyFileSync(BUILT, outside);
      const refused = await loadIn({ BRAID_NATIVE_ADDON: outside });
      expect(refused.tryLoad).toBe('undefined');
      expect(refused.thrown.message).toMatch(/refused: BRAID_NATIVE_ADDON must name a \.node file inside .*native/);
      const inside = await loadIn({ BRAID_NATIVE_ADDON: BUILT });
      expect(inside.tryLoad).toBe('addon');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('judges the real path: symlinks out of native/ and non-.node files are refused', () => {
    const root = mkdtempSync(join(tmpdir(), 'braid-addon-dir-'));
    try {
      const native = join(root, 'native');
      mkdirSync(join(native, 'build-asan'), { recursive: true });
      copyFileSync(__filename, join(native, 'build-asan', 'braid_native.node'));
      copyFileSync(__filename, join(root, 'evil.node'));
      symlinkSync(join(root, 'evil.node'), join(native, 'link.node'));
      expect(addonPathProblem(join(native, 'build-asan', 'braid_native.node'), native)).toBeUndefined();
      expect(addonPathProblem(join(native, 'build-asan', '..', '..', 'evil.node'), native)).toMatch(/refused/);
      expect(addonPathProblem(join(native, 'link.node'), native)).toMatch(/refused/);
      expect(addonPathProblem(join(root, 'evil.node'), native)).toMatch(/refused/);
      expect(addonPathProblem(join(native, 'missing.node'), native)).toMatch(/refused/);
      expect(addonPathProblem(join(native, 'build-asan'), native)).toMatch(/refused/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
