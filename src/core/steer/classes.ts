/**
 * Traffic classes and their policies. Classes come from the inner DSCP with RFC 4594's
 * service-class defaults; policies say what each class needs (SLA) and how to carry it.
 */

export const CLASS_NAMES = ['control', 'voice', 'video', 'signaling', 'business', 'default', 'bulk'] as const;
export type ClassName = (typeof CLASS_NAMES)[number];
export type ClassId = number; // index into CLASS_NAMES

/**
 * best / balance / duplicate: flows stick to their path(s). bond (issue 17): the packets of one
 * flow spread over the usable paths (steer/bond.ts) and the receiver puts them back in order
 * (steer/reseq.ts); never for voice (config.ts rejects it: resequencing holds packets).
 */
export type Strategy = 'best' | 'balance' | 'duplicate' | 'bond';
export const STRATEGIES: readonly Strategy[] = ['best', 'balance', 'duplicate', 'bond'];
/**
 * Classes that may not bond (config.ts says why): the bond_seq's class bits rely on it too (never
 * 0 on the wire, peer-bond.ts).
 */
export const NO_BOND_CLASSES: readonly string[] = ['control', 'voice'];
export type CostTier = 'primary' | 'overflow' | 'backup';
export const COST_TIERS: readonly CostTier[] = ['primary', 'overflow', 'backup'];

export interface Sla {
  /** Highest acceptable one-way loss on the path (the direction we send in). */
  lossRatio: number;
  /** Highest acceptable round-trip time. */
  rttMs: number;
  /** Highest acceptable RFC 3550 jitter. */
  jitterMs: number;
}

export interface ClassPolicy {
  name: ClassName;
  sla: Sla;
  strategy: Strategy;
  /** Outer DSCP put on this class's underlay packets. */
  outerDscp: number;
  /**
   * strategy bond: the largest one-way delay difference a path may have to the fastest one and
   * still be in the bond (default BOND_DEFAULT_MAX_DELAY_GAP_MS); the receiver holds packets about
   * that long waiting for the slower paths' ones.
   */
  bondMaxDelayGapMs?: number;
  /**
   * strategy bond: the receiver holds each bonded packet for the slowest member's extra one-way
   * delay (steer/equalize.ts), so the class's delay is the same over every path (TCP's minimum RTT
   * is its RTT at full rate); the sender's scheduler then fills paths by rate.
   */
  bondEqualizeDelay?: boolean;
}

/** RFC 4594 figure 3 DSCPs -> our seven classes. */
export function classOfDscp(dscp: number): ClassId {
  switch (dscp) {
    case 48: // CS6 network control
    case 56: // CS7
      return 0;
    case 46: // EF telephony
    case 44: // VOICE-ADMIT
    case 40: // CS5 (broadcast video / realtime interactive in 4594; treated as realtime here)
      return 1;
    case 34: // AF41 multimedia conferencing
    case 36:
    case 38:
    case 32: // CS4 real-time interactive
      return 2;
    case 24: // CS3 signaling
      return 3;
    case 18: // AF21 low-latency data
    case 20:
    case 22:
    case 26: // AF31 multimedia streaming
    case 28:
    case 30:
    case 16: // CS2 OAM
      return 4;
    case 10: // AF11 high-throughput data
    case 12:
    case 14:
    case 8: // CS1 low-priority data
      return 6;
    default:
      return 5;
  }
}

/** Defaults: SLAs from ITU-T G.114 / Cisco SD-WAN app-route defaults, loosened for bulk. */
export const DEFAULT_POLICIES: readonly ClassPolicy[] = [
  { name: 'control', sla: { lossRatio: 0.05, rttMs: 1000, jitterMs: 500 }, strategy: 'duplicate', outerDscp: 48 },
  { name: 'voice', sla: { lossRatio: 0.01, rttMs: 300, jitterMs: 30 }, strategy: 'best', outerDscp: 46 },
  { name: 'video', sla: { lossRatio: 0.02, rttMs: 400, jitterMs: 50 }, strategy: 'best', outerDscp: 34 },
  { name: 'signaling', sla: { lossRatio: 0.03, rttMs: 600, jitterMs: 200 }, strategy: 'best', outerDscp: 24 },
  { name: 'business', sla: { lossRatio: 0.03, rttMs: 600, jitterMs: 200 }, strategy: 'balance', outerDscp: 18 },
  { name: 'default', sla: { lossRatio: 0.1, rttMs: 1500, jitterMs: 500 }, strategy: 'balance', outerDscp: 0 },
  { name: 'bulk', sla: { lossRatio: 0.15, rttMs: 3000, jitterMs: 1000 }, strategy: 'balance', outerDscp: 8 },
];

/** Metrics of a path as steering sees them. Undefined metrics are "not yet known": treated as OK. */
export interface PathMetrics {
  txLossRatio: number | undefined;
  rttMs: number | undefined;
  jitterMs: number;
}

/**
 * First SLA breach of `m` against `sla`, in words ("loss 4.1% > 1%"), or undefined when within.
 * `slack` < 1 tightens the thresholds: a flow returns to SLA only below slack x threshold
 * (hysteresis, so a metric hovering at the threshold does not make flows flap).
 */
export function slaBreach(m: PathMetrics, sla: Sla, slack = 1): string | undefined {
  if (m.txLossRatio !== undefined && m.txLossRatio > sla.lossRatio * slack) {
    return `loss ${pct(m.txLossRatio)} > ${pct(sla.lossRatio * slack)}`;
  }
  if (m.rttMs !== undefined && m.rttMs > sla.rttMs * slack) return `rtt ${m.rttMs.toFixed(0)} ms > ${(sla.rttMs * slack).toFixed(0)} ms`;
  if (m.jitterMs > sla.jitterMs * slack) return `jitter ${m.jitterMs.toFixed(1)} ms > ${(sla.jitterMs * slack).toFixed(1)} ms`;
  return undefined;
}

function pct(r: number): string {
  const p = r * 100;
  return `${p < 10 ? p.toFixed(1) : p.toFixed(0)}%`;
}
