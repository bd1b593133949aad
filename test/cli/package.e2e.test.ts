/**
 * The Debian package, installed the way an operator installs it (root; CI runs this):
 * `npm run package` -> `apt-get install -y ./braid_*.deb` -> braid --version, /etc/braid 0700
 * with a key, `braid check -c` the packaged example on this box's interfaces (a dummy brt-pkg0),
 * systemd-analyze verify on the installed unit, the unit equals what `braid install-service`
 * writes, every verb from /usr/bin/braid outside the repo -> `apt-get purge` keeps /etc/braid/*.key
 * and removes the unit `braid install-service` wrote.
 * The package is removed afterwards even on failure; a /etc/braid that was not here before goes
 * too. Skipped (with the reason) when not root, without apt-get/dpkg-deb, or when a braid package
 * is already installed on this box (never replace an operator's install).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verbTests } from './verbs.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const DUMMY = 'brt-pkg0';
const UNIT = '/lib/systemd/system/braid.service';
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

const has = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const installed = (): boolean => spawnSync('dpkg-query', ['-W', '-f=${Status}', 'braid'], { encoding: 'utf8' }).stdout.includes('install ok installed');

/** One package test per box at a time: two would install and purge under each other. */
const LOCK = join(tmpdir(), 'braid-package-e2e.lock');
function takeLock(): boolean {
  try {
    writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const holder = Number(readFileSync(LOCK, 'utf8'));
    try {
      process.kill(holder, 0);
      return false; // alive: someone else's run
    } catch {
      writeFileSync(LOCK, String(process.pid)); // stale
      return true;
    }
  }
}

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (installs a Debian package; CI runs as root)';
  for (const bin of ['apt-get', 'dpkg-deb', 'dpkg-query']) if (!has(bin)) return `${bin} is not installed (not a Debian box)`;
  if (!takeLock()) return `another package test holds ${LOCK}`;
  if (installed()) return 'a braid package is already installed on this box; not replacing it';
  return undefined;
}
const skipReason = whyNot();

let work = '';
let etcBraidExisted = true;
let unitExisted = true;
let ready = false;
let buildError = '';

function cleanup(): void {
  if (installed()) spawnSync('apt-get', ['purge', '-y', 'braid'], { env, encoding: 'utf8' });
  if (!etcBraidExisted) rmSync('/etc/braid', { recursive: true, force: true });
  if (!unitExisted) rmSync('/etc/systemd/system/braid.service', { force: true });
  spawnSync('ip', ['link', 'del', DUMMY], { stdio: 'ignore' });
  if (work) rmSync(work, { recursive: true, force: true });
}

function releaseLock(): void {
  if (existsSync(LOCK) && readFileSync(LOCK, 'utf8') === String(process.pid)) rmSync(LOCK, { force: true });
}

describe('the Debian package (npm run package, apt-get install, purge)', () => {
  beforeAll(() => {
    if (skipReason) return;
    etcBraidExisted = existsSync('/etc/braid');
    unitExisted = existsSync('/etc/systemd/system/braid.service');
    work = mkdtempSync(join(tmpdir(), 'braid-pkg-'));
    try {
      execFileSync('npm', ['run', 'package', '--silent'], { cwd: REPO, env: { ...env, BRAID_DEB_OUT: work }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const debs = readdirSync(work).filter((f) => /^braid_.+_.+\.deb$/.test(f));
      expect(debs).toEqual([expect.stringMatching(new RegExp(`^braid_${VERSION.replace(/\./g, '\\.')}_[a-z0-9]+\\.deb$`))]);
      // `./` makes apt-get take a file, not a package name.
      execFileSync('apt-get', ['install', '-y', `./${debs[0]}`], { cwd: work, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      ready = installed();
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string; message: string };
      buildError = `${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`;
    }
  }, 600_000);
  afterAll(() => {
    if (skipReason === undefined) cleanup();
    releaseLock();
  }, 120_000);

  const skip = (ctx: { skip: (note?: string) => void }): boolean => {
    if (!skipReason) return false;
    console.warn(`SKIP package: ${skipReason}`);
    ctx.skip(skipReason);
    return true;
  };

  it('installs: /usr/bin/braid --version, /etc/braid 0700 with a 0600 key, no service started', (ctx) => {
    if (skip(ctx)) return;
    expect(buildError).toBe('');
    expect(ready).toBe(true);
    const v = spawnSync('/usr/bin/braid', ['--version'], { cwd: tmpdir(), encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toBe(`braid ${VERSION}\n`);
    expect(statSync('/etc/braid').mode & 0o777).toBe(0o700);
    expect(statSync('/etc/braid/private.key').mode & 0o777).toBe(0o600);
    // Compiled JavaScript only: no TypeScript and no TypeScript loader in the package.
    const files = execFileSync('dpkg-query', ['-L', 'braid'], { encoding: 'utf8' }).split('\n');
    expect(files.filter((f) => /\.tsx?$/.test(f) && !f.includes('/node_modules/'))).toEqual([]);
    expect(files.filter((f) => /\/node_modules\/(tsx|typescript|esbuild|vitest)$/.test(f))).toEqual([]);
    expect(files).toContain('/usr/lib/braid/native/build/Release/braid_native.node');
    expect(files).toContain('/usr/share/doc/braid/examples/braid.yaml');
    if (existsSync('/run/systemd/system')) {
      expect(spawnSync('systemctl', ['is-active', 'braid'], { encoding: 'utf8' }).stdout.trim()).not.toBe('active');
    }
  });

  it('braid check -c the packaged example, on this box\'s interfaces', (ctx) => {
    if (skip(ctx)) return;
    expect(ready).toBe(true);
    spawnSync('ip', ['link', 'del', DUMMY], { stdio: 'ignore' });
    let ifname = DUMMY;
    const add = spawnSync('ip', ['link', 'add', DUMMY, 'type', 'dummy'], { encoding: 'utf8' });
    if (add.status !== 0) {
      console.warn(`note: no dummy interface here (${add.stderr.trim()}); checking the example on lo instead`);
      ifname = 'lo';
    }
    const example = readFileSync('/usr/share/doc/braid/examples/braid.yaml', 'utf8');
    expect(example).toMatch(/interface: wan0/);
    const adjusted = join(work, 'braid.yaml');
    writeFileSync(adjusted, example.replace(/interface: wan\d/g, `interface: ${ifname}`));
    const r = spawnSync('/usr/bin/braid', ['check', '-c', adjusted], { cwd: tmpdir(), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`mpls@${ifname}`);
  });

  it('the installed unit passes systemd-analyze verify and is what braid install-service writes', (ctx) => {
    if (skip(ctx)) return;
    expect(ready).toBe(true);
    const written = join(work, 'braid.service');
    const r = spawnSync('/usr/bin/braid', ['install-service', '--config', '/etc/braid/braid.yaml', '--path', written], { cwd: tmpdir(), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const packaged = readFileSync(UNIT, 'utf8');
    if (process.execPath === '/usr/bin/node') expect(readFileSync(written, 'utf8')).toBe(packaged);
    else expect(readFileSync(written, 'utf8').replace(process.execPath, '/usr/bin/node')).toBe(packaged);
    expect(packaged).toContain('ExecStart=/usr/bin/node /usr/lib/braid/bin/braid.js up -c /etc/braid/braid.yaml\n');
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      console.warn('SKIP systemd-analyze verify: systemd-analyze is not installed here (Debian package systemd)');
      return;
    }
    const v = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    const complaints = (v.stderr ?? '').split('\n').filter((l) => l.includes('braid.service') && !/Failed to (connect|prepare)/i.test(l));
    expect(complaints).toEqual([]);
  });

  describe('every verb from /usr/bin/braid, outside the repo', () => {
    verbTests(() => ['/usr/bin/braid'], () => ready, () => skipReason ?? `the package did not install: ${buildError.slice(0, 300)}`);
  });

  it('apt-get purge removes the package and the units but keeps /etc/braid/*.key', (ctx) => {
    if (skip(ctx)) return;
    expect(ready).toBe(true);
    const key = readFileSync('/etc/braid/private.key', 'utf8');
    // The unit `braid install-service` writes goes too (only when this test wrote it).
    const ownUnit = '/etc/systemd/system/braid.service';
    const wroteUnit = !existsSync(ownUnit);
    if (wroteUnit) execFileSync('/usr/bin/braid', ['install-service'], { cwd: tmpdir(), encoding: 'utf8' });
    execFileSync('apt-get', ['purge', '-y', 'braid'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (wroteUnit) expect(existsSync(ownUnit)).toBe(false);
    expect(installed()).toBe(false);
    expect(existsSync('/usr/bin/braid')).toBe(false);
    expect(existsSync(UNIT)).toBe(false);
    expect(readFileSync('/etc/braid/private.key', 'utf8')).toBe(key);
  });
});
