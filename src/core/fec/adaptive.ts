/**
 * Adaptive FEC: how many parity shards m a class's groups of k need, from the measured loss of
 * the paths in use and the class's target residual loss (DESIGN.md "FEC", "Adaptive").
 *
 * The math
 * --------
 * A group is k data + m parity shards and is fully delivered iff at most m of its n = k + m
 * shards are lost (any k shards rebuild the data). With each shard lost independently with
 * probability p, the number lost X ~ Binomial(n, p), and
 *
 *   P(group fails) = P(X > m) = sum_{j=m+1..n} C(n, j) p^j (1-p)^(n-j).
 *
 * We choose the smallest m with P(X > m) < target. This bounds the residual *packet* loss too:
 * given j shards lost, on average j*k/n of them are data, so
 *   residual = sum_{j>m} P(X=j) * (j/n) <= P(X > m),
 * i.e. the criterion is conservative by up to a factor n/(m+1).
 *
 * Example (test/core/fec/adaptive.test.ts): k = 8, p = 5%, target 0.1%:
 *   m=2: P(X>2 | n=10) = 1.15%;  m=3: P(X>3 | n=11) = 0.155%;  m=4: P(X>4 | n=12) = 0.018%  -> m = 4.
 *
 * Several paths: if the shards of a group are spread over paths with loss p_i in shares w_i, a
 * shard placed on path i with probability w_i is lost with probability p = sum w_i p_i, which is
 * again the binomial above. Deterministic round-robin placement instead gives a Poisson-binomial
 * count with the same mean; by Hoeffding (1956) its tail above the mean is no larger than the
 * binomial's, so using the weighted mean stays on the safe side for m >= n*p.
 *
 * What the binomial does not model: bursts. Internet and LTE loss is bursty (Gilbert-Elliott), so
 * losses within one group are positively correlated and the real failure rate is higher than
 * computed. The short flush deadline keeps a group's shards close in time, which is where bursts
 * hurt; spreading data and parity over different paths (the Edge's job) is the real remedy.
 *
 * Hysteresis: FEC turns on when loss reaches onAboveLossRatio and off only after loss stayed
 * below offBelowLossRatio for decreaseHoldMs; m rises at once when more is needed and falls only
 * after the lower need held for decreaseHoldMs (keeping the highest need seen meanwhile). So a
 * clean link does not pay parity (kcptun users measured FEC wasting 30-60% on clean links) and
 * a noisy estimate does not make m flap.
 *
 * Congestion: parity is extra load. If loss rose together with our own sending rate (and, when the
 * caller says, while the path's delay is inflated: a queue is building), the loss is likely our
 * own queue overflowing, and more parity would deepen it; then m is capped at congestionMaxM for
 * congestionHoldMs. The caller can also assert congestion itself (e.g. its own shaper dropping).
 */
import { FEC_MAX_K, FEC_MAX_M } from './limits.ts';

/** Loss above this is treated as this: FEC cannot help much there and the tail sum underflows. */
const MAX_MODELLED_LOSS_RATIO = 0.99;

/** P(X > m) for X ~ Binomial(n, p): the chance that more than m of n shards are lost. */
export function binomialTailAbove(n: number, p: number, m: number): number {
  if (m >= n) return 0;
  if (!(p > 0)) return 0;
  const q = Math.min(p, MAX_MODELLED_LOSS_RATIO);
  // pmf(j+1) = pmf(j) * (n-j)/(j+1) * q/(1-q), from pmf(0) = (1-q)^n; summing only the tail
  // keeps tiny probabilities exact instead of computing 1 - (almost 1).
  const ratio = q / (1 - q);
  let pmf = Math.pow(1 - q, n);
  let tail = 0;
  for (let j = 0; j <= n; j++) {
    if (j > m) tail += pmf;
    pmf *= ((n - j) / (j + 1)) * ratio;
  }
  return Math.min(1, tail);
}

/**
 * Expected fraction of a group's data packets that stay lost (the residual packet loss) for k+m
 * shards each lost with probability p: given j > m shards lost, j*k/n of them are data on
 * average and none can be rebuilt, so residual = sum_{j>m} P(X=j) * j / n.
 */
export function residualLossRatio(k: number, m: number, p: number): number {
  const n = k + m;
  if (!(p > 0)) return 0;
  const q = Math.min(p, MAX_MODELLED_LOSS_RATIO);
  const ratio = q / (1 - q);
  let pmf = Math.pow(1 - q, n);
  let sum = 0;
  for (let j = 0; j <= n; j++) {
    if (j > m) sum += (pmf * j) / n;
    pmf *= ((n - j) / (j + 1)) * ratio;
  }
  return Math.min(1, sum);
}

/**
 * What the target bounds: 'group' = P(group fails) (conservative by up to n/(m+1), the original
 * criterion); 'packet' = the expected residual packet loss (residualLossRatio), which is what a
 * class's "target residual loss" means and costs one parity shard less in common cases
 * (k = 16, p = 5%, target 0.1%: 'group' needs m = 5, 'packet' m = 4).
 */
export type ParityCriterion = 'group' | 'packet';

/**
 * The smallest m in 0..maxM meeting targetLossRatio for shard loss ratio lossRatio under the
 * criterion (default 'group': P(more than m of k+m shards lost) < target); maxM when even maxM
 * does not meet the target (best effort).
 */
export function requiredParity(k: number, lossRatio: number, targetLossRatio: number, maxM: number, criterion: ParityCriterion = 'group'): number {
  const mCap = Math.max(0, Math.min(maxM, FEC_MAX_M));
  if (!(lossRatio > 0)) return 0;
  for (let m = 0; m <= mCap; m++) {
    const miss = criterion === 'packet' ? residualLossRatio(k, m, lossRatio) : binomialTailAbove(k + m, lossRatio, m);
    if (miss < targetLossRatio) return m;
  }
  return mCap;
}

/**
 * m per group size for groups that flush early: out[k'] = requiredParity(k', ...) for k' in 1..k,
 * each at least 1 and at most maxM (out[0] unused). For FecEncoder.setParityTable.
 */
export function parityTable(k: number, lossRatio: number, targetLossRatio: number, maxM: number, criterion: ParityCriterion = 'group', out?: Uint8Array): Uint8Array {
  const table = out !== undefined && out.length >= k + 1 ? out : new Uint8Array(k + 1);
  for (let kk = 1; kk <= k; kk++) table[kk] = Math.max(1, requiredParity(kk, lossRatio, targetLossRatio, maxM, criterion));
  return table;
}

/**
 * Shard loss ratio over the paths a group is spread on: the share-weighted mean (equal shares by
 * default). Non-finite or negative inputs count as 0 loss / 0 share; ratios are clamped to 1.
 */
export function effectiveLossRatio(pathLossRatios: readonly number[], pathShares?: readonly number[]): number {
  let sum = 0;
  let weight = 0;
  for (let i = 0; i < pathLossRatios.length; i++) {
    const raw = pathLossRatios[i]!;
    const p = Number.isFinite(raw) && raw > 0 ? Math.min(raw, 1) : 0;
    const ws = pathShares === undefined ? 1 : pathShares[i];
    const w = ws !== undefined && Number.isFinite(ws) && ws > 0 ? ws : 0;
    sum += w * p;
    weight += w;
  }
  return weight > 0 ? sum / weight : 0;
}

export interface AdaptiveParityConfig {
  /** The class's k. */
  k: number;
  /** The class's target residual loss (bound on group failure probability), e.g. 0.001. */
  targetLossRatio: number;
  /** Most parity per group. Default min(k, FEC_MAX_M): at most 100% overhead. */
  maxM?: number;
  /** FEC turns off when loss stays below this for decreaseHoldMs. Default max(target, 0.1%). */
  offBelowLossRatio?: number;
  /** FEC turns on when loss reaches this. Default 2 x offBelowLossRatio. */
  onAboveLossRatio?: number;
  /** How long a lower need must hold before m falls (or FEC turns off). Default 5000 ms. */
  decreaseHoldMs?: number;
  /** Cap on m while congestion is suspected. Default 1. */
  congestionMaxM?: number;
  /** How long a congestion verdict holds after its last sign. Default 10000 ms. */
  congestionHoldMs?: number;
  /** What targetLossRatio bounds (see ParityCriterion). Default 'group'. */
  criterion?: ParityCriterion;
}

export interface AdaptiveParityInput {
  /** Loss ratio (0..1) measured on each path the class's groups use. */
  pathLossRatios: readonly number[];
  /** Share of the group's shards on each path; equal by default. */
  pathShares?: readonly number[];
  /** Our sending rate on those paths over the same interval; enables the built-in congestion test. */
  sendRateBps?: number;
  /** The caller's own congestion verdict (e.g. its own queue dropping); true forces the cap. */
  congested?: boolean;
  /**
   * Whether the paths' delay is inflated above their base RTT now (a queue is building). When
   * given, the built-in loss-with-rate test convicts only while it is true: random loss does not
   * queue, congestion does; and the first interval of a flow that starts on an already lossy
   * path (rate up from ~0, loss up from an unmeasured 0) would otherwise look like congestion.
   */
  delayInflated?: boolean;
}

/**
 * Loss that rose together with our sending rate is taken as self-inflicted congestion: loss
 * up by half and by at least 0.5 percentage points while our rate rose by 10% or more.
 */
const CONGESTION_LOSS_RISE_FACTOR = 1.5;
const CONGESTION_LOSS_RISE_MIN = 0.005;
const CONGESTION_RATE_RISE_FACTOR = 1.1;

/** Per-class m controller with hysteresis and congestion backoff. Time is an argument (sans-I/O). */
export class AdaptiveParity {
  readonly k: number;
  readonly targetLossRatio: number;
  readonly maxM: number;
  readonly offBelowLossRatio: number;
  readonly onAboveLossRatio: number;
  readonly decreaseHoldMs: number;
  readonly congestionMaxM: number;
  readonly congestionHoldMs: number;
  readonly criterion: ParityCriterion;

  private enabled = false;
  private currentM = 0;
  /** Since when the need has been below currentM (or loss below offBelow), and the most needed meanwhile. */
  private lowSinceMs: number | undefined;
  private neededDuringHold = 0;
  private congestedUntilMs = Number.NEGATIVE_INFINITY;
  private prevLossRatio: number | undefined;
  private prevSendRateBps: number | undefined;
  private lastLossRatio = 0;
  private lastNowMs = Number.NEGATIVE_INFINITY;

  constructor(config: AdaptiveParityConfig) {
    const { k, targetLossRatio } = config;
    if (!(Number.isInteger(k) && k >= 1 && k <= FEC_MAX_K)) throw new RangeError(`AdaptiveParity: k=${k}`);
    if (!(targetLossRatio > 0 && targetLossRatio < 1)) {
      throw new RangeError(`AdaptiveParity: targetLossRatio=${targetLossRatio} must be in (0, 1)`);
    }
    this.k = k;
    this.targetLossRatio = targetLossRatio;
    this.maxM = Math.min(config.maxM ?? k, FEC_MAX_M);
    this.offBelowLossRatio = config.offBelowLossRatio ?? Math.max(targetLossRatio, 0.001);
    this.onAboveLossRatio = config.onAboveLossRatio ?? 2 * this.offBelowLossRatio;
    this.decreaseHoldMs = config.decreaseHoldMs ?? 5000;
    this.congestionMaxM = Math.min(config.congestionMaxM ?? 1, this.maxM);
    this.congestionHoldMs = config.congestionHoldMs ?? 10_000;
    this.criterion = config.criterion ?? 'group';
    if (!(Number.isInteger(this.maxM) && this.maxM >= 0)) throw new RangeError(`AdaptiveParity: maxM=${this.maxM}`);
    if (!(this.onAboveLossRatio >= this.offBelowLossRatio)) {
      throw new RangeError('AdaptiveParity: onAboveLossRatio must be >= offBelowLossRatio');
    }
  }

  /** The m to use now (after the congestion cap). */
  get m(): number {
    return this.congested(this.lastNowMs) ? Math.min(this.currentM, this.congestionMaxM) : this.currentM;
  }

  /** Effective loss ratio of the last update. */
  get lossRatio(): number {
    return this.lastLossRatio;
  }

  /** Whether the congestion cap is in force at nowMs. */
  congested(nowMs: number): boolean {
    return nowMs < this.congestedUntilMs;
  }

  /** Feeds one measurement interval; returns the m to use from now on. */
  update(nowMs: number, input: AdaptiveParityInput): number {
    this.lastNowMs = nowMs;
    const p = effectiveLossRatio(input.pathLossRatios, input.pathShares);
    this.lastLossRatio = p;
    this.detectCongestion(nowMs, p, input);

    const need = Math.max(1, requiredParity(this.k, p, this.targetLossRatio, this.maxM, this.criterion));
    if (!this.enabled) {
      if (p >= this.onAboveLossRatio && this.maxM > 0) {
        this.enabled = true;
        this.currentM = need;
        this.lowSinceMs = undefined;
      }
    } else if (p < this.offBelowLossRatio) {
      // Clean again: turn off only once it has stayed clean for the hold time.
      if (this.lowSinceMs === undefined) {
        this.lowSinceMs = nowMs;
        this.neededDuringHold = 0;
      }
      if (nowMs - this.lowSinceMs >= this.decreaseHoldMs) {
        this.enabled = false;
        this.currentM = 0;
        this.lowSinceMs = undefined;
      }
    } else if (need >= this.currentM) {
      this.currentM = need;
      this.lowSinceMs = undefined;
    } else {
      if (this.lowSinceMs === undefined) {
        this.lowSinceMs = nowMs;
        this.neededDuringHold = need;
      } else {
        this.neededDuringHold = Math.max(this.neededDuringHold, need);
      }
      if (nowMs - this.lowSinceMs >= this.decreaseHoldMs) {
        this.currentM = Math.max(1, this.neededDuringHold);
        this.lowSinceMs = undefined;
      }
    }
    return this.m;
  }

  private detectCongestion(nowMs: number, p: number, input: AdaptiveParityInput): void {
    if (input.congested === true) this.congestedUntilMs = nowMs + this.congestionHoldMs;
    const rate = input.sendRateBps;
    if (rate !== undefined && Number.isFinite(rate) && rate >= 0) {
      const prevP = this.prevLossRatio;
      const prevRate = this.prevSendRateBps;
      if (
        input.delayInflated !== false &&
        prevP !== undefined &&
        prevRate !== undefined &&
        prevRate > 0 &&
        p > prevP * CONGESTION_LOSS_RISE_FACTOR &&
        p - prevP >= CONGESTION_LOSS_RISE_MIN &&
        rate >= prevRate * CONGESTION_RATE_RISE_FACTOR
      ) {
        this.congestedUntilMs = nowMs + this.congestionHoldMs;
      }
      this.prevLossRatio = p;
      this.prevSendRateBps = rate;
    }
  }
}
