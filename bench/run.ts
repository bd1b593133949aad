// Benchmark runner: `npm run bench -- [NAME...]`.
//
// Stages: pick benchmarks (the named ones, or every bench/NAME.ts except this file and files
// starting with `_`) -> run each as its own process, `node bin/run-ts.js bench/NAME.ts`, one at a
// time, bounded by BENCH_TIMEOUT_S -> collect the JSON figures it prints as its last stdout lines
// (DESIGN.md section 6) -> rewrite that benchmark's section of docs/BENCHMARKS.md (figures table,
// date, machine, and the markdown notes the benchmark wrote to $BENCH_NOTES_FILE), leaving the
// rest of the file alone -> summary; exit 1 if any benchmark was missing, failed, timed out or
// printed no figures (its section is then left as it was).
//
// Output: the benchmarks' own output is passed through to stderr; stdout gets only the collected
// figures, one JSON object per line, so `npm run bench --silent -- overlay > figures.jsonl` works.
//
// Env: BENCH_TIMEOUT_S per benchmark (default 600); BENCH_DOCS to write another file than
// docs/BENCHMARKS.md (e.g. a scratch run that must not touch the committed one).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BENCH_DIR = join(REPO, 'bench');
const RUN_TS = join(REPO, 'bin', 'run-ts.js');
const DOCS = resolve(REPO, process.env.BENCH_DOCS ?? 'docs/BENCHMARKS.md');
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 600);
/** After SIGTERM on timeout, how long a benchmark gets to clean up (namespaces, processes). */
const KILL_GRACE_MS = 30_000;
const NAME_PATTERN = /^[a-z0-9][a-z0-9-]*$/;

export interface Figure {
  bench: string;
  value: number;
  unit: string;
  peers?: Record<string, number>;
}

interface Outcome {
  name: string;
  ok: boolean;
  /** Why it failed (missing, exit code, timeout, no figures). */
  reason?: string;
  figures: Figure[];
  notes: string;
  seconds: number;
}

const err = (s: string): void => void process.stderr.write(`${s}\n`);

function usage(): string {
  return [
    'usage: npm run bench -- [NAME...]',
    '  runs bench/NAME.ts for each NAME (default: every benchmark in bench/), prints the figures',
    '  as JSON lines on stdout and rewrites each benchmark\'s section of docs/BENCHMARKS.md',
    `  available: ${discover().join(', ') || '(none)'}`,
    '  env: BENCH_TIMEOUT_S (per benchmark, default 600), BENCH_DOCS (output file)',
  ].join('\n');
}

/** Every benchmark file: bench/*.ts except run.ts and scratch files starting with `_`. */
export function discover(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.ts') && !f.startsWith('_') && !f.startsWith('.') && f !== 'run.ts' && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** The figures a benchmark printed: the trailing run of JSON-object lines of its stdout. */
export function parseFigures(stdout: string): { figures: Figure[]; bad: string[] } {
  const lines = stdout.split('\n').map((l) => l.trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const figures: Figure[] = [];
  const bad: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.startsWith('{')) break;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      break;
    }
    const f = obj as Partial<Figure>;
    const peersOk =
      f.peers === undefined ||
      (typeof f.peers === 'object' && f.peers !== null && Object.values(f.peers).every((v) => typeof v === 'number' && Number.isFinite(v)));
    if (typeof f.bench !== 'string' || typeof f.value !== 'number' || !Number.isFinite(f.value) || typeof f.unit !== 'string' || !peersOk) {
      bad.push(line);
      continue;
    }
    figures.unshift({ bench: f.bench, value: f.value, unit: f.unit, ...(f.peers ? { peers: f.peers } : {}) });
  }
  return { figures, bad };
}

function runOne(name: string, onChild: (c: ChildProcess | undefined) => void): Promise<Outcome> {
  const file = join(BENCH_DIR, `${name}.ts`);
  const started = Date.now();
  if (!existsSync(file)) {
    return Promise.resolve({ name, ok: false, reason: `missing: ${relative(REPO, file)} does not exist (have: ${discover().join(', ')})`, figures: [], notes: '', seconds: 0 });
  }
  const tmp = mkdtempSync(join(tmpdir(), 'braid-bench-'));
  const notesFile = join(tmp, 'notes.md');
  return new Promise((resolveOutcome) => {
    err(`\n=== bench ${name}: node bin/run-ts.js bench/${name}.ts (limit ${TIMEOUT_S} s)`);
    const child = spawn(process.execPath, [RUN_TS, relative(REPO, file)], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BENCH_NOTES_FILE: notesFile },
    });
    onChild(child);
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      process.stderr.write(d);
    });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const limit = setTimeout(() => {
      timedOut = true;
      err(`=== bench ${name}: over ${TIMEOUT_S} s, sending SIGTERM (it cleans up), SIGKILL in ${KILL_GRACE_MS / 1000} s`);
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    }, TIMEOUT_S * 1000);
    const finish = (reason: string | undefined): void => {
      clearTimeout(limit);
      if (killTimer) clearTimeout(killTimer);
      onChild(undefined);
      const { figures, bad } = parseFigures(stdout);
      let notes = '';
      try {
        notes = readFileSync(notesFile, 'utf8').trim();
      } catch {
        // the benchmark wrote no notes: fine
      }
      rmSync(tmp, { recursive: true, force: true });
      const seconds = (Date.now() - started) / 1000;
      for (const b of bad) err(`=== bench ${name}: ignored a figure line that is not {bench, value, unit, peers?}: ${b}`);
      if (reason === undefined && figures.length === 0) reason = 'printed no figures (expected JSON lines {"bench","value","unit"} as its last stdout lines)';
      resolveOutcome({ name, ok: reason === undefined, reason, figures, notes, seconds });
    };
    child.once('error', (e) => finish(`could not start: ${e.message}`));
    child.once('close', (code, signal) => {
      if (timedOut) finish(`timed out after ${TIMEOUT_S} s (BENCH_TIMEOUT_S)`);
      else if (signal) finish(`killed by ${signal}`);
      else if (code === 130 || code === 143) finish(`exited with code ${code} (${code === 130 ? 'interrupted' : 'terminated'}; it cleaned up)`);
      else if (code !== 0) finish(`exited with code ${code}`);
      else finish(undefined);
    });
  });
}

// ---- docs/BENCHMARKS.md ---------------------------------------------------------------------

export interface Machine {
  nproc: number;
  cpuModel: string;
  kernel: string;
  node: string;
  /** Short commit id, with "+ uncommitted changes" when the tree is dirty; '' outside git. */
  commit: string;
}

export function machine(): Machine {
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8', timeout: 5000 }).trim()) || nproc;
  } catch {
    // nproc missing: os.cpus() is close enough
  }
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1]!.trim();
  } catch {
    // not Linux
  }
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8', timeout: 5000 }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO, encoding: 'utf8', timeout: 5000 }).trim() !== '';
    if (dirty) commit += ' + uncommitted changes';
  } catch {
    // not a git checkout
  }
  return { nproc, cpuModel, kernel: release(), node: process.version, commit };
}

const beginMarker = (name: string): string => `<!-- bench:${name}:begin -->`;
const endMarker = (name: string): string => `<!-- bench:${name}:end -->`;

const DOCS_HEADER = `# Benchmarks

Written by \`npm run bench -- [NAME...]\` (bench/run.ts): one section per benchmark, between
\`<!-- bench:NAME:begin -->\` and \`<!-- bench:NAME:end -->\` markers. The runner rewrites a section when
that benchmark succeeds and leaves everything else in this file alone: write prose outside the markers.
`;

function cell(v: number | undefined): string {
  if (v === undefined) return '';
  return Number.isInteger(v) ? v.toLocaleString('en-US') : String(v);
}

export function sectionMarkdown(o: Pick<Outcome, 'name' | 'figures' | 'notes' | 'seconds'>, m: Machine, when: Date): string {
  const peers: string[] = [];
  for (const f of o.figures) for (const p of Object.keys(f.peers ?? {})) if (!peers.includes(p)) peers.push(p);
  const L: string[] = [];
  L.push(beginMarker(o.name));
  L.push(`## ${o.name}`);
  L.push('');
  L.push(
    `Last run ${when.toISOString().slice(0, 16).replace('T', ' ')} UTC, \`npm run bench -- ${o.name}\` (bench/${o.name}.ts, ${Math.round(o.seconds)} s), on ` +
      `${m.nproc} CPUs (\`nproc\`), ${m.cpuModel}, Linux ${m.kernel}, Node ${m.node}${m.commit ? `; code at ${m.commit}` : ''}.`,
  );
  L.push('');
  const head = ['figure', 'value', 'unit', ...peers];
  L.push(`| ${head.join(' | ')} |`);
  L.push(`| --- | ---: | --- |${peers.map(() => ' ---: |').join('')}`);
  for (const f of o.figures) {
    L.push(`| ${[`\`${f.bench}\``, cell(f.value), f.unit, ...peers.map((p) => cell(f.peers?.[p]))].join(' | ')} |`);
  }
  if (o.notes !== '') {
    L.push('');
    L.push(o.notes);
  }
  L.push(endMarker(o.name));
  return L.join('\n');
}

/** Replaces (or appends) the section of `name` in the document text. */
export function replaceSection(doc: string, name: string, section: string): string {
  const begin = doc.indexOf(beginMarker(name));
  const end = begin >= 0 ? doc.indexOf(endMarker(name), begin) : -1;
  if (begin >= 0 && end >= 0) return doc.slice(0, begin) + section + doc.slice(end + endMarker(name).length);
  if (begin >= 0) throw new Error(`${relative(REPO, DOCS)}: section ${name} has a begin marker but no end marker; fix the file by hand`);
  return `${doc.replace(/\s*$/, '')}\n\n${section}\n`;
}

function updateDocs(outcomes: Outcome[]): string[] {
  const ok = outcomes.filter((o) => o.ok);
  if (ok.length === 0) return [];
  const m = machine();
  const now = new Date();
  let doc = existsSync(DOCS) ? readFileSync(DOCS, 'utf8') : DOCS_HEADER;
  for (const o of ok) doc = replaceSection(doc, o.name, sectionMarkdown(o, m, now));
  const tmp = `${DOCS}.tmp-${process.pid}`;
  writeFileSync(tmp, doc.endsWith('\n') ? doc : `${doc}\n`);
  renameSync(tmp, DOCS);
  return ok.map((o) => o.name);
}

// ---- main -------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const flags = argv.filter((a) => a.startsWith('-'));
  if (flags.length > 0) {
    err(`bench: unknown option ${flags[0]}\n${usage()}`);
    return 2;
  }
  const bad = argv.filter((a) => !NAME_PATTERN.test(a));
  if (bad.length > 0) {
    err(`bench: "${bad[0]}" is not a benchmark name (lowercase letters, digits, dashes: bench/NAME.ts)\n${usage()}`);
    return 2;
  }
  const names = argv.length > 0 ? [...new Set(argv)] : discover();
  if (names.length === 0) {
    err('bench: no benchmarks in bench/');
    return 1;
  }
  let current: ChildProcess | undefined;
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = true;
    err(`bench: ${sig}: stopping the current benchmark (it cleans up) and skipping the rest`);
    current?.kill(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const outcomes: Outcome[] = [];
  for (const name of names) {
    if (interrupted) {
      outcomes.push({ name, ok: false, reason: 'not run (interrupted)', figures: [], notes: '', seconds: 0 });
      continue;
    }
    const o = await runOne(name, (c) => (current = c));
    if (interrupted && o.ok) {
      o.ok = false;
      o.reason = 'interrupted';
    }
    outcomes.push(o);
    err(o.ok ? `=== bench ${name}: ok, ${o.figures.length} figures in ${o.seconds.toFixed(0)} s` : `=== bench ${name}: FAILED: ${o.reason}`);
  }
  let written: string[] = [];
  try {
    written = updateDocs(outcomes);
  } catch (e) {
    err(`bench: could not update ${relative(REPO, DOCS)}: ${(e as Error).message}`);
    outcomes.push({ name: 'docs', ok: false, reason: (e as Error).message, figures: [], notes: '', seconds: 0 });
  }
  err('\n=== summary');
  for (const o of outcomes) {
    err(o.ok ? `  ok      ${o.name} (${o.figures.length} figures, ${o.seconds.toFixed(0)} s)` : `  FAILED  ${o.name}: ${o.reason}`);
    for (const f of o.figures) {
      const peers = f.peers ? `  (${Object.entries(f.peers).map(([k, v]) => `${k} ${v}`).join(', ')})` : '';
      err(`            ${f.bench} ${f.value} ${f.unit}${peers}`);
    }
  }
  if (written.length > 0) err(`  ${relative(REPO, DOCS)}: rewrote section(s) ${written.join(', ')}`);
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length > 0) err(`  ${failed.length} benchmark(s) failed; their sections were left as they were`);
  for (const o of outcomes) if (o.ok) for (const f of o.figures) process.stdout.write(`${JSON.stringify(f)}\n`);
  return failed.length > 0 ? 1 : 0;
}

// Runs only as the entry point, so that tests can import the helpers above.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
