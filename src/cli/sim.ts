/**
 * `braid sim`: rehearse failures before they happen (DESIGN.md "Simulator").
 *
 *   braid sim run SCENARIO [--virtual|--real] [--seed N] [--json] [--tag T] [--backend tc|userspace]
 *   braid sim vopr [--seed N] [--runs N] [--long] [--json]
 *   braid sim list
 *
 * SCENARIO is a shipped scenario's name (profiles/scenarios/NAME.yaml) or a path to a YAML file.
 * --virtual (the default) runs two core edges in virtual time, in-process, in about a hundredth
 * of the scenario's duration; --real (root) runs two `braid up` processes in network namespaces
 * with real traffic and real time. Exit codes: 0 every expectation passed (vopr: every seed),
 * 1 an expectation or invariant failed or the run broke, 2 usage or scenario error.
 * Reports go to stdout (text, or one JSON object with --json); progress goes to stderr.
 */
import { randomInt } from 'node:crypto';
import { BraidError, ErrorCode, isBraidError } from '../core/errors.ts';

export interface SimOptions {
  virtual?: boolean;
  real?: boolean;
  seed?: string;
  runs?: string;
  long?: boolean;
  json?: boolean;
  tag?: string;
  backend?: string;
}

export const SIM_USAGE = [
  'braid sim run SCENARIO [--virtual|--real] [--seed N] [--json] [--tag T] [--backend tc|userspace]',
  '       braid sim vopr [--seed N] [--runs N] [--long] [--json]',
  '       braid sim list',
].join('\n');

function usage(message: string): BraidError {
  return new BraidError(ErrorCode.USAGE, `sim: ${message}`, { fix: `usage: ${SIM_USAGE.replace(/\n\s+/g, ' | ')}` });
}

function intOption(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new BraidError(ErrorCode.USAGE, `sim: --${name} ${raw}: expected a whole number from ${min} to ${max}`, { fix: `e.g. --${name} ${Math.max(min, 1)}` });
  }
  return n;
}

const err = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

export async function runSim(opts: SimOptions, positionals: string[]): Promise<number> {
  const [sub, ...rest] = positionals;
  if (sub === undefined) throw usage('missing subcommand (run, vopr or list)');
  if (sub === 'list') return simList(rest);
  if (sub === 'run') return simRun(opts, rest);
  if (sub === 'vopr') return simVopr(opts, rest);
  throw usage(`unknown subcommand "${sub}"`);
}

async function simList(rest: string[]): Promise<number> {
  if (rest.length > 0) throw usage(`list takes no arguments, got "${rest[0]}"`);
  const { listScenarios, loadScenario } = await import('../../sim/scenario/schema.ts');
  for (const name of listScenarios()) {
    const s = loadScenario(name);
    process.stdout.write(`${name.padEnd(20)} ${(s.durationMs / 1000).toFixed(0).padStart(4)} s  ${s.description}\n`);
  }
  return 0;
}

async function simRun(opts: SimOptions, rest: string[]): Promise<number> {
  if (rest.length !== 1) throw usage(rest.length === 0 ? 'run needs a scenario (a name from `braid sim list`, or a YAML file)' : `run takes one scenario, got ${rest.length}`);
  if (opts.virtual && opts.real) throw usage('--virtual and --real exclude each other');
  if (opts.runs !== undefined || opts.long) throw usage('--runs and --long are for vopr');
  if (opts.real !== true && (opts.tag !== undefined || opts.backend !== undefined)) throw usage('--tag and --backend are for --real runs');
  if (opts.backend !== undefined && opts.backend !== 'tc' && opts.backend !== 'userspace') throw usage(`--backend ${opts.backend}: expected tc or userspace`);
  const seed = intOption(opts.seed, 'seed', 0, 2 ** 32 - 1);
  const { loadScenario } = await import('../../sim/scenario/schema.ts');
  const { reportJson, reportText } = await import('../../sim/scenario/report.ts');
  const scenario = loadScenario(rest[0]!);
  let report;
  if (opts.real && scenario.sites) throw usage(`${scenario.name} has sites (a hub and branches): real-time runs take two-site scenarios for now; run it in virtual time`);
  if (opts.real) {
    const { runReal } = await import('../io/realtime/run-real.ts');
    try {
      report = await runReal(scenario, {
        ...(seed === undefined ? {} : { seed }),
        ...(opts.tag === undefined ? {} : { tag: opts.tag }),
        ...(opts.backend === 'tc' || opts.backend === 'userspace' ? { backend: opts.backend } : {}),
        onProgress: (line) => err(`braid sim: ${line}`),
      });
    } catch (e) {
      if (isBraidError(e)) throw e;
      err(`braid: sim run --real ${scenario.name}: ${(e as Error).message.split('\n')[0]}`);
      return 1;
    }
  } else {
    const { runVirtual } = await import('../../sim/scenario/run-virtual.ts');
    const { nativeAeadFactory } = await import('../io/native-aead.ts');
    const aead = nativeAeadFactory()?.factory;
    const started = Date.now();
    report = runVirtual(scenario, {
      ...(seed === undefined ? {} : { seed }),
      ...(aead ? { aead } : {}),
      onProgress: (doneMs, totalMs) => {
        if (Date.now() - started > 2000 && doneMs < totalMs) err(`braid sim: ${scenario.name}: ${(doneMs / 1000).toFixed(0)} of ${(totalMs / 1000).toFixed(0)} s simulated`);
      },
    }).report;
  }
  process.stdout.write(opts.json ? `${JSON.stringify(reportJson(report))}\n` : reportText(report));
  return report.pass ? 0 : 1;
}

async function simVopr(opts: SimOptions, rest: string[]): Promise<number> {
  if (rest.length > 0) throw usage(`vopr takes no positional arguments, got "${rest[0]}"`);
  if (opts.virtual || opts.real || opts.tag !== undefined || opts.backend !== undefined) throw usage('vopr runs in virtual time only; it takes --seed and --runs');
  const seedGiven = intOption(opts.seed, 'seed', 0, 2 ** 32 - 1);
  const runs = intOption(opts.runs, 'runs', 1, 1_000_000) ?? (seedGiven === undefined ? 100 : 1);
  const seed = seedGiven ?? randomInt(0, 2 ** 31);
  // Restarts (the hub's too) and the adversary are on in both forms; --long runs 250 s of faults
  // per seed (two rekeys, each raced by a restart).
  const { DEFAULT_VOPR_CONFIG, LONG_VOPR_CONFIG, formatFailure, vopr } = await import('../../sim/vopr.ts');
  const base = opts.long ? LONG_VOPR_CONFIG : DEFAULT_VOPR_CONFIG;
  const { nativeAeadFactory } = await import('../io/native-aead.ts');
  const aead = nativeAeadFactory()?.factory;
  err(`braid sim vopr: seeds ${seed}..${seed + runs - 1}${opts.long ? ` (long form: ${(base.faultsMs / 1000).toFixed(0)} s of faults per seed)` : ''}, restarts and the adversary on`);
  let lastProgress = Date.now();
  const summary = vopr({
    seed,
    runs,
    config: { ...base, ...(aead ? { aead } : {}) },
    onRun: (r, i) => {
      if (!r.ok) err(formatFailure(r));
      if (Date.now() - lastProgress > 2000) {
        lastProgress = Date.now();
        err(`braid sim vopr: ${i + 1}/${runs} seeds run`);
      }
    },
  });
  const secs = summary.wallMs / 1000;
  const line = `VOPR: ${summary.passed}/${summary.runs} seeds passed (${seed}..${seed + runs - 1}) in ${secs.toFixed(1)} s (${((summary.wallMs / runs) | 0)} ms/seed), ${summary.sent} packets sent, ${summary.delivered} delivered`;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ firstSeed: seed, runs, passed: summary.passed, wallMs: Math.round(summary.wallMs), sent: summary.sent, delivered: summary.delivered, failures: summary.failures.map((f) => ({ seed: f.seed, violations: f.violations, world: f.description, reproduce: `braid sim vopr --seed ${f.seed}${f.long ? ' --long' : ''}` })) })}\n`);
  } else {
    process.stdout.write(`${line}\n`);
    for (const f of summary.failures) process.stdout.write(`${formatFailure(f)}\n`);
  }
  return summary.failures.length === 0 ? 0 : 1;
}
