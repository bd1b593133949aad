import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { braidBinPath, runInstallService, serviceUnit, systemdQuote } from '../../src/cli/install-service.ts';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'braid-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(v: Record<string, string>): { code: number; out: string } {
  let out = '';
  const code = runInstallService(v, { write: (s: string) => (out += s) });
  return { code, out };
}

describe('braid install-service', () => {
  it('writes a hardened unit running braid up -c CONFIG to --path, and prints the next steps', () => {
    const path = join(dir, 'braid.service');
    const config = join(dir, 'site.yaml');
    const { code, out } = run({ path, config });
    expect(code).toBe(0);
    const unit = readFileSync(path, 'utf8');
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(unit).toContain(`ExecStart=${process.execPath} ${braidBinPath()} up -c ${config}\n`);
    expect(unit).toContain(`ExecStartPre=${process.execPath} ${braidBinPath()} check -c ${config}\n`);
    for (const line of [
      'Restart=on-failure',
      'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF',
      'AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'PrivateTmp=yes',
      'DeviceAllow=/dev/net/tun rw',
      'RuntimeDirectory=braid',
      'WantedBy=multi-user.target',
      'After=network-online.target',
    ]) {
      expect(unit).toContain(`\n${line}\n`);
    }
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m); // V8's JIT needs W+X pages
    expect(existsSync(braidBinPath())).toBe(true);
    expect(out).toMatch(/^wrote .*braid\.service \(runs: braid up -c .*site\.yaml\)\n/);
    expect(out).toContain('does not exist yet');
    expect(out).toContain('sudo systemctl daemon-reload');
    expect(out).toContain('sudo systemctl enable --now braid');
    expect(run({ path, config }).out).toMatch(/^unchanged /);
  });

  it('passes systemd-analyze verify when systemd is here', (ctx) => {
    if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
      console.warn('SKIP systemd-analyze verify: systemd-analyze is not installed here (Debian package systemd); the unit text is still checked above');
      ctx.skip('systemd-analyze not installed');
      return;
    }
    const path = join(dir, 'braid-verify.service');
    run({ path, config: join(dir, 'x.yaml') });
    const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
    // verify warns on stderr (unknown keys, bad values) and may exit 0 anyway.
    const complaints = (r.stderr ?? '').split('\n').filter((l) => l.includes('braid-verify.service') && !/Failed to (connect|prepare)/i.test(l));
    expect(complaints).toEqual([]);
  });

  it('quotes paths with spaces and escapes systemd specifiers', () => {
    expect(systemdQuote('/opt/braid/bin/braid.js')).toBe('/opt/braid/bin/braid.js');
    expect(systemdQuote('/etc/my braid/100%.yaml')).toBe('"/etc/my braid/100%%.yaml"');
    expect(systemdQuote('/a/$HOME')).toBe('/a/$$HOME');
    const unit = serviceUnit({ nodePath: '/usr/bin/node', braidPath: '/home/ops/braid/bin/braid.js', configPath: '/etc/my braid/a.yaml' });
    expect(unit).toContain('ExecStart=/usr/bin/node /home/ops/braid/bin/braid.js up -c "/etc/my braid/a.yaml"\n');
    expect(unit).toContain('\nProtectHome=read-only\n'); // a checkout under /home must stay readable
  });

  it('a newline in a path cannot add a directive: refused, nothing written (issue 14 finding 9)', () => {
    const path = join(dir, 'inject.service');
    for (const config of [`${dir}/x.yaml\nExecStartPre=/bin/touch /tmp/braid-pwned\n`, `${dir}/x.yaml\rUser=nobody`, `${dir}/tab\t.yaml`]) {
      let err: unknown;
      try {
        run({ path, config });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BraidError);
      expect((err as BraidError).code).toBe(ErrorCode.USAGE);
      expect((err as BraidError).message).toContain('control character');
      expect(existsSync(path)).toBe(false);
    }
  });

  it('special characters in paths keep the directives as they are, with % doubled outside ExecStart too', () => {
    const directives = (unit: string): string[] => unit.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => (l.startsWith('[') ? l : l.slice(0, l.indexOf('='))));
    const plain = directives(serviceUnit({ nodePath: '/usr/bin/node', braidPath: '/opt/braid/bin/braid.js', configPath: '/etc/braid/braid.yaml' }));
    const nasty = serviceUnit({ nodePath: '/usr/bin/node', braidPath: '/opt/b raid;x/bin/braid.js', configPath: '/etc/braid/100%n "$x" \\ ;[Service]=.yaml' });
    expect(directives(nasty)).toEqual(plain);
    const description = nasty.split('\n').find((l) => l.startsWith('Description='))!;
    expect(description).toContain('100%%n');
    expect(description).not.toMatch(/[^%]%[^%]/);
    const documentation = nasty.split('\n').find((l) => l.startsWith('Documentation='))!;
    expect(documentation).toBe('Documentation=file:///opt/b%%20raid;x/README.md');
  });

  it('cannot write: a PERMISSION error that says sudo or --path', () => {
    if (process.getuid?.() === 0) {
      // root writes anywhere: use a path under a regular file, which fails for everyone.
      const file = join(dir, 'not-a-dir');
      execFileSync('touch', [file]);
      const err = (() => {
        try {
          run({ path: join(file, 'braid.service') });
        } catch (e) {
          return e;
        }
      })() as BraidError;
      expect(err.code).toBe(ErrorCode.PERMISSION);
      expect(err.oneLine()).toMatch(/install-service: cannot write .*not-a-dir\/braid\.service.*; fix: .*--path FILE/);
      return;
    }
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    expect(() => run({ path: join(ro, 'braid.service') })).toThrow(/cannot write .*\(EACCES\); fix: run it with sudo, or write elsewhere with --path FILE/);
  });
});
