/**
 * What a scenario run measured, the same way in virtual and in real time:
 *   TrafficTracker   per flow: sends (time by sequence number) and deliveries (count, time);
 *                    per class: sent/delivered/lost/duplicated/corrupted, one-way latency
 *                    percentiles, the longest silence of any flow
 *   analyzeTimeline  per timeline step: when an edge first reacted (detection), when each
 *                    class's flows moved off the faulted link (reroute) and what was lost from the
 *                    fault until then plus one RTT
 * Times are scenario milliseconds (0 = start of the run) in both modes.
 */
import type { ClassName } from '../../src/core/steer/classes.ts';
import type { EdgeEvent } from '../../src/core/types.ts';
import type { ScenarioStep } from './schema.ts';

export type SiteName = 'a' | 'b';

export interface FlowInfo {
  flowId: number;
  className: ClassName;
  /** The site that sends it. */
  origin: string;
  /** The site it must arrive at (default: the other of a and b). */
  dest?: string;
  sizeBytes: number;
}

class GrowableF64 {
  data = new Float64Array(64);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

class FlowState {
  /** Send time by sequence number (seq = index). */
  readonly sendMs = new GrowableF64();
  /** Deliveries per sequence number (saturating at 255). */
  deliveries = new Uint8Array(64);
  distinct = 0;
  duplicated = 0;
  deliveredBytes = 0;
  firstArrivalMs = NaN;
  lastArrivalMs = NaN;
  maxInnerGapMs = 0;
  /** One-way latency of each distinct delivery. */
  readonly latency = new GrowableF64();

  constructor(readonly info: FlowInfo) {}

  markDelivered(seq: number): number {
    if (seq >= this.deliveries.length) {
      let n = this.deliveries.length;
      while (n <= seq) n *= 2;
      const next = new Uint8Array(n);
      next.set(this.deliveries);
      this.deliveries = next;
    }
    const c = this.deliveries[seq]!;
    if (c < 255) this.deliveries[seq] = c + 1;
    return c;
  }
}

export interface ClassStats {
  className: ClassName;
  flows: number;
  /** Packets; undefined where they are not counted (iperf3 TCP in real time). */
  sent: number | undefined;
  delivered: number | undefined;
  lost: number | undefined;
  lossRatio: number | undefined;
  deliveredRatio: number | undefined;
  duplicated: number | undefined;
  corrupted: number | undefined;
  bytesSent: number;
  bytesDelivered: number;
  latencyP50Ms: number | undefined;
  latencyP99Ms: number | undefined;
  maxGapMs: number | undefined;
  throughputMbps: number | undefined;
  /** From the edges' snapshots. */
  recovered: number | undefined;
  duplicatesSuppressed: number | undefined;
  moves: number | undefined;
  /** Flow moves during the faults (each from its step to its link's next step). */
  faultMoves?: number;
}

export function percentile(sorted: Float64Array | number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

export class TrafficTracker {
  private readonly flows = new Map<number, FlowState>();
  private readonly latency = new Map<ClassName, GrowableF64>();
  /** Deliveries that failed a check, with a reason: wrong site, unknown flow, never sent. */
  readonly anomalies: string[] = [];
  private anomalyCount = 0;

  constructor(flows: readonly FlowInfo[]) {
    for (const f of flows) {
      this.flows.set(f.flowId, new FlowState(f));
      if (!this.latency.has(f.className)) this.latency.set(f.className, new GrowableF64());
    }
  }

  flowInfo(flowId: number): FlowInfo | undefined {
    return this.flows.get(flowId)?.info;
  }

  /** Packet `seq` of `flowId` left its site at `atMs`; seqs go 0, 1, 2, ... */
  recordSend(flowId: number, seq: number, atMs: number): void {
    const f = this.flows.get(flowId);
    if (!f) throw new Error(`TrafficTracker: unknown flow ${flowId}`);
    if (seq !== f.sendMs.length) throw new Error(`TrafficTracker: flow ${flowId} sent seq ${seq}, expected ${f.sendMs.length}`);
    f.sendMs.push(atMs);
  }

  /** A delivery at `site` at `atMs` (deliveries of one flow must come in time order). */
  recordDelivery(flowId: number, seq: number, atMs: number, site: string, intact: boolean, sizeBytes: number): void {
    const f = this.flows.get(flowId);
    if (!f) return this.anomaly(`site ${site} got a packet of unknown flow ${flowId}`);
    if (f.info.origin === site) return this.anomaly(`site ${site} got its own flow ${flowId} seq ${seq} back`);
    if (f.info.dest !== undefined && f.info.dest !== site) return this.anomaly(`site ${site} got flow ${flowId} seq ${seq}, which ${f.info.origin} sent to ${f.info.dest}`);
    if (seq >= f.sendMs.length) return this.anomaly(`flow ${flowId} seq ${seq} delivered but never sent`);
    if (!intact) {
      this.corrupted.set(f.info.className, (this.corrupted.get(f.info.className) ?? 0) + 1);
      return;
    }
    const before = f.markDelivered(seq);
    if (before > 0) {
      if (before === 1) f.duplicated++;
      return;
    }
    f.distinct++;
    f.deliveredBytes += sizeBytes;
    const latencyMs = atMs - f.sendMs.data[seq]!;
    this.latency.get(f.info.className)!.push(latencyMs);
    f.latency.push(latencyMs);
    if (Number.isNaN(f.firstArrivalMs)) f.firstArrivalMs = atMs;
    else f.maxInnerGapMs = Math.max(f.maxInnerGapMs, atMs - f.lastArrivalMs);
    f.lastArrivalMs = atMs;
  }

  private readonly corrupted = new Map<ClassName, number>();

  /** One-way latencies of some flows, sorted (scoped statistics; the class-wide ones are kept as they come). */
  private latencyOf(flows: FlowState[]): Float64Array {
    const out = new GrowableF64();
    for (const f of flows) for (const v of f.latency.view()) out.push(v);
    return out.view().slice().sort();
  }

  private anomaly(text: string): void {
    this.anomalyCount++;
    if (this.anomalies.length < 20) this.anomalies.push(text);
  }

  get anomalyTotal(): number {
    return this.anomalyCount;
  }

  /** Packets of `className` sent in [fromMs, toMs] (scenario time) and never delivered. */
  lostBetween(className: ClassName, fromMs: number, toMs: number, only?: (f: FlowInfo) => boolean): number {
    let lost = 0;
    for (const f of this.flows.values()) {
      if (f.info.className !== className || (only && !only(f.info))) continue;
      const t = f.sendMs.view();
      for (let i = lowerBound(t, fromMs); i < t.length && t[i]! <= toMs; i++) if ((f.deliveries[i] ?? 0) === 0) lost++;
    }
    return lost;
  }

  /** Per-class statistics; `activeMs` is how long traffic ran (for throughput). */
  classStats(className: ClassName, activeMs: number, directions: number, only?: (f: FlowInfo) => boolean): ClassStats {
    const flows = [...this.flows.values()].filter((f) => f.info.className === className && (!only || only(f.info)));
    let sent = 0;
    let delivered = 0;
    let duplicated = 0;
    let bytesSent = 0;
    let bytesDelivered = 0;
    for (const f of flows) {
      sent += f.sendMs.length;
      delivered += f.distinct;
      duplicated += f.duplicated;
      bytesSent += f.sendMs.length * f.info.sizeBytes;
      bytesDelivered += f.deliveredBytes;
    }
    const lat = only ? this.latencyOf(flows) : (this.latency.get(className)?.view().slice().sort() ?? new Float64Array(0));
    const p50 = percentile(lat, 50);
    let maxGapMs = 0;
    for (const f of flows) {
      const t = f.sendMs.view();
      if (t.length === 0) continue;
      const expectFirst = t[0]! + (p50 ?? 0);
      const expectLast = t[t.length - 1]! + (p50 ?? 0);
      if (f.distinct === 0) {
        maxGapMs = Math.max(maxGapMs, expectLast - expectFirst);
        continue;
      }
      maxGapMs = Math.max(maxGapMs, f.maxInnerGapMs, f.firstArrivalMs - expectFirst, expectLast - f.lastArrivalMs);
    }
    return {
      className,
      flows: flows.length,
      sent,
      delivered,
      lost: sent - delivered,
      lossRatio: sent > 0 ? (sent - delivered) / sent : undefined,
      deliveredRatio: sent > 0 ? delivered / sent : undefined,
      duplicated,
      corrupted: this.corrupted.get(className) ?? 0,
      bytesSent,
      bytesDelivered,
      latencyP50Ms: p50,
      latencyP99Ms: percentile(lat, 99),
      maxGapMs: sent > 0 ? maxGapMs : undefined,
      throughputMbps: activeMs > 0 ? (bytesDelivered * 8) / (activeMs / 1000) / Math.max(1, directions) / 1e6 : undefined,
      recovered: undefined,
      duplicatesSuppressed: undefined,
      moves: undefined,
    };
  }
}

function lowerBound(a: Float64Array, v: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- timeline analysis ----------------------------------------------------------------------

export interface SiteEvent extends EdgeEvent {
  site: string;
}

export interface FlowMove {
  className: string;
  from: string[];
  to: string[];
  reason: string;
}

/** "voice: mpls -> inet (mpls down: nothing heard for 300 ms) [4 flows]" -> its parts. */
export function parseFlowMove(message: string): FlowMove | undefined {
  const m = /^([a-z]+): (\S+) -> (\S+) \((.*)\)(?: \[\d+ flows\])?$/.exec(message);
  if (!m) return undefined;
  return { className: m[1]!, from: m[2]!.split('+'), to: m[3]!.split('+'), reason: m[4]! };
}

/** Typed fields a core event may carry (the many-peer core's event union); absent on the two-site Edge's. */
interface EventFields {
  peer?: string;
  class?: string;
  from?: string;
  to?: string;
  reason?: string;
  flows?: number;
}

function fieldsOf(e: EdgeEvent): EventFields {
  return e as EdgeEvent & EventFields;
}

/** The peer an event is about, when it names one. */
export function eventPeer(e: EdgeEvent): string | undefined {
  const p = fieldsOf(e).peer;
  return typeof p === 'string' ? p : undefined;
}

/** A flowMoved event's parts: from its typed fields when it has them, else from its sentence. */
export function flowMoveOf(e: EdgeEvent): FlowMove | undefined {
  if (e.kind !== 'flowMoved') return undefined;
  const f = fieldsOf(e);
  if (typeof f.class === 'string' && typeof f.from === 'string' && typeof f.to === 'string') {
    return { className: f.class, from: f.from.split('+'), to: f.to.split('+'), reason: typeof f.reason === 'string' ? f.reason : '' };
  }
  return parseFlowMove(e.message);
}

/** Flows a flowMoved event moved (its count when it gives one). */
export function flowsMoved(e: EdgeEvent): number {
  const n = fieldsOf(e).flows;
  if (typeof n === 'number') return n;
  const m = / \[(\d+) flows\]$/.exec(e.message);
  return m ? Number(m[1]) : 1;
}

/**
 * Where a timeline step acts: a link at a site (toward one peer). Two-site scenarios have the
 * ends { link } without a site: an event of either site about that link counts.
 */
export interface StepEnd {
  site?: string;
  link: string;
  peer?: string;
}

function endMatches(e: SiteEvent, end: StepEnd): boolean {
  if (end.site !== undefined && e.site !== end.site) return false;
  if (end.peer !== undefined) {
    const p = eventPeer(e);
    if (p !== undefined && p !== end.peer) return false;
  }
  return true;
}

/** Whether a move's reason is about `link` ("mpls down: ...", "mpls loss 4% > 1%", "mpls recovered"). */
function reasonIsAbout(mv: FlowMove, link: string, peer?: string): boolean {
  return mv.reason.startsWith(`${link} `) || (peer !== undefined && mv.reason.startsWith(`${peer} ${link} `));
}

/** An event saying link `link` got worse (state, SLA breach, or flows moved off it because of it). */
function isBadNews(e: SiteEvent, end: StepEnd): boolean {
  if (!endMatches(e, end)) return false;
  const link = end.link;
  if (e.kind === 'flowMoved') {
    const mv = flowMoveOf(e);
    return mv !== undefined && mv.from.includes(link) && !mv.to.includes(link) && reasonIsAbout(mv, link, end.peer) && !/ (recovered|back within)/.test(mv.reason);
  }
  if (e.link !== link) return false;
  if (e.kind === 'linkDown') return true;
  if (e.kind === 'pathState') return /-> (down|degraded|drained)\b/.test(e.message);
  if (e.kind === 'sla') return !/back within SLA/.test(e.message);
  return false;
}

/** An event saying link `link` is usable again (state back up, or flows moved back because of it). */
function isGoodNews(e: SiteEvent, end: StepEnd): boolean {
  if (!endMatches(e, end)) return false;
  const link = end.link;
  if (e.kind === 'flowMoved') {
    const mv = flowMoveOf(e);
    return mv !== undefined && mv.to.includes(link) && !mv.from.includes(link) && reasonIsAbout(mv, link, end.peer);
  }
  if (e.link !== link) return false;
  if (e.kind === 'linkUp') return true;
  if (e.kind === 'pathState') return /-> up\b/.test(e.message);
  return false;
}

export interface StepClassResult {
  /** The class had flows on the link (at either site) when the step happened. */
  onLink: boolean;
  /**
   * Fault: time until its flows were off the link at every site where they were on it.
   * Restore: time until some of its flows came back onto the link. Infinity: never
   * (fault: while the step lasted); undefined: nothing to move.
   */
  movedMs: number | undefined;
  from: string | undefined;
  to: string | undefined;
  /** Fault: packets of the class sent from the fault to the reroute plus one RTT, never delivered. */
  lostDuringSwitch: number | undefined;
  /** Many sites, fault: the reroute at each end where the class was on the link (for scoped figures). */
  ends?: { site: string; peer: string | undefined; movedMs: number }[];
}

export interface StepResult {
  atMs: number;
  link: string;
  direction: ScenarioStep['direction'];
  action: ScenarioStep['action'];
  kind: ScenarioStep['kind'];
  change: string;
  /** First edge reaction after the step; Infinity: none until the link's next step (or the end). */
  detectionMs: number;
  detectedBy: string | undefined;
  classes: Partial<Record<ClassName, StepClassResult>>;
}

export interface TimelineInput {
  timeline: readonly ScenarioStep[];
  /** Every site's events, in scenario time. */
  events: readonly SiteEvent[];
  classes: readonly ClassName[];
  endMs: number;
  /** Links each class used at `site` just before step `index` (two sites). */
  activeLinksAt(index: number, site: SiteName): Partial<Record<ClassName, string[]>> | undefined;
  /** RTT of `link` just before step `index`. */
  rttMsAt(index: number, link: string): number | undefined;
  /** Undefined where per-packet loss is not known (iperf3). */
  lostBetween(className: ClassName, fromMs: number, toMs: number): number | undefined;
  /** Many sites: where step `index` acts (default: its link at sites a and b). */
  endsOf?(index: number): StepEnd[];
  /** Many sites: links each class used at an end's site toward its peer just before step `index`. */
  activeLinksAtEnd?(index: number, end: StepEnd): Partial<Record<ClassName, string[]>> | undefined;
}

/** Each fault's window: from the step to the link's next step at a later time (or the end). */
export function faultWindows(steps: readonly { atMs: number; link: string; kind: string }[], endMs: number): [number, number][] {
  return steps
    .filter((s) => s.kind === 'fault')
    .map((s) => {
      const next = steps.find((x) => x.link === s.link && x.atMs > s.atMs);
      return [s.atMs, next ? next.atMs : endMs] as [number, number];
    });
}

/** Flows of `className` moved inside the windows, by the events `only` accepts. */
export function movesIn(events: readonly SiteEvent[], className: string, windows: readonly [number, number][], only: (e: SiteEvent) => boolean = () => true): number {
  let n = 0;
  for (const e of events) {
    if (e.kind !== 'flowMoved' || !windows.some(([a, b]) => e.atMs >= a && e.atMs < b)) continue;
    if (flowMoveOf(e)?.className === className && only(e)) n += flowsMoved(e);
  }
  return n;
}

export function describeStep(step: ScenarioStep): string {
  const dir = step.direction === 'both' ? '' : ` (${step.direction} only)`;
  if (step.action === 'health') return step.text;
  if (step.action === 'restore') return `restore${dir}`;
  return `${step.action} "${step.text}"${dir}`;
}

export function analyzeTimeline(input: TimelineInput): StepResult[] {
  const events = [...input.events].sort((x, y) => x.atMs - y.atMs);
  return input.timeline.map((step, idx) => {
    // Steps on the same link at the same instant (e.g. one spec per direction) are one change:
    // each is judged until the link's next change at a later time.
    const next = input.timeline.find((s, j) => j > idx && s.link === step.link && s.atMs > step.atMs);
    const windowEnd = next ? next.atMs : input.endMs;
    const inWindow = events.filter((e) => e.atMs >= step.atMs && e.atMs < windowEnd);
    const fault = step.kind === 'fault';
    const manySites = input.endsOf !== undefined;
    const ends: StepEnd[] = input.endsOf ? input.endsOf(idx) : [{ link: step.link }];
    const first = inWindow.find((e) => ends.some((end) => (fault ? isBadNews(e, end) : isGoodNews(e, end))));
    const rtt = input.rttMsAt(idx, step.link) ?? 0;
    // Ends where the class ran: two sites: a and b (by each site's snapshot); many: each end.
    const classEnds = manySites
      ? ends.map((end) => ({ end, active: input.activeLinksAtEnd?.(idx, end) }))
      : (['a', 'b'] as const).map((site) => ({ end: { site, link: step.link } as StepEnd, active: input.activeLinksAt(idx, site) }));
    const classes: Partial<Record<ClassName, StepClassResult>> = {};
    for (const c of input.classes) {
      const on = classEnds.filter((x) => x.active?.[c]?.includes(x.end.link) ?? false).map((x) => x.end);
      const onLink = on.length > 0;
      if (fault) {
        if (!onLink) {
          classes[c] = { onLink, movedMs: undefined, from: undefined, to: undefined, lostDuringSwitch: undefined };
          continue;
        }
        let worst = 0;
        let from: string | undefined;
        let to: string | undefined;
        const perEnd: NonNullable<StepClassResult['ends']> = [];
        for (const end of on) {
          const mv = inWindow.find((e) => {
            if (e.site !== end.site || e.kind !== 'flowMoved' || !endMatches(e, end)) return false;
            const m = flowMoveOf(e);
            return m !== undefined && m.className === c && m.from.includes(end.link) && !m.to.includes(end.link);
          });
          const movedMs = mv ? mv.atMs - step.atMs : Infinity;
          perEnd.push({ site: end.site!, peer: end.peer, movedMs });
          if (!mv) {
            worst = Infinity;
            continue;
          }
          const m = flowMoveOf(mv)!;
          from ??= m.from.join('+');
          to ??= m.to.join('+');
          worst = Math.max(worst, movedMs);
        }
        const until = Number.isFinite(worst) ? step.atMs + worst + rtt : windowEnd;
        classes[c] = { onLink, movedMs: worst, from, to, lostDuringSwitch: input.lostBetween(c, step.atMs, until), ...(manySites ? { ends: perEnd } : {}) };
      } else {
        const mv = inWindow.find((e) => {
          if (e.kind !== 'flowMoved' || !ends.some((end) => endMatches(e, end))) return false;
          const m = flowMoveOf(e);
          return m !== undefined && m.className === c && ends.some((end) => (end.site === undefined || end.site === e.site) && m.to.includes(end.link) && !m.from.includes(end.link));
        });
        const m = mv ? flowMoveOf(mv) : undefined;
        classes[c] = { onLink, movedMs: mv ? mv.atMs - step.atMs : undefined, from: m?.from.join('+'), to: m?.to.join('+'), lostDuringSwitch: undefined };
      }
    }
    return {
      atMs: step.atMs,
      link: step.link,
      direction: step.direction,
      action: step.action,
      kind: step.kind,
      change: describeStep(step),
      detectionMs: first ? first.atMs - step.atMs : Infinity,
      detectedBy: first ? `${first.site}: ${first.message}` : undefined,
      classes,
    };
  });
}
