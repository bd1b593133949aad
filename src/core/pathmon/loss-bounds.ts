/**
 * Confidence bounds on a loss ratio from `lost` of `sent` packets: the Wilson score interval
 * (E. B. Wilson, 1927) with Newcombe's continuity correction ("Two-sided confidence intervals for
 * the single proportion", Statistics in Medicine 17, 1998), which stays sensible at 0 lost and at
 * the small counts a probe-only path gives.
 *
 * Steering uses them so that a decision near a threshold needs evidence that can tell the two
 * sides apart: a path leaves a class's SLA on loss only when the loss is, with confidence, above
 * the re-entry line, and comes back only when it is, with confidence, under the SLA. With 125
 * packets, 1 lost reads 0.8% but the upper bound (z = 1) is 2.1%: that is no proof of 0.8%.
 */

/**
 * Wilson score bound with continuity correction (Newcombe 1998, method 4): the upper (`sign` = 1)
 * or lower (`sign` = -1) end at `z` standard errors. Without the correction the lower bound is
 * too high at the few-losses counts a 3 s window gives (9 of 634: 0.83% against Clopper-Pearson's
 * exact 0.74% at z = 1.645); with it, within a few percent of the exact bound.
 */
function wilson(lost: number, sent: number, z: number, sign: 1 | -1): number {
  if (!(sent > 0)) return sign > 0 ? 1 : 0;
  const n = sent;
  const p = Math.min(1, Math.max(0, lost / n));
  if (sign < 0 && p === 0) return 0;
  if (sign > 0 && p === 1) return 1;
  const z2 = z * z;
  const root = Math.sqrt(Math.max(0, z2 + sign * 2 - 1 / n + 4 * p * (n * (1 - p) - sign)));
  const bound = (2 * n * p + z2 + sign * (1 + z * root)) / (2 * (n + z2));
  return Math.min(1, Math.max(0, bound));
}

/** The loss ratio is below this with one-sided confidence Phi(z) (z = 1: 84%, 1.645: 95%). */
export function lossUpperBound(lost: number, sent: number, z: number): number {
  return wilson(lost, sent, z, 1);
}

/** The loss ratio is above this with one-sided confidence Phi(z). */
export function lossLowerBound(lost: number, sent: number, z: number): number {
  return wilson(lost, sent, z, -1);
}
