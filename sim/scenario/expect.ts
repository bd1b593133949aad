/**
 * Scenario expectations: `SUBJECT.METRIC OP NUMBER`, e.g. "voice.max_gap_ms < 400",
 * "bulk.delivered_ratio > 0.99", "events.detection_ms <= 400". NUMBER may end in % (a ratio:
 * "voice.loss_ratio < 1%" is < 0.01).
 *
 * SUBJECT is a class with traffic in the scenario, or `events` (the timeline's faults). In a
 * scenario with sites a class may be scoped: `b2.voice.max_gap_ms == 0` (flows from or to site
 * b2; moves at b2 and toward b2), `b1>b2.voice.max_gap_ms < 400` (flows from b1 to b2).
 * A metric that has no value in a run (a class no fault touched has no reroute time) fails its
 * expectation with that reason: an expectation that cannot be judged is not a pass.
 * A metric that should have happened and did not (a fault never detected, flows never moved)
 * is +Infinity, printed as "never", and fails any upper bound.
 */
import { BraidError, ErrorCode } from '../../src/core/errors.ts';

export type ExpectOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

/** Per-class metrics, by the name used in expectations. */
export const CLASS_METRICS = {
  sent: 'packets sent (both directions)',
  delivered: 'distinct packets delivered',
  lost: 'packets sent and never delivered',
  loss_ratio: 'lost / sent',
  delivered_ratio: 'delivered / sent',
  duplicated: 'packets delivered more than once',
  corrupted: 'deliveries whose bytes differ from what was sent',
  recovered: 'packets recovered by FEC (from the edges, when they report it)',
  duplicates_suppressed: 'duplicate copies the receiving edge dropped',
  p50_ms: 'one-way latency, median',
  p99_ms: 'one-way latency, 99th percentile',
  max_gap_ms: 'longest silence of any flow (delivery to delivery)',
  detection_ms: 'slowest detection of the faults that hit links this class was on',
  reroute_ms: 'slowest move of this class off a faulted link (time from the fault)',
  lost_during_switch: 'packets lost from each fault until its reroute plus one RTT, summed',
  throughput_mbps: 'delivered bit rate per direction, averaged over the traffic period',
  moves: 'flow moves of this class on both edges (steering churn)',
  fault_moves: 'flow moves of this class while a fault lasted (from each fault to its link\'s next step)',
} as const;
export type ClassMetric = keyof typeof CLASS_METRICS;

export const EVENT_METRICS = {
  detection_ms: 'slowest detection over the faults (set/add steps)',
  undetected: 'faults no edge reacted to',
  count: 'faults in the timeline',
  health_down_ms: 'slowest time from a health target going unreachable to its site marking the link DOWN with a reason naming the target',
} as const;
export type EventMetric = keyof typeof EVENT_METRICS;

/** Which flows a scoped expectation looks at. */
export interface ExpectScope {
  /** Flows from or to this site. */
  site?: string;
  /** Flows from `from` to `to`. */
  from?: string;
  to?: string;
}

export interface Expectation {
  text: string;
  /** Undefined: the whole scenario. */
  scope?: ExpectScope;
  subject: string;
  metric: string;
  op: ExpectOp;
  value: number;
}

export interface ExpectationResult {
  text: string;
  /** Undefined: the metric has no value in this run. Infinity: it never happened. */
  actual: number | undefined;
  pass: boolean;
  /** Why it failed when there was nothing to compare. */
  note?: string;
}

const RE = /^\s*(?:([a-z0-9][a-z0-9-]*)(?:>([a-z0-9][a-z0-9-]*))?\.)?([a-z][a-z0-9_-]*)\.([a-z0-9_]+)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*(%)?\s*$/;

/** `sites`: the scenario's sites (undefined: a two-site scenario, where scopes are not allowed). */
export function parseExpectation(text: string, classes: readonly string[], sites?: readonly string[]): Expectation {
  const m = RE.exec(text);
  if (!m) {
    throw new BraidError(ErrorCode.SCENARIO_INVALID, `"${text}" is not SUBJECT.METRIC OP NUMBER`, {
      fix: 'write e.g. "voice.max_gap_ms < 400" (operators < <= > >= == !=)',
    });
  }
  const [, scopeA, scopeB, subject, metric, op, num, pct] = m;
  let scope: ExpectScope | undefined;
  if (scopeA !== undefined) {
    if (!sites) {
      throw new BraidError(ErrorCode.SCENARIO_INVALID, `"${text}": "${scopeA}${scopeB ? `>${scopeB}` : ''}" scopes a class to sites, and this scenario has no sites`, { fix: 'write CLASS.METRIC, e.g. "voice.max_gap_ms < 400"' });
    }
    for (const name of [scopeA, scopeB]) {
      if (name !== undefined && !sites.includes(name)) throw new BraidError(ErrorCode.SCENARIO_INVALID, `"${text}": no site named "${name}"`, { fix: `use one of ${sites.join(', ')}` });
    }
    if (subject === 'events') throw new BraidError(ErrorCode.SCENARIO_INVALID, `"${text}": events are not scoped to sites`, { fix: 'write events.METRIC, or scope a class: SITE.CLASS.METRIC' });
    scope = scopeB === undefined ? { site: scopeA } : { from: scopeA, to: scopeB };
  }
  if (subject === 'events') {
    if (!(metric! in EVENT_METRICS)) {
      throw new BraidError(ErrorCode.SCENARIO_INVALID, `"${text}": events has no metric "${metric}"`, { fix: `use one of ${Object.keys(EVENT_METRICS).join(', ')}` });
    }
  } else {
    if (!classes.includes(subject!)) {
      throw new BraidError(ErrorCode.SCENARIO_INVALID, `"${text}": "${subject}" is not a class with traffic in this scenario`, {
        fix: `use events or one of ${classes.join(', ')}`,
      });
    }
    if (!(metric! in CLASS_METRICS)) {
      throw new BraidError(ErrorCode.SCENARIO_INVALID, `"${text}": no metric "${metric}"`, { fix: `use one of ${Object.keys(CLASS_METRICS).join(', ')}` });
    }
  }
  const value = Number(num) / (pct ? 100 : 1);
  return { text: text.trim(), ...(scope ? { scope } : {}), subject: subject!, metric: metric!, op: op as ExpectOp, value };
}

export function compare(actual: number, op: ExpectOp, value: number): boolean {
  switch (op) {
    case '<':
      return actual < value;
    case '<=':
      return actual <= value;
    case '>':
      return actual > value;
    case '>=':
      return actual >= value;
    case '==':
      return actual === value;
    case '!=':
      return actual !== value;
  }
}

/** `lookup(subject, metric, scope)` gives the run's value (undefined: not applicable in this run). */
export function evaluateExpectations(
  expectations: readonly Expectation[],
  lookup: (subject: string, metric: string, scope: ExpectScope | undefined) => number | undefined,
): ExpectationResult[] {
  return expectations.map((e) => {
    const actual = lookup(e.subject, e.metric, e.scope);
    if (actual === undefined || Number.isNaN(actual)) {
      return { text: e.text, actual: undefined, pass: false, note: `${scopeText(e.scope)}${e.subject}.${e.metric} has no value in this run` };
    }
    return { text: e.text, actual, pass: compare(actual, e.op, e.value) };
  });
}

/** "b2." / "b1>b2." / "" */
export function scopeText(scope: ExpectScope | undefined): string {
  if (!scope) return '';
  return scope.site !== undefined ? `${scope.site}.` : `${scope.from}>${scope.to}.`;
}
