/**
 * Every `braid` verb, run the way an operator runs them: from a working directory outside the
 * repo, `dash` and `demo` in a pseudo-terminal (script(1)) for a few seconds. Used for the clone
 * (test/cli/verbs.test.ts: node bin/braid.js, TypeScript through tsx) and for the installed
 * Debian package (test/cli/package.e2e.test.ts: /usr/bin/braid, compiled JavaScript).
 * Checks that each verb loads and does its job; not timing.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

/** Output that means a verb crashed rather than failed cleanly. */
const CRASH = /internal error|ReferenceError|SyntaxError|ERR_MODULE_NOT_FOUND|ERR_UNKNOWN_FILE_EXTENSION|Cannot find module|is not defined/;

/** Per test: several node starts each, some seconds apiece on a loaded 2-core box. */
const SLOW_MS = 240_000;

export const VERBS = ['up', 'check', 'keygen', 'pubkey', 'demo', 'sim', 'status', 'dash', 'install-service', 'fleet'] as const;

/** A config that passes `braid check` on any box: every link on `lo`. */
export function loConfig(keyFile: string): string {
  return `site: verbs
privateKeyFile: ${keyFile}
tun: { name: brt-verbs0, address: 10.99.0.1/30 }
links:
  - { name: mpls, interface: lo, port: 51990 }
  - { name: inet, interface: lo, port: 51991 }
peers:
  - name: hub
    publicKey: nWHbP7EvwEY9ni0OdZ11prXcrYKBoMLgjn6s9KzOB1w=
    endpoints: { mpls: 127.0.0.1:51992, inet: 127.0.0.1:51993 }
control: { socket: ${join(tmpdir(), 'brt-verbs-none.sock')} }
`;
}

/**
 * Registers the tests (inside a describe). `cmd` is the command prefix, e.g. ['/usr/bin/braid']
 * or [process.execPath, 'bin/braid.js']; `ready()` false skips them with `reason()` printed.
 */
export function verbTests(cmd: () => string[], ready: () => boolean, reason: () => string): void {
  let cwd = '';
  beforeAll(() => {
    cwd = mkdtempSync(join(tmpdir(), 'braid-verbs-'));
  });
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  const braid = (args: string[], input?: string): SpawnSyncReturns<string> => {
    const [bin, ...pre] = cmd();
    return spawnSync(bin!, [...pre, ...args], { cwd, encoding: 'utf8', timeout: 120_000, ...(input === undefined ? {} : { input }), env: { ...process.env, NO_COLOR: '1' } });
  };
  /** `braid ARGS` in a pseudo-terminal for `seconds`, then SIGINT; the screen as text. */
  const inPty = (args: string[], seconds: number): { out: string; status: number | null } => {
    const line = [...cmd(), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    // --foreground: the command stays in the terminal's process group (else it stops on SIGTTOU
    // when ink puts the terminal in raw mode).
    const r = spawnSync('script', ['-qec', `timeout --foreground -s INT ${seconds} ${line}; echo "[exit $?]"`, '/dev/null'], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: (seconds + 60) * 1000,
      env: { ...process.env, TERM: 'xterm-256color', COLUMNS: '100', LINES: '30' },
    });
    return { out: r.stdout + r.stderr, status: r.status };
  };
  const skip = (ctx: { skip: (note?: string) => void }): boolean => {
    if (ready()) return false;
    console.warn(`SKIP braid verbs: ${reason()}`);
    ctx.skip(reason());
    return true;
  };
  const clean = (r: SpawnSyncReturns<string>): void => {
    expect(`${r.stdout}${r.stderr}`).not.toMatch(CRASH);
  };

  it('--version, --help and COMMAND --help for every verb', (ctx) => {
    if (skip(ctx)) return;
    const v = braid(['--version']);
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^braid \d+\.\d+\.\d+/);
    const h = braid(['--help']);
    expect(h.status).toBe(0);
    for (const verb of VERBS) {
      expect(h.stdout).toContain(`  ${verb} `);
      const vh = braid([verb, '--help']);
      expect(vh.status, `${verb} --help: ${vh.stderr}`).toBe(0);
      expect(vh.stdout).toMatch(new RegExp(`^braid ${verb}`));
    }
  }, SLOW_MS);

  it('keygen, pubkey (file and stdin), check, install-service', (ctx) => {
    if (skip(ctx)) return;
    const key = braid(['keygen']);
    expect(key.status).toBe(0);
    expect(key.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    const piped = braid(['pubkey'], key.stdout);
    expect(piped.status, piped.stderr).toBe(0);
    expect(piped.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    const keyFile = join(cwd, 'private.key');
    const kg = braid(['keygen', '--out', keyFile]);
    expect(kg.status, kg.stderr).toBe(0);
    const pub = braid(['pubkey', keyFile]);
    expect(pub.status).toBe(0);
    expect(pub.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    writeFileSync(join(cwd, 'site.yaml'), loConfig(keyFile));
    const check = braid(['check', '-c', 'site.yaml']);
    clean(check);
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toContain('site.yaml: ok (site verbs, 2 links');
    const unit = join(cwd, 'braid.service');
    const inst = braid(['install-service', '--config', join(cwd, 'site.yaml'), '--path', unit]);
    clean(inst);
    expect(inst.status, inst.stderr).toBe(0);
    expect(readFileSync(unit, 'utf8')).toMatch(/^ExecStart=\S+ \S+braid\.js up -c \S+site\.yaml$/m);
  }, SLOW_MS);

  it('up and status load their code and fail cleanly without an interface or an edge', (ctx) => {
    if (skip(ctx)) return;
    const keyFile = join(cwd, 'private.key');
    if (!existsSync(keyFile)) braid(['keygen', '--out', keyFile]);
    writeFileSync(join(cwd, 'gone.yaml'), loConfig(keyFile).replace('interface: lo, port: 51991', 'interface: brt-none9, port: 51991'));
    const up = braid(['up', '-c', 'gone.yaml']);
    clean(up);
    expect(up.status).toBe(2);
    expect(up.stderr).toMatch(/gone\.yaml:\d+:\d+: links\[1\]\.interface: interface "brt-none9" does not exist/);
    const status = braid(['status', '--socket', join(cwd, 'none.sock')]);
    clean(status);
    expect(status.status).toBe(1);
    expect(status.stderr).toContain('not found (is braid up running?)');
  }, SLOW_MS);

  it('sim list, sim run (virtual time) and sim vopr', (ctx) => {
    if (skip(ctx)) return;
    const list = braid(['sim', 'list']);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toContain('mpls-blackout');
    const run = braid(['sim', 'run', 'mpls-blackout', '--seed', '1', '--json']);
    clean(run);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toHaveProperty('classes');
    const vopr = braid(['sim', 'vopr', '--seed', '1', '--runs', '1']);
    clean(vopr);
    expect(vopr.status, vopr.stderr).toBe(0);
    expect(vopr.stdout).toMatch(/1\/1 seeds passed/);
  }, SLOW_MS);

  it('demo and dash in a pseudo-terminal', (ctx) => {
    if (skip(ctx)) return;
    if (spawnSync('script', ['--version']).status !== 0) {
      console.warn('SKIP demo/dash in a pty: script(1) is not installed (Debian package bsdutils)');
      ctx.skip('script(1) missing');
      return;
    }
    const demo = inPty(['demo'], 8);
    expect(demo.out).not.toMatch(CRASH);
    expect(demo.out).toContain('mpls'); // the links table drew
    expect(demo.out).toContain('[exit 124]'); // still running when interrupted: it did not crash
    const dash = inPty(['dash', '--socket', join(cwd, 'none.sock')], 3);
    expect(dash.out).not.toMatch(CRASH);
    expect(dash.out).toMatch(/not found \(is braid up running\?\)|connecting|waiting/i);
  }, SLOW_MS);
}
