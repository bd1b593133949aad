// `npm run package`: builds braid_VERSION_ARCH.deb in the repo root with dpkg-deb alone (no tool
// downloaded at build time).
//
// Stages: compile src/ and sim/ to JavaScript (tsc, scripts/package/tsconfig.build.json) into
// the staging tree at /usr/lib/braid -> package.json without tsx, the production node_modules
// (copied, then `npm prune --omit=dev --offline`) -> the built native addon -> profiles/, README
// -> /usr/bin/braid, the package's launcher -> the systemd unit (serviceUnit() of
// src/cli/install-service.ts: the same text `braid install-service` writes on the box) -> example
// config and docs in /usr/share/doc/braid -> DEBIAN/control and the maintainer scripts of
// scripts/package/debian/ -> dpkg-deb --root-owner-group --build.
//
// Layout on the box: /usr/lib/braid mirrors the repo (src/, sim/, profiles/, native/build/Release,
// node_modules/), so every `new URL('../../…', import.meta.url)` in the sources resolves the same.
// Env: BRAID_DEB_OUT to write the .deb elsewhere than the repo root.

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceUnit, DEFAULT_SERVICE_CONFIG } from '../../src/cli/install-service.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const HERE = join(REPO, 'scripts', 'package');
/** Where the package installs; the unit and /usr/bin/braid point here. */
export const PREFIX = '/usr/lib/braid';
export const PACKAGED_UNIT = '/lib/systemd/system/braid.service';
/** Debian's node; `Depends: nodejs (>= 20)` (bookworm ships 18: take trixie's or NodeSource's). */
export const PACKAGED_NODE = '/usr/bin/node';

const log = (s: string): void => void process.stderr.write(`package: ${s}\n`);

function fail(msg: string, fix: string): never {
  process.stderr.write(`package: ${msg}; fix: ${fix}\n`);
  process.exit(1);
}

function run(cmd: string, args: string[], cwd = REPO): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

function removeEmptyDirs(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && !e.isSymbolicLink()) removeEmptyDirs(join(dir, e.name));
  }
  if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
}

function duKiB(dir: string): number {
  return Number(run('du', ['-sk', dir]).split('\t')[0]);
}

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  name: string; version: string; description: string; dependencies: Record<string, string>; [k: string]: unknown;
};
const arch = run('dpkg', ['--print-architecture']).trim();
const debName = `${pkg.name}_${pkg.version}_${arch}`;
const stage = join(REPO, '.build', 'deb', debName);
const lib = join(stage, PREFIX.slice(1));
const outDir = resolve(process.env.BRAID_DEB_OUT ?? REPO);
const debPath = join(outDir, `${debName}.deb`);

const addon = join(REPO, 'native', 'build', 'Release', 'braid_native.node');
if (!existsSync(addon)) fail(`${addon} is not built`, 'run `npm install` (it builds the addon with node-gyp)');

rmSync(stage, { recursive: true, force: true });
mkdirSync(lib, { recursive: true });

log(`compiling src/ and sim/ to ${PREFIX}`);
try {
  run(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(HERE, 'tsconfig.build.json'), '--outDir', lib]);
} catch {
  fail('tsc failed (errors above)', 'fix the type errors, `npx tsc -p scripts/package/tsconfig.build.json --noEmit` shows them');
}

log('production node_modules');
const { tsx: _loader, ...runtimeDeps } = pkg.dependencies;
const stagedPkg = { name: pkg.name, version: pkg.version, description: pkg.description, type: 'module', license: pkg.license, private: true, bin: { braid: 'bin/braid.js' }, engines: pkg.engines, dependencies: runtimeDeps };
writeFileSync(join(lib, 'package.json'), JSON.stringify(stagedPkg, null, 2) + '\n');
copyFileSync(join(REPO, 'package-lock.json'), join(lib, 'package-lock.json'));
cpSync(join(REPO, 'node_modules'), join(lib, 'node_modules'), { recursive: true, verbatimSymlinks: true });
run('npm', ['prune', '--omit=dev', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], lib);
rmSync(join(lib, 'package-lock.json'));
rmSync(join(lib, 'node_modules', '.package-lock.json'), { force: true });
rmSync(join(lib, 'node_modules', '.bin'), { recursive: true, force: true });
removeEmptyDirs(join(lib, 'node_modules'));
for (const banned of ['tsx', 'typescript', 'esbuild', 'vitest']) {
  if (existsSync(join(lib, 'node_modules', banned))) fail(`node_modules/${banned} is still in the package after pruning`, 'check package.json dependencies');
}

log('native addon, profiles, launcher');
mkdirSync(join(lib, 'native', 'build', 'Release'), { recursive: true });
copyFileSync(addon, join(lib, 'native', 'build', 'Release', 'braid_native.node'));
cpSync(join(REPO, 'profiles'), join(lib, 'profiles'), { recursive: true });
copyFileSync(join(REPO, 'README.md'), join(lib, 'README.md'));
mkdirSync(join(lib, 'bin'));
copyFileSync(join(HERE, 'braid.js'), join(lib, 'bin', 'braid.js'));
chmodSync(join(lib, 'bin', 'braid.js'), 0o755);
mkdirSync(join(stage, 'usr', 'bin'), { recursive: true });
symlinkSync(`../lib/braid/bin/braid.js`, join(stage, 'usr', 'bin', 'braid'));

log('systemd unit (the text `braid install-service` writes)');
const unitFile = join(stage, PACKAGED_UNIT.slice(1));
mkdirSync(join(unitFile, '..'), { recursive: true });
writeFileSync(unitFile, serviceUnit({ nodePath: PACKAGED_NODE, braidPath: `${PREFIX}/bin/braid.js`, configPath: DEFAULT_SERVICE_CONFIG }), { mode: 0o644 });

const doc = join(stage, 'usr', 'share', 'doc', 'braid');
mkdirSync(join(doc, 'examples'), { recursive: true });
copyFileSync(join(REPO, 'profiles', 'examples', 'site-a.yaml'), join(doc, 'examples', 'braid.yaml'));
copyFileSync(join(REPO, 'README.md'), join(doc, 'README.md'));
copyFileSync(join(REPO, 'docs', 'status-schema.json'), join(doc, 'status-schema.json'));
writeFileSync(join(doc, 'copyright'), `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: braid\nFiles: *\nLicense: ${String(pkg.license)}\n`);

log('control and maintainer scripts');
const debian = join(stage, 'DEBIAN');
mkdirSync(debian);
for (const script of ['postinst', 'prerm', 'postrm']) {
  copyFileSync(join(HERE, 'debian', script), join(debian, script));
  chmodSync(join(debian, script), 0o755);
}
const control = [
  `Package: ${pkg.name}`,
  `Version: ${pkg.version}`,
  `Architecture: ${arch}`,
  'Maintainer: Braid developers <braid@localhost>',
  `Installed-Size: ${duKiB(stage)}`,
  // The addon is N-API (NAPI_VERSION 8) against glibc; `braid up` runs `ip` for addresses and routes.
  'Depends: nodejs (>= 20), libc6, iproute2',
  'Section: net',
  'Priority: optional',
  `Description: ${pkg.description}`,
  ' Braid carries a branch site\'s IP traffic over all of its WAN links to the peer edge:',
  ' encrypted (Noise IK), steered per traffic class, with Reed-Solomon FEC.',
  ' The service is installed but not enabled: write /etc/braid/braid.yaml first',
  ' (example in /usr/share/doc/braid/examples/), then systemctl enable --now braid.',
  '',
].join('\n');
writeFileSync(join(debian, 'control'), control);
// dpkg-deb wants sane modes: directories 0755 (tsc and cp keep the umask's).
run('find', [stage, '-type', 'd', '-exec', 'chmod', '0755', '{}', '+']);
run('chmod', ['-R', 'go-w,a+rX', stage]);

mkdirSync(outDir, { recursive: true });
run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, debPath]);
rmSync(join(REPO, '.build', 'deb'), { recursive: true, force: true });
log(`wrote ${debPath} (${Math.round(statSync(debPath).size / 1024)} KiB)`);
process.stdout.write(`${debPath}\n`);
