/**
 * Scenario files (profiles/scenarios/*.yaml): links, a traffic mix, an impairment timeline in
 * netem's own syntax, class-policy overrides and expectations, validated with zod and resolved
 * into a Scenario both runners (virtual time, real time) execute the same way.
 *
 *   name: mpls-blackout
 *   description: MPLS goes dark for 10 s
 *   durationS: 30
 *   links:
 *     - { name: mpls, profile: mpls }                      # profiles/links/mpls.yaml
 *     - { name: inet, netem: { up: "delay 10ms", down: "delay 10ms" }, costTier: overflow }
 *   traffic:
 *     - { class: voice, kind: voice, calls: 4 }            # 200 B at 50 pps each way per call
 *     - { class: video, kind: cbr, sizeBytes: 1000, pps: 100, flows: 2 }
 *     - { class: bulk, kind: bulk, flows: 4, rateMbps: 4 } # real time: iperf3 TCP
 *   timeline:
 *     - { at: 10s, link: mpls, set: "loss 100%" }          # replaces the spec, like `tc qdisc change`
 *     - { at: 15s, link: inet, add: "loss 2%", direction: up }  # merged onto the current spec
 *     - { at: 20s, link: mpls, restore: true }             # back to the link's own spec
 *   policies: { voice: { strategy: duplicate } }
 *   expect: ["voice.max_gap_ms < 400", "bulk.delivered_ratio > 0.99"]
 *
 * Directions: site a is the branch, site b the hub. "up" is what the branch sends (a -> b, the
 * World's "ab"), "down" what it receives (b -> a, "ba"), as in link profiles.
 *
 * Every problem is a one-line ScenarioError naming the file, the field and the fix.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';
import { CLASS_NAMES, DEFAULT_POLICIES, type ClassName, type ClassPolicy, type CostTier } from '../../src/core/steer/classes.ts';
import { findLinkProfile, LINK_PROFILES_DIR } from '../netem/profiles.ts';
import { DEFAULT_LIMIT_PACKETS, NetemSpecError, parseNetemSpec, type NetemSpec } from '../netem/spec.ts';
import { parseExpectation, type Expectation } from './expect.ts';

export const SCENARIOS_DIR = fileURLToPath(new URL('../../profiles/scenarios/', import.meta.url));

/** Limits on everything a scenario can ask for, so a typo cannot ask for a day of 1 Mpps. */
export const SCENARIO_LIMITS = {
  durationS: 3600,
  links: 8,
  trafficItems: 32,
  flowsPerItem: 64,
  ppsPerFlow: 20_000,
  timelineEntries: 500,
  expectations: 100,
  rateMbps: 1000,
} as const;

export type TrafficKind = 'voice' | 'cbr' | 'bulk';
/** up: site a -> b only; down: b -> a only; both: each way. */
export type TrafficDirection = 'up' | 'down' | 'both';
export type LinkDirection = 'up' | 'down' | 'both';

/** The inner DSCP each class's generated traffic carries (RFC 4594 figure 3). */
export const CLASS_DSCP: Record<ClassName, number> = {
  control: 48,
  voice: 46,
  video: 34,
  signaling: 24,
  business: 18,
  default: 0,
  bulk: 10,
};

export interface ScenarioLink {
  name: string;
  /** The link profile it came from, if any. */
  profile: string | undefined;
  costTier: CostTier;
  bandwidthBps: { up: number; down: number } | undefined;
  up: NetemSpec;
  down: NetemSpec;
  upText: string;
  downText: string;
}

export interface ScenarioTraffic {
  /** Position in the scenario's traffic list. */
  index: number;
  className: ClassName;
  classId: number;
  dscp: number;
  kind: TrafficKind;
  direction: TrafficDirection;
  /** Flows per direction (voice: calls). */
  flows: number;
  /** Inner IP packet size. */
  sizeBytes: number;
  /** Packets per second per flow (bulk: derived from rateMbps). */
  pps: number;
  /** Bulk only: total rate per direction. */
  rateMbps: number | undefined;
  startMs: number;
  stopMs: number;
}

export interface ScenarioStep {
  index: number;
  atMs: number;
  link: string;
  direction: LinkDirection;
  action: 'set' | 'add' | 'restore';
  /** The spec as written (empty for restore). */
  text: string;
  /** The full spec of each affected direction after this step (what gets installed). */
  result: { up?: NetemSpec; down?: NetemSpec };
  /** set/add are faults (detection and reroute are measured); restore is a recovery. */
  kind: 'fault' | 'restore';
}

export interface Scenario {
  name: string;
  description: string;
  durationMs: number;
  seed: number | undefined;
  links: ScenarioLink[];
  traffic: ScenarioTraffic[];
  timeline: ScenarioStep[];
  /** Full class policies (defaults with the scenario's overrides applied). */
  policies: ClassPolicy[];
  /** Classes whose policy the scenario overrides. */
  overriddenClasses: ClassName[];
  expectations: Expectation[];
  /** File (or label) it came from. */
  source: string;
}

export class ScenarioError extends BraidError {
  constructor(source: string, field: string | undefined, message: string, fix?: string) {
    super(ErrorCode.SCENARIO_INVALID, `scenario ${source}: ${field === undefined ? '' : `${field}: `}${message}`, {
      ...(fix === undefined ? {} : { fix }),
      ...(field === undefined ? {} : { field }),
    });
    this.name = 'ScenarioError';
  }
}

// ---- schema ---------------------------------------------------------------------------------

const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
const LINK_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** "10s", "1500ms", "1.5s", "2m", or a number of seconds. */
const duration = z.union([z.number({ error: 'expected a time like 10s or 1500ms' }), z.string({ error: 'expected a time like 10s or 1500ms' })]);

const netemText = z.string({ error: 'expected a netem spec in quotes, like "delay 20ms 2ms loss 1%"' });

const LinkSchema = z.strictObject({
  name: z.string({ error: 'expected a link name like "mpls"' }).regex(LINK_NAME_RE, { error: 'expected a short lowercase name like "mpls" (a-z, 0-9, - and _)' }),
  profile: z.string({ error: 'expected a link profile name like "mpls" or "lte"' }).optional(),
  netem: z
    .strictObject({ up: netemText, down: netemText }, { error: 'expected { up: "<netem spec>", down: "<netem spec>" }' })
    .optional(),
  costTier: z.enum(['primary', 'overflow', 'backup'], { error: 'expected primary, overflow or backup' }).optional(),
  bandwidthBps: z
    .strictObject({ up: z.number().positive(), down: z.number().positive() }, { error: 'expected { up: BITS_PER_S, down: BITS_PER_S }' })
    .optional(),
});

const classEnum = z.enum(CLASS_NAMES, { error: `expected a class: ${CLASS_NAMES.join(', ')}` });

const TrafficSchema = z.strictObject({
  class: classEnum,
  kind: z.enum(['voice', 'cbr', 'bulk'], { error: 'expected voice, cbr or bulk' }),
  calls: z.number().int({ error: 'expected a whole number of calls' }).min(1).max(SCENARIO_LIMITS.flowsPerItem).optional(),
  flows: z.number().int({ error: 'expected a whole number of flows' }).min(1).max(SCENARIO_LIMITS.flowsPerItem).optional(),
  sizeBytes: z.number().int({ error: 'expected a packet size in bytes' }).min(60, { error: 'expected at least 60 bytes' }).max(1400, { error: 'expected at most 1400 bytes (the TUN MTU is 1420)' }).optional(),
  pps: z.number().positive({ error: 'expected packets per second above 0' }).max(SCENARIO_LIMITS.ppsPerFlow).optional(),
  rateMbps: z.number().positive({ error: 'expected Mbit/s above 0' }).max(SCENARIO_LIMITS.rateMbps).optional(),
  direction: z.enum(['up', 'down', 'both'], { error: 'expected up (a -> b), down (b -> a) or both' }).optional(),
  startS: z.number().min(0).optional(),
  stopS: z.number().positive().optional(),
});

const StepSchema = z.strictObject({
  at: duration,
  link: z.string({ error: 'expected the name of a link of this scenario' }),
  set: netemText.optional(),
  add: netemText.optional(),
  restore: z.literal(true, { error: 'expected restore: true' }).optional(),
  direction: z.enum(['up', 'down', 'both'], { error: 'expected up, down or both' }).optional(),
});

const PolicySchema = z.strictObject({
  strategy: z.enum(['best', 'balance', 'duplicate'], { error: 'expected best, balance or duplicate' }).optional(),
  sla: z
    .strictObject({
      lossRatio: z.number().min(0).max(1, { error: 'expected a ratio from 0 to 1 (1% is 0.01)' }).optional(),
      rttMs: z.number().positive().optional(),
      jitterMs: z.number().positive().optional(),
    })
    .optional(),
});

const ScenarioSchema = z.strictObject({
  name: z.string({ error: 'expected a name like "mpls-blackout"' }).regex(NAME_RE, { error: 'expected lowercase letters, digits and "-", like "mpls-blackout"' }),
  description: z.string({ error: 'expected a one-line description' }).min(1, { error: 'expected a one-line description' }),
  durationS: z.number({ error: 'expected the run length in seconds' }).positive({ error: 'expected seconds above 0' }).max(SCENARIO_LIMITS.durationS, { error: `expected at most ${SCENARIO_LIMITS.durationS} s` }),
  seed: z.number().int({ error: 'expected a whole-number seed' }).min(0).max(2 ** 32 - 1).optional(),
  links: z.array(LinkSchema, { error: 'expected a list of links' }).min(1, { error: 'expected at least one link' }).max(SCENARIO_LIMITS.links, { error: `expected at most ${SCENARIO_LIMITS.links} links` }),
  traffic: z.array(TrafficSchema, { error: 'expected a list of traffic items' }).min(1, { error: 'expected at least one traffic item' }).max(SCENARIO_LIMITS.trafficItems),
  timeline: z.array(StepSchema, { error: 'expected a list of steps' }).max(SCENARIO_LIMITS.timelineEntries).default([]),
  policies: z.partialRecord(classEnum, PolicySchema, { error: 'expected class names mapped to { strategy, sla }' }).optional(),
  expect: z.array(z.string({ error: 'expected an expectation like "voice.max_gap_ms < 400"' }), { error: 'expected a list of expectations' }).max(SCENARIO_LIMITS.expectations).default([]),
});

const FIELDS = Object.keys(ScenarioSchema.shape).join(', ');

/** The fields allowed in the object at `path`, for "unknown field" messages. */
function fieldsAt(path: readonly PropertyKey[]): string {
  const names = path.filter((p) => typeof p === 'string');
  const keys = (o: { shape: object }): string => Object.keys(o.shape).join(', ');
  if (names.length === 0) return FIELDS;
  switch (names[0]) {
    case 'links':
      return names[1] === 'netem' ? 'up, down' : names[1] === 'bandwidthBps' ? 'up, down' : keys(LinkSchema);
    case 'traffic':
      return keys(TrafficSchema);
    case 'timeline':
      return keys(StepSchema);
    case 'policies':
      return names.length > 2 ? 'lossRatio, rttMs, jitterMs' : keys(PolicySchema);
    default:
      return FIELDS;
  }
}

// ---- loading --------------------------------------------------------------------------------

/** A scenario name (profiles/scenarios/NAME.yaml) or a path to a YAML file. */
export function resolveScenarioPath(nameOrPath: string, dir: string = SCENARIOS_DIR): string {
  if (/[/\\]/.test(nameOrPath) || /\.ya?ml$/.test(nameOrPath)) {
    if (!existsSync(nameOrPath)) {
      throw new ScenarioError(nameOrPath, undefined, 'no such file', 'check the path, or give a shipped scenario by name (braid sim list)');
    }
    return nameOrPath;
  }
  const path = join(dir, `${nameOrPath}.yaml`);
  if (!existsSync(path)) {
    throw new ScenarioError(nameOrPath, undefined, 'no shipped scenario of that name', `use one of ${listScenarios(dir).join(', ')}, or a path to a YAML file`);
  }
  return path;
}

/** Names of the shipped scenarios. */
export function listScenarios(dir: string = SCENARIOS_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => f.replace(/\.ya?ml$/, ''))
    .sort();
}

export function loadScenario(nameOrPath: string, dir: string = SCENARIOS_DIR): Scenario {
  const path = resolveScenarioPath(nameOrPath, dir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError(path, undefined, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'check the path and permissions');
  }
  return parseScenario(text, path);
}

/** Parses and resolves one scenario. `source` names it in errors. */
export function parseScenario(text: string, source: string): Scenario {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    const first = (e instanceof Error ? e.message : String(e)).split('\n')[0]!.replace(/:$/, '');
    throw new ScenarioError(source, undefined, `not valid YAML: ${first}`, 'fix the YAML syntax at that line');
  }
  const result = ScenarioSchema.safeParse(doc);
  if (!result.success) {
    const issue = result.error.issues.find((i) => i.code === 'unrecognized_keys') ?? result.error.issues[0]!;
    const field = fieldPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const key = [field === '(top level)' ? '' : field, issue.keys[0]].filter((p) => p !== '').join('.');
      throw new ScenarioError(source, key, 'unknown field', `remove it or fix its spelling (fields here: ${fieldsAt(issue.path)})`);
    }
    if (issue.path.length === 0) throw new ScenarioError(source, undefined, `expected a mapping with ${FIELDS}`);
    const value = valueAt(doc, issue.path);
    if (value === undefined) throw new ScenarioError(source, field, `missing; ${issue.message}`, `add ${field}`);
    throw new ScenarioError(source, field, `${issue.message}, got ${shortJson(value)}`, `correct ${field}`);
  }
  const s = result.data;
  const stem = basename(source).replace(/\.ya?ml$/, '');
  if (stem !== basename(source) && stem !== s.name) {
    throw new ScenarioError(source, 'name', `"${s.name}" differs from the file name "${stem}"`, 'rename one to match the other');
  }
  const durationMs = s.durationS * 1000;

  // Links
  const links: ScenarioLink[] = [];
  s.links.forEach((l, i) => {
    const field = `links[${i}]`;
    if (links.some((x) => x.name === l.name)) throw new ScenarioError(source, `${field}.name`, `duplicate link name "${l.name}"`, 'give every link a unique name');
    if ((l.profile === undefined) === (l.netem === undefined)) {
      throw new ScenarioError(source, field, 'needs exactly one of profile or netem', 'use profile: mpls (profiles/links) or netem: { up: "...", down: "..." }');
    }
    if (l.profile !== undefined) {
      let p;
      try {
        p = findLinkProfile(l.profile, LINK_PROFILES_DIR);
      } catch (e) {
        throw new ScenarioError(source, `${field}.profile`, e instanceof BraidError ? e.message : String(e), e instanceof BraidError ? e.fix : undefined);
      }
      links.push({ name: l.name, profile: p.name, costTier: l.costTier ?? p.costTier, bandwidthBps: l.bandwidthBps ?? p.bandwidthBps, up: p.up, down: p.down, upText: p.upText, downText: p.downText });
    } else {
      const n = l.netem!;
      links.push({
        name: l.name,
        profile: undefined,
        costTier: l.costTier ?? 'primary',
        bandwidthBps: l.bandwidthBps ?? rateOf(n.up, n.down, source, field),
        up: spec(source, `${field}.netem.up`, n.up),
        down: spec(source, `${field}.netem.down`, n.down),
        upText: n.up,
        downText: n.down,
      });
    }
  });

  // Traffic
  const traffic: ScenarioTraffic[] = s.traffic.map((t, i) => {
    const field = `traffic[${i}]`;
    const classId = CLASS_NAMES.indexOf(t.class);
    const startMs = (t.startS ?? 1) * 1000;
    const stopMs = Math.min((t.stopS ?? s.durationS) * 1000, durationMs);
    if (startMs >= stopMs) throw new ScenarioError(source, `${field}.startS`, `starts at ${startMs / 1000} s, after it stops (${stopMs / 1000} s)`, 'start earlier or raise durationS/stopS');
    const base = { index: i, className: t.class, classId, dscp: CLASS_DSCP[t.class], kind: t.kind, startMs, stopMs };
    const forbid = (key: keyof typeof t, why: string): void => {
      if (t[key] !== undefined) throw new ScenarioError(source, `${field}.${key}`, `not used by kind ${t.kind}`, why);
    };
    if (t.kind === 'voice') {
      forbid('flows', 'voice traffic counts calls: use calls: N');
      forbid('rateMbps', 'voice is 200 B at 50 pps per call; use kind cbr for other rates');
      return { ...base, direction: t.direction ?? 'both', flows: t.calls ?? 1, sizeBytes: t.sizeBytes ?? 200, pps: t.pps ?? 50, rateMbps: undefined };
    }
    forbid('calls', 'calls is for kind voice; use flows: N');
    if (t.kind === 'cbr') {
      forbid('rateMbps', 'cbr is set by sizeBytes and pps');
      if (t.sizeBytes === undefined) throw new ScenarioError(source, `${field}.sizeBytes`, 'missing for kind cbr', 'add sizeBytes: 1000 (inner IP packet size)');
      if (t.pps === undefined) throw new ScenarioError(source, `${field}.pps`, 'missing for kind cbr', 'add pps: 100 (packets per second per flow)');
      return { ...base, direction: t.direction ?? 'both', flows: t.flows ?? 1, sizeBytes: t.sizeBytes, pps: t.pps, rateMbps: undefined };
    }
    forbid('pps', 'bulk is set by rateMbps (the total per direction)');
    if (t.rateMbps === undefined) throw new ScenarioError(source, `${field}.rateMbps`, 'missing for kind bulk', 'add rateMbps: 4 (total per direction)');
    const flows = t.flows ?? 1;
    const sizeBytes = t.sizeBytes ?? 1400;
    const pps = (t.rateMbps * 1e6) / 8 / sizeBytes / flows;
    if (pps > SCENARIO_LIMITS.ppsPerFlow) throw new ScenarioError(source, `${field}.rateMbps`, `needs ${pps.toFixed(0)} pps per flow`, `use more flows or at most ${SCENARIO_LIMITS.ppsPerFlow} pps per flow`);
    return { ...base, direction: t.direction ?? 'up', flows, sizeBytes, pps, rateMbps: t.rateMbps };
  });

  // Timeline: resolve each step to the full spec it installs, in time order.
  const current = new Map(links.map((l) => [l.name, { up: l.up, down: l.down }]));
  const order = s.timeline.map((step, i) => ({ step, i, atMs: timeMs(source, `timeline[${i}].at`, step.at) }));
  for (const o of order) {
    if (o.atMs > durationMs) throw new ScenarioError(source, `timeline[${o.i}].at`, `${o.atMs / 1000} s is after the end of the run (${s.durationS} s)`, 'move it earlier or raise durationS');
  }
  order.sort((x, y) => x.atMs - y.atMs || x.i - y.i);
  const timeline: ScenarioStep[] = order.map(({ step, i, atMs }) => {
    const field = `timeline[${i}]`;
    const link = links.find((l) => l.name === step.link);
    if (!link) throw new ScenarioError(source, `${field}.link`, `no link named "${step.link}"`, `use one of ${links.map((l) => l.name).join(', ')}`);
    const actions = [step.set !== undefined, step.add !== undefined, step.restore === true].filter(Boolean).length;
    if (actions !== 1) throw new ScenarioError(source, field, 'needs exactly one of set, add or restore', 'e.g. set: "loss 100%", add: "delay 50ms", or restore: true');
    const direction = step.direction ?? 'both';
    const cur = current.get(link.name)!;
    const dirs = direction === 'both' ? (['up', 'down'] as const) : ([direction] as const);
    const out: { up?: NetemSpec; down?: NetemSpec } = {};
    let action: ScenarioStep['action'];
    let text = '';
    if (step.restore) {
      action = 'restore';
      for (const d of dirs) out[d] = link[d];
    } else if (step.set !== undefined) {
      action = 'set';
      text = step.set;
      const parsed = spec(source, `${field}.set`, step.set);
      for (const d of dirs) out[d] = parsed;
    } else {
      action = 'add';
      text = step.add!;
      const parsed = spec(source, `${field}.add`, step.add!);
      for (const d of dirs) out[d] = mergeNetemSpecs(cur[d], parsed);
    }
    for (const d of dirs) cur[d] = out[d]!;
    return { index: i, atMs, link: link.name, direction, action, text, result: out, kind: action === 'restore' ? 'restore' : 'fault' };
  });

  // Policies
  const overriddenClasses: ClassName[] = [];
  const policies: ClassPolicy[] = DEFAULT_POLICIES.map((p) => {
    const o = s.policies?.[p.name];
    if (!o) return { ...p, sla: { ...p.sla } };
    overriddenClasses.push(p.name);
    return { ...p, strategy: o.strategy ?? p.strategy, sla: { ...p.sla, ...stripUndefined(o.sla ?? {}) } };
  });

  // Expectations
  const classesWithTraffic = [...new Set(traffic.map((t) => t.className))];
  const expectations = s.expect.map((text, i) => {
    try {
      return parseExpectation(text, classesWithTraffic);
    } catch (e) {
      if (e instanceof Error) throw new ScenarioError(source, `expect[${i}]`, e.message, (e as BraidError).fix ?? 'write CLASS.METRIC OP NUMBER, e.g. "voice.max_gap_ms < 400"');
      throw e;
    }
  });

  return { name: s.name, description: s.description, durationMs, seed: s.seed, links, traffic, timeline, policies, overriddenClasses, expectations, source };
}

/**
 * `add` semantics: the options written in `add` replace the same options of `base`; the rest of
 * base stays (`add: "loss 3%"` on "delay 15ms rate 20mbit" gives "delay 15ms loss 3% rate 20mbit").
 */
export function mergeNetemSpecs(base: NetemSpec, add: NetemSpec): NetemSpec {
  const out: NetemSpec = { ...base };
  if (add.delay !== undefined) out.delay = add.delay;
  if (add.loss !== undefined) out.loss = add.loss;
  if (add.duplicate !== undefined) out.duplicate = add.duplicate;
  if (add.corrupt !== undefined) out.corrupt = add.corrupt;
  if (add.reorder !== undefined) out.reorder = add.reorder;
  if (add.rate !== undefined) out.rate = add.rate;
  if (add.slot !== undefined) out.slot = add.slot;
  if (add.limitPackets !== DEFAULT_LIMIT_PACKETS) out.limitPackets = add.limitPackets;
  if (add.ecn) out.ecn = true;
  return out;
}

/** "10s" / "1500ms" / "1.5s" / "2m" / a number of seconds -> ms. */
export function timeMs(source: string, field: string, v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new ScenarioError(source, field, `expected a time of 0 or more, got ${v}`, 'write e.g. 10s or 1500ms');
    return v * 1000;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(v);
  if (!m) throw new ScenarioError(source, field, `expected a time like 10s or 1500ms, got "${v}"`, 'write e.g. 10s, 1.5s, 1500ms or 2m');
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return unit === 'ms' ? n : unit === 'm' ? n * 60_000 : n * 1000;
}

function spec(source: string, field: string, text: string): NetemSpec {
  try {
    return parseNetemSpec(text);
  } catch (e) {
    if (e instanceof NetemSpecError) throw new ScenarioError(source, field, e.message, e.fix ?? 'write it as for `tc qdisc ... netem`, e.g. "delay 20ms 2ms loss 1%"');
    throw e;
  }
}

function rateOf(up: string, down: string, source: string, field: string): { up: number; down: number } | undefined {
  const u = spec(source, `${field}.netem.up`, up).rate?.rateBps;
  const d = spec(source, `${field}.netem.down`, down).rate?.rateBps;
  return u !== undefined && d !== undefined ? { up: u, down: d } : undefined;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function shortJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function valueAt(doc: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = doc;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}
