/**
 * The scenario report (DESIGN.md section 6): per timeline event what changed, when, how fast the
 * edges detected it and moved each class, and what each class lost in the switch; per class
 * packets sent/delivered/lost/recovered/duplicated, latency p50/p99, the longest gap; the
 * expectations with pass/fail. Built the same way by both runners; printed as text or as one
 * JSON object (`braid sim run --json`).
 *
 * JSON: times in ms; a time that should have happened and did not is null with a false flag
 * beside it (detected: false, moved: false); a metric that does not apply is null.
 */
import type { ClassName } from '../../src/core/steer/classes.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';
import { evaluateExpectations, type ExpectScope, type ExpectationResult } from './expect.ts';
import { formatNetemSpec } from '../netem/spec.ts';
import { faultWindows, movesIn, type ClassStats, type SiteEvent, type StepResult } from './metrics.ts';
import type { Scenario } from './schema.ts';

export interface ClassReport extends ClassStats {
  /** Slowest detection of a fault on a link this class was on (Infinity: one was never detected). */
  detectionMs: number | undefined;
  /** Slowest reroute off a faulted link (Infinity: never moved). */
  rerouteMs: number | undefined;
  lostDuringSwitch: number | undefined;
}

/** Many sites: one class's traffic from one site to another. */
export interface PairReport extends ClassReport {
  from: string;
  to: string;
}

export interface ScenarioReport {
  scenario: string;
  description: string;
  mode: 'virtual' | 'real';
  backend: 'userspace' | 'tc';
  seed: number;
  durationMs: number;
  wallMs: number;
  /** Virtual time: simulated time / wall time. */
  speedup: number | undefined;
  pass: boolean;
  links: { name: string; costTier: string; up: string; down: string }[];
  events: StepResult[];
  classes: ClassReport[];
  /** Many-site scenarios: per class and site pair (from -> to). */
  pairs?: PairReport[];
  /** Many-site scenarios: the sites, their role and links. */
  sites?: { name: string; role: string; prefix: string; links: string[] }[];
  expectations: ExpectationResult[];
  /** What the edges said, in scenario time (at most MAX_EDGE_EVENTS). */
  edgeEvents: SiteEvent[];
  notes: string[];
}

export const MAX_EDGE_EVENTS = 500;

/** Numbers an edge snapshot may carry per class (FEC lands in parallel): read them if present. */
export function classField(snap: EdgeSnapshot | undefined, className: string, field: string): number | undefined {
  const cls = snap?.classes.find((c) => c.name === className);
  if (!cls) return undefined;
  const v = (cls as unknown as Record<string, unknown>)[field];
  return typeof v === 'number' ? v : undefined;
}

/** The edges' numbers per class: FEC recoveries, suppressed duplicates, flow moves. */
export function edgeClassNumbers(
  snaps: readonly (EdgeSnapshot | undefined)[],
  className: ClassName,
  trafficSentByClass: ReadonlyMap<string, number>,
): { recovered: number | undefined; duplicatesSuppressed: number | undefined; moves: number | undefined } {
  const sum = (field: string): number | undefined => {
    let total: number | undefined;
    for (const s of snaps) {
      const v = classField(s, className, field);
      if (v !== undefined) total = (total ?? 0) + v;
    }
    return total;
  };
  const recovered = sum('fecRecovered') ?? (snaps.some((s) => s !== undefined) ? 0 : undefined);
  let dups = sum('duplicatesSuppressed');
  if (dups === undefined) {
    // Only a total per edge: attribute it to the classes that duplicate, by their share of traffic.
    const dupClasses = new Set<string>();
    for (const s of snaps) for (const c of s?.classes ?? []) if (c.strategy === 'duplicate') dupClasses.add(c.name);
    if (!dupClasses.has(className)) dups = snaps.some((s) => s !== undefined) ? 0 : undefined;
    else {
      let share = 0;
      let total = 0;
      for (const [name, n] of trafficSentByClass) if (dupClasses.has(name)) total += n;
      share = total > 0 ? (trafficSentByClass.get(className) ?? 0) / total : 0;
      let suppressed = 0;
      for (const s of snaps) suppressed += s?.duplicatesSuppressed ?? 0;
      dups = Math.round(suppressed * share);
    }
  }
  return { recovered, duplicatesSuppressed: dups, moves: sum('moves') };
}

/**
 * Slowest time from a health-unreachable step to its site saying the link's path is DOWN with a
 * reason naming the health target; Infinity: not while the target stayed unreachable; undefined:
 * no such step.
 */
export function healthDownMs(scenario: Scenario, events: readonly SiteEvent[]): number | undefined {
  let worst: number | undefined;
  for (const step of scenario.timeline) {
    const h = step.health;
    if (!h || h.reachable) continue;
    const back = scenario.timeline.find((x) => x.health && x.health.site === h.site && x.health.link === h.link && x.health.reachable && x.atMs > step.atMs);
    const untilMs = back ? back.atMs : scenario.durationMs;
    const hit = events.find(
      (e) =>
        e.atMs >= step.atMs &&
        e.atMs < untilMs &&
        e.site === h.site &&
        (e.kind === 'pathState' || e.kind === 'linkDown') &&
        (e.link === h.link || e.link?.startsWith(`${h.link}>`) === true) &&
        /-> down\b/.test(e.message) &&
        e.message.includes(h.target),
    );
    worst = Math.max(worst ?? 0, hit ? hit.atMs - step.atMs : Infinity);
  }
  return worst;
}

export function buildReport(input: {
  scenario: Scenario;
  mode: 'virtual' | 'real';
  backend: 'userspace' | 'tc';
  seed: number;
  wallMs: number;
  steps: StepResult[];
  classes: ClassStats[];
  edgeEvents: SiteEvent[];
  notes: string[];
  /** Many sites: a class's figures over the flows of a scope (site or site pair); undefined: none. */
  scoped?: (className: ClassName, scope: ExpectScope) => ClassReport | undefined;
  pairs?: PairReport[];
}): ScenarioReport {
  const { scenario, steps } = input;
  const faults = steps.filter((s) => s.kind === 'fault');
  const classes: ClassReport[] = input.classes.map((c) => {
    let detectionMs: number | undefined;
    let rerouteMs: number | undefined;
    let lostDuringSwitch: number | undefined;
    for (const s of faults) {
      const r = s.classes[c.className];
      if (!r?.onLink) continue;
      detectionMs = Math.max(detectionMs ?? 0, s.detectionMs);
      rerouteMs = Math.max(rerouteMs ?? 0, r.movedMs ?? Infinity);
      if (r.lostDuringSwitch !== undefined) lostDuringSwitch = (lostDuringSwitch ?? 0) + r.lostDuringSwitch;
    }
    return { ...c, detectionMs, rerouteMs, lostDuringSwitch, faultMoves: c.faultMoves ?? movesIn(input.edgeEvents, c.className, faultWindows(steps, scenario.durationMs)) };
  });
  const lookup = (subject: string, metric: string, scope: ExpectScope | undefined): number | undefined => {
    if (subject === 'events') {
      if (metric === 'count') return faults.length;
      if (metric === 'undetected') return faults.filter((f) => !Number.isFinite(f.detectionMs)).length;
      if (metric === 'detection_ms') return faults.length === 0 ? undefined : Math.max(...faults.map((f) => f.detectionMs));
      if (metric === 'health_down_ms') return healthDownMs(scenario, input.edgeEvents);
      return undefined;
    }
    const c = scope ? input.scoped?.(subject as ClassName, scope) : classes.find((x) => x.className === subject);
    if (!c) return undefined;
    const m: Record<string, number | undefined> = {
      sent: c.sent,
      delivered: c.delivered,
      lost: c.lost,
      loss_ratio: c.lossRatio,
      delivered_ratio: c.deliveredRatio,
      duplicated: c.duplicated,
      corrupted: c.corrupted,
      recovered: c.recovered,
      duplicates_suppressed: c.duplicatesSuppressed,
      p50_ms: c.latencyP50Ms,
      p99_ms: c.latencyP99Ms,
      max_gap_ms: c.maxGapMs,
      detection_ms: c.detectionMs,
      reroute_ms: c.rerouteMs,
      lost_during_switch: c.lostDuringSwitch,
      throughput_mbps: c.throughputMbps,
      moves: c.moves,
      fault_moves: c.faultMoves,
    };
    return m[metric];
  };
  const expectations = evaluateExpectations(scenario.expectations, lookup);
  const durationMs = scenario.durationMs;
  return {
    scenario: scenario.name,
    description: scenario.description,
    mode: input.mode,
    backend: input.backend,
    seed: input.seed,
    durationMs,
    wallMs: input.wallMs,
    speedup: input.mode === 'virtual' && input.wallMs > 0 ? durationMs / input.wallMs : undefined,
    pass: expectations.every((e) => e.pass),
    links: scenario.links.map((l) => ({ name: l.name, costTier: l.costTier, up: formatNetemSpec(l.up), down: formatNetemSpec(l.down) })),
    events: steps,
    classes,
    ...(input.pairs ? { pairs: input.pairs } : {}),
    ...(scenario.sites ? { sites: scenario.sites.map((x) => ({ name: x.name, role: x.role, prefix: x.prefix, links: x.links.map((l) => (l.to ? `${l.name}->${l.to.site}.${l.to.link}${l.nat ? ' (nat)' : ''}` : l.name)) })) } : {}),
    expectations,
    edgeEvents: input.edgeEvents.slice(0, MAX_EDGE_EVENTS),
    notes: input.notes,
  };
}

// ---- JSON ---------------------------------------------------------------------------------

const r1 = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : Math.round(v * 10) / 10);
const r4 = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : Math.round(v * 1e6) / 1e6);
const n = (v: number | undefined): number | null => (v === undefined || !Number.isFinite(v) ? null : v);

/** The one JSON object `braid sim run --json` prints. */
export function reportJson(r: ScenarioReport): Record<string, unknown> {
  return {
    scenario: r.scenario,
    description: r.description,
    mode: r.mode,
    backend: r.backend,
    seed: r.seed,
    durationMs: r.durationMs,
    wallMs: Math.round(r.wallMs),
    speedup: r1(r.speedup),
    pass: r.pass,
    links: r.links,
    events: r.events.map((e) => ({
      atMs: e.atMs,
      link: e.link,
      direction: e.direction,
      kind: e.kind,
      change: e.change,
      detected: Number.isFinite(e.detectionMs),
      detectionMs: r1(e.detectionMs),
      detectedBy: e.detectedBy ?? null,
      classes: Object.fromEntries(
        Object.entries(e.classes).map(([name, c]) => [
          name,
          {
            onLink: c.onLink,
            moved: c.movedMs !== undefined && Number.isFinite(c.movedMs),
            movedMs: r1(c.movedMs),
            from: c.from ?? null,
            to: c.to ?? null,
            lostDuringSwitch: n(c.lostDuringSwitch),
          },
        ]),
      ),
    })),
    classes: Object.fromEntries(
      r.classes.map((c) => [
        c.className,
        {
          flows: c.flows,
          sent: n(c.sent),
          delivered: n(c.delivered),
          lost: n(c.lost),
          lossRatio: r4(c.lossRatio),
          deliveredRatio: r4(c.deliveredRatio),
          duplicated: n(c.duplicated),
          corrupted: n(c.corrupted),
          recovered: n(c.recovered),
          duplicatesSuppressed: n(c.duplicatesSuppressed),
          bytesSent: c.bytesSent,
          bytesDelivered: c.bytesDelivered,
          throughputMbps: r4(c.throughputMbps),
          latencyP50Ms: r1(c.latencyP50Ms),
          latencyP99Ms: r1(c.latencyP99Ms),
          maxGapMs: r1(c.maxGapMs),
          detected: c.detectionMs === undefined ? null : Number.isFinite(c.detectionMs),
          detectionMs: r1(c.detectionMs),
          rerouted: c.rerouteMs === undefined ? null : Number.isFinite(c.rerouteMs),
          rerouteMs: r1(c.rerouteMs),
          lostDuringSwitch: n(c.lostDuringSwitch),
          moves: n(c.moves),
        },
      ]),
    ),
    ...(r.sites ? { sites: r.sites } : {}),
    ...(r.pairs
      ? {
          pairs: r.pairs.map((c) => ({
            from: c.from,
            to: c.to,
            class: c.className,
            flows: c.flows,
            sent: n(c.sent),
            delivered: n(c.delivered),
            lost: n(c.lost),
            lossRatio: r4(c.lossRatio),
            latencyP50Ms: r1(c.latencyP50Ms),
            latencyP99Ms: r1(c.latencyP99Ms),
            maxGapMs: r1(c.maxGapMs),
            rerouted: c.rerouteMs === undefined ? null : Number.isFinite(c.rerouteMs),
            rerouteMs: r1(c.rerouteMs),
            lostDuringSwitch: n(c.lostDuringSwitch),
            moves: n(c.moves),
            faultMoves: n(c.faultMoves),
          })),
        }
      : {}),
    expectations: r.expectations.map((e) => ({ expect: e.text, actual: e.actual === undefined ? null : Number.isFinite(e.actual) ? r4(e.actual) : 'never', pass: e.pass, ...(e.note ? { note: e.note } : {}) })),
    edgeEvents: r.edgeEvents.map((e) => ({ atMs: Math.round(e.atMs * 10) / 10, site: e.site, kind: e.kind, ...(e.link ? { link: e.link } : {}), message: e.message })),
    notes: r.notes,
  };
}

// ---- text ---------------------------------------------------------------------------------

function ms(v: number | undefined): string {
  if (v === undefined) return '-';
  if (!Number.isFinite(v)) return 'never';
  return v >= 10_000 ? `${(v / 1000).toFixed(1)}s` : v.toFixed(0);
}

function num(v: number | undefined): string {
  return v === undefined ? '-' : String(v);
}

function pct(v: number | undefined): string {
  if (v === undefined) return '-';
  return `${(v * 100).toFixed(v < 0.001 && v > 0 ? 3 : 2)}%`;
}

function fmtActual(v: number | undefined): string {
  if (v === undefined) return 'no value';
  if (!Number.isFinite(v)) return 'never';
  return Number.isInteger(v) ? String(v) : v.toPrecision(4);
}

export function reportText(r: ScenarioReport): string {
  const out: string[] = [];
  const mode = r.mode === 'virtual' ? 'virtual time' : 'real time, namespaces';
  out.push(`scenario ${r.scenario} (${mode}, ${r.backend} netem, seed ${r.seed}): ${r.pass ? 'PASS' : 'FAIL'}`);
  out.push(`  ${r.description}`);
  const speed = r.speedup !== undefined ? ` (${r.speedup.toFixed(0)}x real time)` : '';
  out.push(`  ${(r.durationMs / 1000).toFixed(0)} s ${r.mode === 'virtual' ? 'simulated' : 'run'} in ${(r.wallMs / 1000).toFixed(2)} s${speed}`);
  for (const site of r.sites ?? []) out.push(`  site ${site.name} (${site.role}, ${site.prefix}): ${site.links.join(', ')}`);
  for (const l of r.links) out.push(`  link ${l.name} (${l.costTier}): up "${l.up}", down "${l.down}"`);
  out.push('');
  out.push('events');
  if (r.events.length === 0) out.push('  (no timeline)');
  for (const e of r.events) {
    out.push(`  ${(e.atMs / 1000).toFixed(3).padStart(8)}s  ${e.link}: ${e.change}`);
    const what = e.kind === 'fault' ? 'detected' : 'recovery seen';
    out.push(`             ${what} after ${ms(e.detectionMs)} ms${e.detectedBy ? ` (${e.detectedBy})` : ''}`);
    for (const [name, c] of Object.entries(e.classes)) {
      if (e.kind === 'fault') {
        if (!c.onLink) {
          out.push(`             ${name.padEnd(9)} not on ${e.link}`);
          continue;
        }
        const moved = c.movedMs !== undefined && Number.isFinite(c.movedMs) ? `rerouted after ${ms(c.movedMs)} ms (${c.from} -> ${c.to})` : 'not rerouted';
        out.push(`             ${name.padEnd(9)} ${moved}, lost during switch ${num(c.lostDuringSwitch)}`);
      } else if (c.movedMs !== undefined) {
        out.push(`             ${name.padEnd(9)} back on ${e.link} after ${ms(c.movedMs)} ms (${c.from} -> ${c.to})`);
      }
    }
  }
  out.push('');
  out.push('classes');
  const head = ['class', 'sent', 'delivered', 'lost', 'loss', 'dup', 'fec-rec', 'dup-supp', 'p50 ms', 'p99 ms', 'max gap', 'detect', 'reroute', 'lost@switch', 'moves'];
  const rows = r.classes.map((c) => [
    c.className,
    num(c.sent),
    num(c.delivered),
    num(c.lost),
    pct(c.lossRatio),
    num(c.duplicated),
    num(c.recovered),
    num(c.duplicatesSuppressed),
    c.latencyP50Ms === undefined ? '-' : c.latencyP50Ms.toFixed(1),
    c.latencyP99Ms === undefined ? '-' : c.latencyP99Ms.toFixed(1),
    ms(c.maxGapMs),
    ms(c.detectionMs),
    ms(c.rerouteMs),
    num(c.lostDuringSwitch),
    num(c.moves),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `  ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')}`;
  out.push(line(head));
  for (const row of rows) out.push(line(row));
  for (const c of r.classes) {
    if (c.sent === undefined) out.push(`  ${c.className}: ${(c.bytesDelivered / 1e6).toFixed(1)} MB delivered of ${(c.bytesSent / 1e6).toFixed(1)} MB sent (${pct(c.deliveredRatio)}), ${c.throughputMbps?.toFixed(2) ?? '-'} Mbit/s`);
    if ((c.corrupted ?? 0) > 0) out.push(`  ${c.className}: ${c.corrupted} corrupted deliveries`);
  }
  if (r.pairs && r.pairs.length > 0) {
    out.push('');
    out.push('site pairs');
    const ph = ['from > to', 'class', 'sent', 'lost', 'loss', 'p50 ms', 'p99 ms', 'max gap', 'reroute', 'lost@switch', 'moves', 'in faults'];
    const prow = r.pairs.map((c) => [
      `${c.from} > ${c.to}`,
      c.className,
      num(c.sent),
      num(c.lost),
      pct(c.lossRatio),
      c.latencyP50Ms === undefined ? '-' : c.latencyP50Ms.toFixed(1),
      c.latencyP99Ms === undefined ? '-' : c.latencyP99Ms.toFixed(1),
      ms(c.maxGapMs),
      ms(c.rerouteMs),
      num(c.lostDuringSwitch),
      num(c.moves),
      num(c.faultMoves),
    ]);
    const pw = ph.map((h, i) => Math.max(h.length, ...prow.map((row) => row[i]!.length)));
    const pline = (cells: string[]): string => `  ${cells.map((cell, i) => (i < 2 ? cell.padEnd(pw[i]!) : cell.padStart(pw[i]!))).join('  ')}`;
    out.push(pline(ph));
    for (const row of prow) out.push(pline(row));
  }
  out.push('');
  out.push('expectations');
  if (r.expectations.length === 0) out.push('  (none)');
  for (const e of r.expectations) out.push(`  ${e.pass ? 'PASS' : 'FAIL'}  ${e.text}  (actual ${fmtActual(e.actual)}${e.note ? `: ${e.note}` : ''})`);
  if (r.notes.length > 0) {
    out.push('');
    out.push('notes');
    for (const note of r.notes) out.push(`  ${note}`);
  }
  return out.join('\n') + '\n';
}
