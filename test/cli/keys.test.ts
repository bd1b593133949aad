/**
 * Issue 14 finding 5: key files are written with exclusive create, never through a symlink, with
 * mode 0600 whatever was there before; a key file others can read is refused at load time.
 */
import { chmodSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readPrivateKeyFile, runKeygen } from '../../src/cli/keys.ts';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';

const KEY = 'YGbqoNVHOrhN8WLgrQfzJBtBjAcvFLeaXMIZ2f9QjUU=\n'; // any base64 32-byte key
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'braid-keys-'));
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);
const thrown = (f: () => unknown): BraidError => {
  try {
    f();
  } catch (e) {
    return e as BraidError;
  }
  throw new Error('expected a throw');
};

describe('braid keygen --out (issue 14, finding 5)', () => {
  it('writes a new key 0600', () => {
    const path = join(dir, 'private.key');
    expect(runKeygen(path, false)).toBe(0);
    expect(mode(path)).toBe('600');
    expect(readPrivateKeyFile(path)).toHaveLength(32);
  });

  it('--force over an existing 0644 file leaves the new key in a 0600 file, and no temp file behind', () => {
    const path = join(dir, 'private.key');
    writeFileSync(path, KEY, { mode: 0o644 });
    chmodSync(path, 0o644);
    expect(runKeygen(path, true)).toBe(0);
    expect(mode(path)).toBe('600');
    expect(readFileSync(path, 'utf8')).not.toBe(KEY);
    expect(readdirSync(dir)).toEqual(['private.key']);
  });

  it('--force never writes through a symlink planted at the path', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'do not touch\n', { mode: 0o644 });
    const path = join(dir, 'private.key');
    symlinkSync(victim, path);
    expect(runKeygen(path, true)).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('do not touch\n');
    expect(lstatSync(path).isFile()).toBe(true);
    expect(mode(path)).toBe('600');
  });

  it('without --force refuses any existing path, a dangling symlink included', () => {
    const path = join(dir, 'private.key');
    symlinkSync(join(dir, 'elsewhere'), path);
    const err = thrown(() => runKeygen(path, false));
    expect(err).toBeInstanceOf(BraidError);
    expect(err.code).toBe(ErrorCode.USAGE);
    expect(err.message).toMatch(/already exists/);
    expect(readdirSync(dir)).toEqual(['private.key']); // nothing created through the link
  });
});

describe('loading a private key file (issue 14, finding 5)', () => {
  it('refuses a group- or world-readable key, naming the chmod that fixes it', () => {
    const path = join(dir, 'private.key');
    writeFileSync(path, KEY, { mode: 0o600 });
    expect(readPrivateKeyFile(path)).toHaveLength(32);
    for (const bad of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(path, bad);
      const err = thrown(() => readPrivateKeyFile(path));
      expect(err).toBeInstanceOf(BraidError);
      expect(err.code).toBe(ErrorCode.KEY_INVALID);
      expect(err.message).toContain(`0${bad.toString(8)}`);
      expect(err.fix).toBe(`chmod 600 ${path}`);
    }
  });
});
