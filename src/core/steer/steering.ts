/**
 * Steering of one peer: its flow table, SLA judgement per (path, class) and flow moves.
 *
 * Stages (called by the Peer):
 *   flowFor(now, hash, class)   a packet's flow: sticky path(s), chosen by select.ts when new
 *   evaluateSla(now)            every probe interval: SLA per class per path with hysteresis;
 *                               flows leave a breaching path (one event per class and move)
 *   onTransition(now, path, t)  a path's state changed (DOWN/DRAINED: move its flows; back UP:
 *                               take flows back from worse tiers or clearly worse paths)
 *   resteer(now, which, why)    re-chooses paths for the flows matching `which`
 *
 * SLA rules (each measured; see docs/STEERING.md):
 * - a loss breach must show over 1 s AND 3 s, needs MIN_LOST_FOR_SLA losses in the window, and
 *   the loss must be surely (95% lower confidence bound) above the re-entry line over 3 s or 10 s
 *   (or, a sudden jump, at 99% over the last second above 1.5x the line, or above the line after
 *   a clean 9 s);
 * - FEC credit (the loss after FEC is judged) while the loss is not surely over 6x the SLA's;
 * - re-entry is judged only on evidence gathered after the breach, over 5 s, then 10 s, then 20 s
 *   as a path keeps failing: the loss's 84% upper confidence bound must be under the SLA;
 * - with no path in SLA, the least bad is judged over 30 s with every loss counted;
 * - a recovered path takes flows back from an out-of-SLA path only if it is no worse over 30 s.
 */
import { FLOW_IDLE_TIMEOUT_MS, MAX_FLOWS } from '../constants.ts';
import type { EventFields } from '../events.ts';
import { formatFlowTuple, type InnerInfo } from '../inner.ts';
import type { Rng } from '../rng.ts';
import { FlowTable } from './flow-table.ts';
import type { RuleRef } from './rules.ts';
import { effectiveState, pathMetrics, pathName, pathUsable, type PathRuntime } from '../pathmon/path.ts';
import { LONG_WINDOW_MS, SHORT_WINDOW_MS } from '../pathmon/path-stats.ts';
import { lossLowerBound, lossUpperBound } from '../pathmon/loss-bounds.ts';
import type { PathTransition } from '../pathmon/path-state.ts';
import type { BondShareSnapshot, EdgeEventKind, FlowSnapshot } from '../types.ts';
import { CLASS_NAMES, slaBreach, type ClassPolicy, type CostTier, type PathMetrics, type Sla } from './classes.ts';
import { pathScore, selectPaths, type PathCandidate } from './select.ts';

/** Hysteresis: a path that left a class's SLA comes back only under this fraction of each threshold. */
const SLA_REENTRY_SLACK = 0.8;
/**
 * Re-entry into a class's SLA is judged only on what happened after the breach, over a window
 * that grows with how often the path left that SLA lately: 5 s after one breach, then 10 s, then
 * 20 s. Without it, a path with bursty loss (LTE's Gilbert-Elliott bursts) re-entered on a window
 * that still held its clean pre-breach seconds, took voice back and broke again a second later.
 */
const SLA_REENTRY_BASE_MS = 5000;
const SLA_REENTRY_MAX_MS = 20_000;
const SLA_EXIT_HALF_LIFE_MS = 60_000;
/** Second, longer window a loss breach must also show before a path leaves a class's SLA. */
const SLA_CONFIRM_WINDOW_MS = 3000;
/**
 * Cap on the packets re-entry wants as evidence: a tight SLA (0.1% would ask for 1,870 packets
 * without a loss, 187 s of an idle path's 10 probes a second) is judged against the bound 400
 * clean packets give (0.47%).
 */
const SLA_REENTRY_MAX_PACKETS = 400;
/**
 * Confidence of the evidence (z, one-sided: 1 = 84%, 1.645 = 95%; Wilson bounds with continuity
 * correction, pathmon/loss-bounds.ts). A loss exit needs the loss surely (95%) above the re-entry
 * line over the last 3 s or 10 s; re-entry needs it likely (84%) under the SLA since the breach.
 * Measured on gray-failure (loss in steps 0.5, 0.9, 1.3, 2, 1.3, 0.9, 0.5, 0.2% around voice's 1%,
 * seeds 1-20): 24-48 voice moves on 16 of 20 seeds with point estimates; 16 (one exit and one
 * return per flow) on all 20 with these.
 */
const SLA_EXIT_CONFIDENCE_Z = 1.645;
const SLA_REENTRY_CONFIDENCE_Z = 1;
/** The longer window a loss exit's confidence may come from (1.3% is sure over 10 s, not over 3 s). */
const SLA_EXIT_EVIDENCE_LONG_MS = 10_000;
/**
 * A sudden jump: the last second's loss sure at 99% above SLA_JUMP_FACTOR x the re-entry line.
 * (lte-jitter-storm's late packets read 3-5% loss in the storm's first half second: the 3 s window
 * cannot be sure of that yet.)
 */
const SLA_JUMP_CONFIDENCE_Z = 2.33;
/** ...or above the line itself when the 9 s before it were clean (under this fraction of the line). */
const SLA_JUMP_CLEAN_FRACTION = 0.25;
const SLA_JUMP_FACTOR = 1.5;
/** A recovered path takes back 'best' flows only if it is clearly better (score ratio). */
const REVERT_SCORE_RATIO = 0.7;
/** FEC-aware SLA: raw loss up to this many times the class's SLA loss may be repaired by FEC. */
const FEC_CREDIT_MAX_FACTOR = 6;
/** Flows listed in snapshot().topFlows. */
export const TOP_FLOWS = 10;

export interface FlowEntry {
  /** The flow's keyed hash (flow-table.ts: secret per start), which also picks its path in `balance`. */
  hash: number;
  classId: number;
  path: number;
  /** Second path of a duplicated class, or -1. */
  path2: number;
  lastSeenMs: number;
  createdMs: number;
  packets: number;
  bytes: number;
  /** The application rule that classified the flow's latest packet (undefined: its DSCP did). */
  rule: RuleRef | undefined;
  /** strategy bond: packets sent per path id (the flow's share per path in `braid status`). */
  bondPathPackets?: number[];
  /**
   * Rebalancing (steer/rebalance.ts): the path this flow moves to once it has been idle for
   * moveGapMs (longer than the paths' delay difference: TCP sees no reordering), or -1.
   */
  movePath: number;
  moveGapMs: number;
}

/** What steering needs from its peer. */
export interface SteerHost {
  readonly peerName: string;
  readonly paths: readonly PathRuntime[];
  policies(): readonly ClassPolicy[];
  emit(atMs: number, kind: EdgeEventKind, fields: EventFields): void;
  /** Spare uplink capacity of the path's link for `balance` (0 = unknown). */
  spareBps(p: PathRuntime): number;
  /**
   * FEC of the class towards this peer, if any: the residual loss a path's raw loss leaves at the
   * parity the adaptation would choose (k+m), for the FEC-aware SLA; undefined without FEC.
   */
  fecView?(classId: number, lossRatio: number, nowMs: number): { residualRatio: number; k: number; m: number } | undefined;
  /** A path's state changed: the peer re-arms its path timers. */
  pathStateChanged(nowMs: number): void;
}

const tierRank = (t: CostTier): number => (t === 'primary' ? 0 : t === 'overflow' ? 1 : 2);

export class Steering {
  /**
   * Flows by 5-tuple under a keyed hash with LRU eviction (flow-table.ts): a LAN host can neither
   * collide with a victim's flow nor push busy long-lived flows out by opening new ones.
   */
  readonly flows: FlowTable<FlowEntry>;
  readonly classMoves: number[] = CLASS_NAMES.map(() => 0);
  flowMoves = 0;
  /** Flows moved by rebalancing (steer/rebalance.ts), part of flowMoves. */
  rebalanceMoves = 0;
  /** When a path last came back (hold-down or SLA re-entry): rebalancing runs for a while after. */
  lastRecoveryMs = -Infinity;

  constructor(
    private readonly host: SteerHost,
    rng: Rng,
    maxFlows = MAX_FLOWS,
    flowIdleTimeoutMs = FLOW_IDLE_TIMEOUT_MS,
  ) {
    this.flows = new FlowTable<FlowEntry>(rng, maxFlows, flowIdleTimeoutMs);
  }

  /** The packet's flow entry, created or re-steered as needed. Hot path: one keyed lookup. */
  flowFor(nowMs: number, packet: Uint8Array, info: InnerInfo, classId: number, rule?: RuleRef): FlowEntry {
    let flow = this.flows.lookup(nowMs, packet, info);
    if (flow && flow.classId === classId) {
      if (flow.movePath >= 0 && nowMs - flow.lastSeenMs >= flow.moveGapMs) this.applyMove(nowMs, flow);
      flow.lastSeenMs = nowMs;
      flow.rule = rule;
      return flow;
    }
    // A flow starts (new, or moved to another class): the rule that chose its class counts it.
    if (rule) rule.flows++;
    const hash = flow ? flow.hash : this.flows.hashOf(packet, info);
    const sel = selectPaths(this.candidates(nowMs, classId), this.host.policies()[classId]!.strategy, hash);
    if (flow) {
      // The same 5-tuple changed DSCP: treat it as its new class.
      flow.classId = classId;
      flow.path = sel.primary;
      flow.path2 = sel.secondary;
      flow.lastSeenMs = nowMs;
      flow.rule = rule;
      return flow;
    }
    flow = { hash, classId, path: sel.primary, path2: sel.secondary, lastSeenMs: nowMs, createdMs: nowMs, packets: 0, bytes: 0, movePath: -1, moveGapMs: 0, rule };
    this.flows.insert(nowMs, packet, info, flow);
    return flow;
  }

  /** A rebalancing move whose idle gap came: the flow takes its new path now (one event). */
  private applyMove(nowMs: number, flow: FlowEntry): void {
    const to = flow.movePath;
    flow.movePath = -1;
    const p = this.host.paths[to];
    if (p === undefined || !pathUsable(p) || flow.path2 >= 0 || to === flow.path) return;
    const from = this.pathLabel(flow.path, -1);
    flow.path = to;
    this.flowMoves++;
    this.rebalanceMoves++;
    this.classMoves[flow.classId]!++;
    const idleMs = nowMs - flow.lastSeenMs;
    this.host.emit(nowMs, 'flowMoved', { peer: this.host.peerName, class: CLASS_NAMES[flow.classId]!, from, to: pathName(p), reason: `rebalance: ${pathName(p)} under its share, moved after ${idleMs.toFixed(1)} ms idle`, flows: 1 });
  }

  /** Chooses the flow's paths again without an event (it had none to leave); returns its path. */
  reselect(nowMs: number, flow: FlowEntry): number {
    const sel = selectPaths(this.candidates(nowMs, flow.classId), this.host.policies()[flow.classId]!.strategy, flow.hash);
    flow.path = sel.primary;
    flow.path2 = sel.secondary;
    return flow.path;
  }

  sweep(nowMs: number): void {
    this.flows.sweep(nowMs);
  }

  /** A path is going away (peer change): its flows move now. */
  forgetPath(nowMs: number, pathId: number, reason: string): void {
    this.resteer(nowMs, (f) => f.path === pathId || f.path2 === pathId, reason);
  }

  /**
   * Paths as selection sees them. When no usable path meets the class's SLA, selection picks the
   * least bad, judged over the long window with every loss counted.
   */
  candidates(nowMs: number, classId: number): PathCandidate[] {
    // Paths with nowhere to send (a hub that has not learned this one yet) are no candidates.
    const paths = this.host.paths.filter((p) => p.hasEndpoint);
    const anyInSla = paths.some((p) => p.inSla[classId] && pathUsable(p));
    return paths.map((p) => ({
      id: p.id,
      usable: pathUsable(p),
      inSla: p.inSla[classId]!,
      tier: p.tier,
      metrics: anyInSla ? pathMetrics(nowMs, p, SHORT_WINDOW_MS) : pathMetrics(nowMs, p, LONG_WINDOW_MS, 0),
      spareBps: this.host.spareBps(p),
      lastHeardMs: p.sm.lastHeardMs ?? -Infinity,
    }));
  }

  /**
   * Re-chooses paths for the flows matching `which`. One event per (class, from -> to) with the
   * reason, e.g. "voice: mpls -> inet (mpls loss 4.1% > 1%) [3 flows]". Returns flows moved.
   */
  resteer(nowMs: number, which: (f: FlowEntry) => boolean, reason: string, onlyClass = -1): number {
    const groups = new Map<string, { classId: number; from: string; to: string; n: number }>();
    const cands = new Map<number, PathCandidate[]>();
    const policies = this.host.policies();
    let moved = 0;
    for (const f of this.flows.values()) {
      if ((onlyClass >= 0 && f.classId !== onlyClass) || !which(f)) continue;
      let c = cands.get(f.classId);
      if (!c) cands.set(f.classId, (c = this.candidates(nowMs, f.classId)));
      const sel = selectPaths(c, policies[f.classId]!.strategy, f.hash);
      if (sel.primary === f.path && sel.secondary === f.path2) continue;
      const from = this.pathLabel(f.path, f.path2);
      f.path = sel.primary;
      f.path2 = sel.secondary;
      const to = this.pathLabel(f.path, f.path2);
      moved++;
      this.classMoves[f.classId]!++;
      const key = `${f.classId}|${from}|${to}`;
      const g = groups.get(key);
      if (g) g.n++;
      else groups.set(key, { classId: f.classId, from, to, n: 1 });
    }
    this.flowMoves += moved;
    for (const g of groups.values()) {
      this.host.emit(nowMs, 'flowMoved', { peer: this.host.peerName, class: policies[g.classId]!.name, from: g.from, to: g.to, reason, flows: g.n });
    }
    return moved;
  }

  pathLabel(a: number, b: number): string {
    const n = (i: number): string => {
      const p = this.host.paths[i];
      return p ? pathName(p) : 'none';
    };
    return b >= 0 ? `${n(a)}+${n(b)}` : n(a);
  }

  /** A path changed state: move flows off it, or let it take flows back. */
  onTransition(nowMs: number, p: PathRuntime, t: PathTransition): void {
    if (!t) return;
    const kind: EdgeEventKind = t.to === 'down' || t.to === 'drained' ? 'linkDown' : t.to === 'up' && t.from !== 'degraded' ? 'linkUp' : 'pathState';
    const name = pathName(p);
    this.host.emit(nowMs, kind, { peer: this.host.peerName, link: name, from: t.from, to: t.to, reason: t.reason });
    if (t.to === 'down' || t.to === 'drained') {
      this.resteer(nowMs, (f) => f.path === p.id || f.path2 === p.id, `${name} ${t.to === 'down' ? `down: ${t.reason}` : 'drained'}`);
    } else if (t.to === 'up' && t.from !== 'degraded') {
      // What was lost while the path was down is history (DOWN already acted on it): judge its
      // loss afresh. The hold-down was this path's re-entry test, so its SLA standing starts clean
      // too, except for RTT and jitter, which are current and still count.
      p.stats.resetTx();
      const policies = this.host.policies();
      for (let c = 0; c < policies.length; c++) {
        if (p.inSla[c] || slaBreach({ txLossRatio: undefined, rttMs: p.stats.srttMs, jitterMs: p.stats.txJitterMs(nowMs) }, policies[c]!.sla, SLA_REENTRY_SLACK)) continue;
        p.inSla[c] = true;
        p.breach[c] = undefined;
      }
      this.onPathRecovered(nowMs, p);
    }
    this.host.pathStateChanged(nowMs);
  }

  /**
   * The peer's hello announced its link's cost tier (`wireTier`: 0 primary, 1 overflow, 2 backup;
   * other values read as primary). The path's tier becomes the worse of its two links': flows on a
   * path that got worse leave it for a better tier within their SLA; a path that got better takes
   * flows back from worse tiers.
   */
  onPeerTier(nowMs: number, p: PathRuntime, wireTier: number): void {
    const peerTier = wireTier === 1 ? 'overflow' : wireTier === 2 ? 'backup' : 'primary';
    p.peerTier = peerTier;
    const tier = tierRank(peerTier) > tierRank(p.linkTier) ? peerTier : p.linkTier;
    if (tier === p.tier) return;
    const worse = tierRank(tier) > tierRank(p.tier);
    const was = p.tier;
    p.tier = tier;
    const name = pathName(p);
    const text = `${this.host.peerName} ${name}: cost tier ${was} -> ${tier} (the peer's link is ${peerTier}, ours ${p.linkTier})`;
    this.host.emit(nowMs, 'pathState', { peer: this.host.peerName, link: name, from: was, to: tier, text });
    if (!worse) return this.onPathRecovered(nowMs, p);
    const betterInSla = (c: number): boolean => this.host.paths.some((q) => q.hasEndpoint && pathUsable(q) && q.inSla[c] && tierRank(q.tier) < tierRank(tier));
    this.resteer(nowMs, (f) => (f.path === p.id || f.path2 === p.id) && betterInSla(f.classId), `${name} reaches the peer's ${peerTier} link`);
  }

  /** Every probe interval: SLA per class per path, with hysteresis; moves flows off breaches. */
  evaluateSla(nowMs: number): void {
    const policies = this.host.policies();
    for (const p of this.host.paths) {
      if (!p.hasEndpoint) continue;
      const short = pathMetrics(nowMs, p, SHORT_WINDOW_MS);
      // Loss leaves the SLA only when the last second AND the last 3 s both exceed the threshold:
      // 3 random losses in one second read as 2.3% on a 0.2% cable path; over 3 s they stay under 1%.
      const confirm = pathMetrics(nowMs, p, SLA_CONFIRM_WINDOW_MS);
      const exitView: PathMetrics =
        short.txLossRatio !== undefined && confirm.txLossRatio !== undefined && confirm.txLossRatio < short.txLossRatio ? { ...short, txLossRatio: confirm.txLossRatio } : short;
      // ...and only when the loss is, with confidence, above the re-entry line over the last 3 s
      // or 10 s (lossSureAbove): 7 of 630 packets read 1.1% on a path losing 0.5%; 1.3% is sure
      // over 10 s. A sudden jump stays quicker: the last second's loss, sure at 99% above 1.5 x the
      // line (1.2% for voice: 7 of 210 packets, which a path losing 0.9% shows 0.3% of the time).
      const lossSureAbove = Math.max(
        lossLowerBoundOver(nowMs, p, SLA_CONFIRM_WINDOW_MS),
        lossLowerBoundOver(nowMs, p, SLA_EXIT_EVIDENCE_LONG_MS),
        lossLowerBoundOver(nowMs, p, SHORT_WINDOW_MS, SLA_JUMP_CONFIDENCE_Z) / SLA_JUMP_FACTOR,
      );
      const jump = lossJump(nowMs, p);
      let worst: string | undefined;
      for (let c = 0; c < policies.length; c++) {
        const sla = policies[c]!.sla;
        if (p.inSla[c]) {
          const line = sla.lossRatio * SLA_REENTRY_SLACK;
          const sure = lossSureAbove > line || (jump.low > line && jump.before <= line * SLA_JUMP_CLEAN_FRACTION);
          const view = exitView.txLossRatio !== undefined && exitView.txLossRatio > line && !sure ? { ...exitView, txLossRatio: line } : exitView;
          const breach = this.judge(nowMs, view, sla, c, 1, lossSureAbove);
          if (breach) {
            p.inSla[c] = false;
            p.breach[c] = breach;
            p.slaOutAtMs[c] = nowMs;
            p.slaExits[c] = this.slaExitsNow(nowMs, p, c) + 1;
            p.slaExitsAtMs[c] = nowMs;
            const moved = this.resteer(nowMs, (f) => f.classId === c && (f.path === p.id || f.path2 === p.id), `${pathName(p)} ${breach}`, c);
            if (moved === 0) this.host.emit(nowMs, 'sla', { peer: this.host.peerName, class: policies[c]!.name, link: pathName(p), reason: `out of SLA (${breach})` });
          }
        } else {
          const windowMs = this.slaReentryWindowMs(nowMs, p, c);
          const sinceMs = nowMs - p.slaOutAtMs[c]!;
          if (sinceMs >= windowMs && !this.judge(nowMs, short, sla, c, SLA_REENTRY_SLACK) && this.reentryEvidence(nowMs, p, sla, windowMs, sinceMs, c)) {
            p.inSla[c] = true;
            p.breach[c] = undefined;
            this.host.emit(nowMs, 'sla', { peer: this.host.peerName, class: policies[c]!.name, link: pathName(p), reason: 'back within SLA' });
            if (pathUsable(p)) this.onPathRecovered(nowMs, p, c);
          }
        }
        if (!p.inSla[c] && worst === undefined) worst = `${policies[c]!.name} SLA: ${p.breach[c]}`;
      }
      this.onTransition(nowMs, p, p.sm.setDegraded(worst !== undefined, worst ?? 'every class within SLA'));
    }
  }

  /**
   * A class with FEC judges a path on the loss FEC leaves (DESIGN: a path stays usable for voice
   * while FEC keeps it within SLA); the breach names both figures. Without FEC: the raw metrics.
   */
  private judge(nowMs: number, m: PathMetrics, sla: Sla, classId: number, slack = 1, lossSureAbove = Infinity): string | undefined {
    const loss = m.txLossRatio;
    // FEC earns a path credit only while it is not leaving the SLA far behind (at most
    // FEC_CREDIT_MAX_FACTOR x the SLA's loss: the residual model assumes random loss, and heavy loss
    // on a path is rarely random), and only to stay on it: re-entry is judged on the raw loss, so a
    // path that lost a class does not take it back on a model's promise. Over the cap means surely
    // over it (`lossSureAbove`, the exit's 95% lower bound): 3% random loss read 7.4% over the first
    // 0.4 s of a call (fec-repairable seed 20), and voice left a path FEC was repairing.
    const cap = sla.lossRatio * FEC_CREDIT_MAX_FACTOR;
    const credit = slack === 1 && loss !== undefined && loss > 0 && (loss <= cap || lossSureAbove <= cap);
    const fec = credit && this.host.fecView ? this.host.fecView(classId, loss!, nowMs) : undefined;
    if (fec === undefined || fec.m === 0) return slaBreach(m, sla, slack);
    const breach = slaBreach({ ...m, txLossRatio: fec.residualRatio }, sla, slack);
    if (breach === undefined || !breach.startsWith('loss')) return breach;
    return `loss ${pctOf(loss!)}, ${pctOf(fec.residualRatio)} after FEC ${fec.k}+${fec.m} > ${pctOf(sla.lossRatio * slack)}`;
  }

  /** Live SLA change of class `c`: every path is judged afresh. */
  resetSla(c: number): void {
    for (const p of this.host.paths) {
      p.inSla[c] = true;
      p.breach[c] = undefined;
      p.slaExits[c] = 0;
    }
  }

  /**
   * Has path `p` shown, since it left the SLA, that it is within it? Loss: over some window since
   * the breach at least `windowMs` long, the loss's upper confidence bound (SLA_REENTRY_CONFIDENCE_Z)
   * is under the SLA's loss: 0 lost of 186 packets, 1 of 332, 5 of 839 for voice's 1% (a path
   * losing 0.9% shows 0 of 186 about one time in five; the point estimate this replaced, under
   * 0.8% over 125 packets, passed it 70% of the time). RTT and jitter: under the slack thresholds.
   */
  private reentryEvidence(nowMs: number, p: PathRuntime, sla: Sla, windowMs: number, sinceMs: number, classId: number): boolean {
    const bound = Math.max(sla.lossRatio, lossUpperBound(0, SLA_REENTRY_MAX_PACKETS, SLA_REENTRY_CONFIDENCE_Z));
    if (p.stats.txLossBestUpperBound(nowMs, windowMs, Math.min(sinceMs, LONG_WINDOW_MS), SLA_REENTRY_CONFIDENCE_Z) > bound) return false;
    return !this.judge(nowMs, { txLossRatio: 0, rttMs: p.stats.srttMs, jitterMs: p.stats.txJitterMs(nowMs) }, sla, classId, SLA_REENTRY_SLACK);
  }

  private slaExitsNow(nowMs: number, p: PathRuntime, c: number): number {
    const ageMs = Math.max(0, nowMs - p.slaExitsAtMs[c]!);
    return p.slaExits[c]! * Math.pow(0.5, ageMs / SLA_EXIT_HALF_LIFE_MS);
  }

  private slaReentryWindowMs(nowMs: number, p: PathRuntime, c: number): number {
    const exits = Math.max(1, Math.round(this.slaExitsNow(nowMs, p, c)));
    return Math.min(SLA_REENTRY_MAX_MS, SLA_REENTRY_BASE_MS * 2 ** (exits - 1));
  }

  /**
   * A path came back (after hold-down, or into a class's SLA): take back flows on worse tiers or
   * clearly worse paths. A flow on a usable path that is itself out of SLA moves only if the
   * returning path has also been the better one over the long window.
   */
  onPathRecovered(nowMs: number, p: PathRuntime, onlyClass = -1): void {
    this.lastRecoveryMs = nowMs;
    const paths = this.host.paths;
    const policies = this.host.policies();
    const recScore = pathScore(pathMetrics(nowMs, p, SHORT_WINDOW_MS));
    const longScores = new Float64Array(paths.length).fill(NaN);
    const longScore = (q: PathRuntime): number => {
      let v = longScores[q.id]!;
      if (Number.isNaN(v)) v = longScores[q.id] = pathScore(pathMetrics(nowMs, q, LONG_WINDOW_MS, 0));
      return v;
    };
    this.resteer(
      nowMs,
      (f) => {
        // A flow on a dead path takes any path that comes back, in its SLA or not (resteer picks the
        // least bad): it went DOWN with nowhere to go, and nothing else would move it again.
        const cur = paths[f.path];
        if (cur === undefined || !pathUsable(cur)) return true;
        if (!p.inSla[f.classId]) return false;
        if (!cur.inSla[f.classId]) return longScore(p) <= longScore(cur);
        if (tierRank(cur.tier) > tierRank(p.tier)) return true;
        const strategy = policies[f.classId]!.strategy;
        if (strategy === 'duplicate') return f.path2 < 0;
        if (strategy === 'best') return recScore < pathScore(pathMetrics(nowMs, cur, SHORT_WINDOW_MS)) * REVERT_SCORE_RATIO;
        return false;
      },
      onlyClass >= 0 ? `${pathName(p)} back within ${policies[onlyClass]!.name} SLA` : `${pathName(p)} recovered`,
      onlyClass,
    );
  }

  /** The TOP_FLOWS flows that sent the most bytes: one pass keeping a small sorted list. */
  topFlows(nowMs: number, peer: string | undefined): FlowSnapshot[] {
    const top: [Uint8Array, FlowEntry][] = [];
    for (const e of this.flows.entries()) {
      const f = e[1];
      if (top.length === TOP_FLOWS && f.bytes <= top[TOP_FLOWS - 1]![1].bytes) continue;
      let i = top.length < TOP_FLOWS ? top.length : TOP_FLOWS - 1;
      top[i] = e;
      while (i > 0 && top[i - 1]![1].bytes < f.bytes) {
        top[i] = top[i - 1]!;
        top[--i] = e;
      }
    }
    return top.map(([tuple, f]) => {
      const activeMs = f.lastSeenMs - f.createdMs;
      return {
        flow: formatFlowTuple(tuple),
        class: CLASS_NAMES[f.classId]!,
        ...(f.rule !== undefined ? { rule: f.rule.name } : {}),
        links: this.pathLabel(f.path, f.path2),
        packets: f.packets,
        bytes: f.bytes,
        ageMs: Math.max(0, nowMs - f.createdMs),
        rateBps: activeMs >= 1 ? Math.round((f.bytes * 8 * 1000) / activeMs) : 0,
        ...(peer !== undefined ? { peer } : {}),
        ...(f.bondPathPackets !== undefined ? { bond: { shares: this.bondShares(f.bondPathPackets) } } : {}),
      };
    });
  }

  /** A bonded flow's packets per path as shares (snapshot). */
  private bondShares(perPath: readonly number[]): BondShareSnapshot[] {
    let total = 0;
    for (const n of perPath) total += n;
    const out: BondShareSnapshot[] = [];
    perPath.forEach((n, id) => {
      const p = this.host.paths[id];
      if (n > 0 && p !== undefined) out.push({ link: pathName(p), packets: n, ratio: n / total });
    });
    return out;
  }

  /** Paths' states for snapshots (kept here so effectiveState has one home). */
  static stateOf(p: PathRuntime): ReturnType<typeof effectiveState> {
    return effectiveState(p);
  }
}

function pctOf(r: number): string {
  const p = r * 100;
  return `${p < 0.1 ? p.toFixed(3) : p < 10 ? p.toFixed(1) : p.toFixed(0)}%`;
}

/**
 * The last second against the 9 s before it: the last second's 99% lower bound on loss, and the
 * loss before (1 without data, so no jump is seen without a clean history).
 */
function lossJump(nowMs: number, p: PathRuntime): { low: number; before: number } {
  const last = p.stats.txLossCounts(nowMs, SHORT_WINDOW_MS);
  const all = p.stats.txLossCounts(nowMs, SLA_EXIT_EVIDENCE_LONG_MS);
  if (!last || !all || all.sent - last.sent < 10) return { low: 0, before: 1 };
  return { low: lossLowerBound(last.lost, last.sent, SLA_JUMP_CONFIDENCE_Z), before: Math.max(0, all.lost - last.lost) / (all.sent - last.sent) };
}

/** Lower confidence bound (at `z`) on the path's tx loss over `windowMs`; 0 without data. */
function lossLowerBoundOver(nowMs: number, p: PathRuntime, windowMs: number, z = SLA_EXIT_CONFIDENCE_Z): number {
  const c = p.stats.txLossCounts(nowMs, windowMs);
  return c ? lossLowerBound(c.lost, c.sent, z) : 0;
}
