/**
 * A trust boundary for inner DSCP on the LAN side (issue 14, finding 7). Classification trusts the
 * DSCP a LAN host writes: marking CS6 buys strict priority and duplication over two links, EF
 * strict priority, for anyone, without limit. As CPE routers do at their LAN edge, this module
 * either re-marks everything to best effort (`remarkUntrusted`, for LANs whose hosts are not
 * trusted to mark) or polices each class with a token bucket: traffic over a class's cap is
 * re-marked to best effort (DSCP 0), not dropped, so a misbehaving host loses its privilege, not
 * its connectivity, and the real control/voice traffic within the cap keeps it.
 *
 * Call admit() once per LAN packet, before classOfDscp; classify with what it returns. Pure: time
 * is the nowMs argument, fixed-size state (one bucket per class).
 */
import { CLASS_NAMES, classOfDscp } from './classes.ts';

export interface DscpTrustPolicy {
  /** Re-mark every LAN packet to best effort (DSCP 0) before classification. */
  readonly remarkUntrusted: boolean;
  /**
   * Per class id (classes.ts order): the most LAN-marked traffic the class takes, bits/s; what
   * exceeds it is classified as best effort. undefined or 0: no cap.
   */
  readonly classRateCapsBps: readonly (number | undefined)[];
  /** Bucket depth as time at the cap rate (default DEFAULT_BURST_MS). */
  readonly burstMs?: number;
}

/** Bucket depth: 100 ms at the cap rate (a voice burst, a routing update). */
export const DEFAULT_BURST_MS = 100;
/** Smallest bucket, so one full-size packet always fits. */
const MIN_BURST_BYTES = 1600;

/**
 * Default caps: network control (CS6/CS7, duplicated over two links) 2 Mbit/s, far above any
 * routing protocol's needs; voice (EF) 20 Mbit/s (~200 G.711 calls); the rest uncapped.
 */
export const DEFAULT_DSCP_TRUST: DscpTrustPolicy = {
  remarkUntrusted: false,
  classRateCapsBps: [2_000_000, 20_000_000],
};

export interface DscpTrustCounters {
  /** Packets re-marked because remarkUntrusted is on. */
  remarkedUntrusted: number;
  /** Per class id: packets over the class's cap, re-marked to best effort. */
  overCap: number[];
}

export class DscpTrust {
  private policy: DscpTrustPolicy;
  private readonly tokensBytes: number[] = CLASS_NAMES.map(() => 0);
  private readonly depthBytes: number[] = CLASS_NAMES.map(() => 0);
  private readonly rateBytesPerMs: number[] = CLASS_NAMES.map(() => 0);
  private readonly lastMs: number[] = CLASS_NAMES.map(() => Number.NaN);
  readonly counters: DscpTrustCounters = { remarkedUntrusted: 0, overCap: CLASS_NAMES.map(() => 0) };

  constructor(policy: DscpTrustPolicy = DEFAULT_DSCP_TRUST) {
    this.policy = policy;
    this.setPolicy(policy);
  }

  /** Applies a new policy (config reload); buckets start full. */
  setPolicy(policy: DscpTrustPolicy): void {
    this.policy = policy;
    const burstMs = policy.burstMs ?? DEFAULT_BURST_MS;
    for (let c = 0; c < CLASS_NAMES.length; c++) {
      const capBps = policy.classRateCapsBps[c] ?? 0;
      this.rateBytesPerMs[c] = capBps > 0 ? capBps / 8 / 1000 : 0;
      this.depthBytes[c] = capBps > 0 ? Math.max(MIN_BURST_BYTES, this.rateBytesPerMs[c]! * burstMs) : 0;
      this.tokensBytes[c] = this.depthBytes[c]!;
      this.lastMs[c] = Number.NaN;
    }
  }

  /** The DSCP to classify a LAN packet of `sizeBytes` marked `dscp` with, at `nowMs`. */
  admit(nowMs: number, dscp: number, sizeBytes: number): number {
    if (dscp === 0) return 0;
    if (this.policy.remarkUntrusted) {
      this.counters.remarkedUntrusted++;
      return 0;
    }
    const c = classOfDscp(dscp);
    const rate = this.rateBytesPerMs[c]!;
    if (rate === 0) return dscp;
    const last = this.lastMs[c]!;
    const depth = this.depthBytes[c]!;
    let tokens = this.tokensBytes[c]!;
    if (!Number.isNaN(last) && nowMs > last) tokens = Math.min(depth, tokens + (nowMs - last) * rate);
    this.lastMs[c] = Number.isNaN(last) ? nowMs : Math.max(last, nowMs);
    if (tokens >= sizeBytes) {
      this.tokensBytes[c] = tokens - sizeBytes;
      return dscp;
    }
    this.tokensBytes[c] = tokens;
    this.counters.overCap[c]!++;
    return 0;
  }
}
