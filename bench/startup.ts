/**
 * Startup: wall time of `braid --help`, from the Debian package (compiled JavaScript, no loader)
 * and from the clone (node bin/braid.js: TypeScript through tsx), median of 20 runs each, with
 * `node -e 0` as the floor. The runs interleave (package, clone, node, package, ...) so load on a
 * shared machine falls on all three alike; each runs from a directory outside the repo.
 *
 * The package: /usr/bin/braid when the braid package is installed, else the .deb named by
 * $BRAID_DEB, else braid_*.deb in the repo root, else one built now with `npm run package`; a
 * .deb is unpacked with dpkg-deb -x into a scratch directory (no root needed).
 * Figures: startup-help-package and startup-help-clone (ms), peers node-e0 and the other route;
 * startup-help-package-over-node: the package's median minus node's (what braid adds, steadier under load).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const RUNS = 20;
const WARMUP = 2;
const scratch = mkdtempSync(join(tmpdir(), 'braid-bench-startup-'));

function packagedBraid(): { cmd: string[]; from: string } {
  const installed = spawnSync('dpkg-query', ['-W', '-f=${Status} ${Version}', 'braid'], { encoding: 'utf8' }).stdout ?? '';
  if (installed.includes('install ok installed') && existsSync('/usr/bin/braid')) return { cmd: ['/usr/bin/braid'], from: `installed package ${installed.split(' ').pop()}` };
  let deb = process.env['BRAID_DEB'];
  if (!deb) {
    const built = readdirSync(REPO).filter((f) => /^braid_.*\.deb$/.test(f)).sort();
    deb = built.length ? join(REPO, built[built.length - 1]!) : undefined;
  }
  if (!deb) {
    process.stderr.write('startup: no braid package installed or built: running npm run package\n');
    execFileSync('npm', ['run', 'package', '--silent'], { cwd: REPO, env: { ...process.env, BRAID_DEB_OUT: scratch }, stdio: ['ignore', 'ignore', 'inherit'] });
    deb = join(scratch, readdirSync(scratch).find((f) => f.endsWith('.deb'))!);
  }
  const root = join(scratch, 'root');
  execFileSync('dpkg-deb', ['-x', deb, root]);
  return { cmd: [join(root, 'usr', 'lib', 'braid', 'bin', 'braid.js')], from: `${deb.split('/').pop()} unpacked with dpkg-deb -x` };
}

function once(cmd: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

try {
  const pkg = packagedBraid();
  const routes: Record<string, string[]> = {
    package: [...pkg.cmd, '--help'],
    clone: [process.execPath, join(REPO, 'bin', 'braid.js'), '--help'],
    'node-e0': [process.execPath, '-e', '0'],
  };
  const times: Record<string, number[]> = { package: [], clone: [], 'node-e0': [] };
  for (let i = 0; i < WARMUP + RUNS; i++) {
    for (const [name, cmd] of Object.entries(routes)) {
      const ms = once(cmd);
      if (i >= WARMUP) times[name]!.push(ms);
    }
  }
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.round(median(v) * 10) / 10])) as Record<string, number>;
  const range = (k: string): string => `${Math.min(...times[k]!).toFixed(0)}-${Math.max(...times[k]!).toFixed(0)}`;
  process.stderr.write(`startup: braid --help median of ${RUNS}: package ${med['package']} ms, clone ${med['clone']} ms, node -e 0 ${med['node-e0']} ms (package: ${pkg.from})\n`);

  const notesFile = process.env['BENCH_NOTES_FILE'];
  if (notesFile) {
    writeFileSync(
      notesFile,
      [
        `\`braid --help\` wall time, median of ${RUNS} runs after ${WARMUP} warm-up runs, interleaved, from a directory outside the repo`,
        `(${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0]!.toFixed(2)} at the end; node ${process.version}; package: ${pkg.from}).`,
        'The package runs compiled JavaScript and loads only the CLI table for --help (each verb imports its modules when run);',
        'the clone compiles TypeScript through tsx at every start. Target: under 150 ms from the package.',
        '',
        '| route | median ms | min-max ms |',
        '| --- | --- | --- |',
        `| package (\`${pkg.cmd[0]} --help\`) | ${med['package']} | ${range('package')} |`,
        `| clone (\`node bin/braid.js --help\`) | ${med['clone']} | ${range('clone')} |`,
        `| \`node -e 0\` (the floor) | ${med['node-e0']} | ${range('node-e0')} |`,
        '',
        `What braid adds to node's own start: package ${(med['package']! - med['node-e0']!).toFixed(1)} ms, clone ${(med['clone']! - med['node-e0']!).toFixed(1)} ms.`,
        '',
      ].join('\n'),
    );
  }
  console.log(JSON.stringify({ bench: 'startup-help-package', value: med['package'], unit: 'ms', peers: { clone: med['clone'], 'node-e0': med['node-e0'] } }));
  // Under load every start slows down; what braid adds to node's own start is the steadier figure.
  console.log(JSON.stringify({ bench: 'startup-help-package-over-node', value: Math.round((med['package']! - med['node-e0']!) * 10) / 10, unit: 'ms', peers: { clone: Math.round((med['clone']! - med['node-e0']!) * 10) / 10 } }));
  console.log(JSON.stringify({ bench: 'startup-help-clone', value: med['clone'], unit: 'ms', peers: { package: med['package'], 'node-e0': med['node-e0'] } }));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
