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
  /** The site that sends it; it must arrive at the other one. */
  origin: SiteName;
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
  recordDelivery(flowId: number, seq: number, atMs: number, site: SiteName, intact: boolean, sizeBytes: number): void {
    const f = this.flows.get(flowId);
    if (!f) return this.anomaly(`site ${site} got a packet of unknown flow ${flowId}`);
    if (f.info.origin === site) return this.anomaly(`site ${site} got its own flow ${flowId} seq ${seq} back`);
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
    this.latency.get(f.info.className)!.push(atMs - f.sendMs.data[seq]!);
    if (Number.isNaN(f.firstArrivalMs)) f.firstArrivalMs = atMs;
    else f.maxInnerGapMs = Math.max(f.maxInnerGapMs, atMs - f.lastArrivalMs);
    f.lastArrivalMs = atMs;
  }

  private readonly corrupted = new Map<ClassName, number>();

  private anomaly(text: string): void {
    this.anomalyCount++;
    if (this.anomalies.length < 20) this.anomalies.push(text);
  }

  get anomalyTotal(): number {
    return this.anomalyCount;
  }

  /** Packets of `className` sent in [fromMs, toMs] (scenario time) and never delivered. */
  lostBetween(className: ClassName, fromMs: number, toMs: number): number {
    let lost = 0;
    for (const f of this.flows.values()) {
      if (f.info.className !== className) continue;
      const t = f.sendMs.view();
      for (let i = lowerBound(t, fromMs); i < t.length && t[i]! <= toMs; i++) if ((f.deliveries[i] ?? 0) === 0) lost++;
    }
    return lost;
  }

  /** Per-class statistics; `activeMs` is how long traffic ran (for throughput). */
  classStats(className: ClassName, activeMs: number, directions: number): ClassStats {
    const flows = [...this.flows.values()].filter((f) => f.info.className === className);
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
    const lat = this.latency.get(className)?.view().slice().sort() ?? new Float64Array(0);
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
  site: SiteName;
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

/** Whether a move's reason is about `link` ("mpls down: ...", "mpls loss 4% > 1%", "mpls recovered"). */
function reasonIsAbout(mv: FlowMove, link: string): boolean {
  return mv.reason.startsWith(`${link} `);
}

/** An event saying link `link` got worse (state, SLA breach, or flows moved off it because of it). */
function isBadNews(e: SiteEvent, link: string): boolean {
  if (e.kind === 'flowMoved') {
    const mv = parseFlowMove(e.message);
    return mv !== undefined && mv.from.includes(link) && !mv.to.includes(link) && reasonIsAbout(mv, link) && !/ (recovered|back within)/.test(mv.reason);
  }
  if (e.link !== link) return false;
  if (e.kind === 'linkDown') return true;
  if (e.kind === 'pathState') return /-> (down|degraded|drained)\b/.test(e.message);
  if (e.kind === 'sla') return !/back within SLA/.test(e.message);
  return false;
}

/** An event saying link `link` is usable again (state back up, or flows moved back because of it). */
function isGoodNews(e: SiteEvent, link: string): boolean {
  if (e.kind === 'flowMoved') {
    const mv = parseFlowMove(e.message);
    return mv !== undefined && mv.to.includes(link) && !mv.from.includes(link) && reasonIsAbout(mv, link);
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
  /** Both sites' events, in scenario time. */
  events: readonly SiteEvent[];
  classes: readonly ClassName[];
  endMs: number;
  /** Links each class used at `site` just before step `index`. */
  activeLinksAt(index: number, site: SiteName): Partial<Record<ClassName, string[]>> | undefined;
  /** RTT of `link` just before step `index`. */
  rttMsAt(index: number, link: string): number | undefined;
  /** Undefined where per-packet loss is not known (iperf3). */
  lostBetween(className: ClassName, fromMs: number, toMs: number): number | undefined;
}

export function describeStep(step: ScenarioStep): string {
  const dir = step.direction === 'both' ? '' : ` (${step.direction} only)`;
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
    const first = inWindow.find((e) => (fault ? isBadNews(e, step.link) : isGoodNews(e, step.link)));
    const rtt = input.rttMsAt(idx, step.link) ?? 0;
    const classes: Partial<Record<ClassName, StepClassResult>> = {};
    for (const c of input.classes) {
      const sites = (['a', 'b'] as const).filter((s) => input.activeLinksAt(idx, s)?.[c]?.includes(step.link) ?? false);
      const onLink = sites.length > 0;
      if (fault) {
        if (!onLink) {
          classes[c] = { onLink, movedMs: undefined, from: undefined, to: undefined, lostDuringSwitch: undefined };
          continue;
        }
        let worst = 0;
        let from: string | undefined;
        let to: string | undefined;
        for (const s of sites) {
          const mv = inWindow.find((e) => {
            if (e.site !== s || e.kind !== 'flowMoved') return false;
            const m = parseFlowMove(e.message);
            return m !== undefined && m.className === c && m.from.includes(step.link) && !m.to.includes(step.link);
          });
          if (!mv) {
            worst = Infinity;
            continue;
          }
          const m = parseFlowMove(mv.message)!;
          from ??= m.from.join('+');
          to ??= m.to.join('+');
          worst = Math.max(worst, mv.atMs - step.atMs);
        }
        const until = Number.isFinite(worst) ? step.atMs + worst + rtt : windowEnd;
        classes[c] = { onLink, movedMs: worst, from, to, lostDuringSwitch: input.lostBetween(c, step.atMs, until) };
      } else {
        const mv = inWindow.find((e) => {
          if (e.kind !== 'flowMoved') return false;
          const m = parseFlowMove(e.message);
          return m !== undefined && m.className === c && m.to.includes(step.link) && !m.from.includes(step.link);
        });
        const m = mv ? parseFlowMove(mv.message) : undefined;
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
