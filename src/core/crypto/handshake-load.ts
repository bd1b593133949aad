/**
 * When does an initiation (valid mac1) have to show a cookie (mac2) before it may cost us a
 * Diffie-Hellman? WireGuard asks for cookies from everyone once its handshake queue backs up
 * (device/receive.go: IsUnderLoad, then CheckMAC2, then the per-IP ratelimiter). A hub with a
 * thousand spokes sees a thousand legitimate initiations at once after a restart, and a flood from
 * one address must not make all of those pay the cookie round trip. So the judgement is per source
 * first, within a global budget:
 *
 * 1. Globally under load (the budget below is spent, and for UNDER_LOAD_HOLD_MS after): every
 *    initiation needs a cookie, as in WireGuard. This is the defence against forged source
 *    addresses: a flood spread over many addresses stays within each one's allowance, so it spends
 *    the budget instead, and then stops at the cookie step (a forger never sees its cookie).
 * 2. Else the source (IP, IPv6 /64: rateLimitKey) spends a token of its own cookie-free allowance
 *    (COOKIE_FREE_PER_SOURCE_BURST, refilled at COOKIE_FREE_PER_SOURCE_PER_SECOND); without one it
 *    needs a cookie: a flood from one address is cookie-checked after its first few initiations
 *    while every other source still goes straight through.
 * 3. Else it spends a token of the global budget: a bucket of UNDER_LOAD_INITIATIONS_PER_SECOND
 *    a second with a burst of that plus HANDSHAKE_BURST_PER_PEER per configured peer (every peer
 *    may handshake on every link at once after a restart). Without one we go under load (1.).
 *
 * What passes the cookie check is then rate-limited per source by the caller (TokenBucketLimiter,
 * 20/s, burst 5), which forged addresses cannot reach; what went straight through is charged to
 * the same bucket (TokenBucketLimiter.charge). The worst a forger spreading over many addresses
 * can make us spend: the budget's burst once, then its rate (64 Diffie-Hellmans a second, as
 * before); a flood from one address: the limiter's bucket (5, then 20/s; the first 8 may come
 * before it bites). A forger using a spoke's own address spends that address's allowance: the
 * spoke then pays the cookie round trip, and its limiter bucket is dented by 2/s at most.
 */
import { TokenBucketLimiter } from './cookie.ts';
import { COOKIE_FREE_PER_SOURCE_BURST, COOKIE_FREE_PER_SOURCE_PER_SECOND, RATE_LIMIT_MAX_SOURCES, UNDER_LOAD_HOLD_MS } from './constants.ts';

export const enum CookieDemand {
  /** Straight to the handshake. */
  None = 0,
  /** This source spent its cookie-free allowance. */
  Source = 1,
  /** Under load: everyone shows a cookie. */
  Global = 2,
  /** Under load from now on (the budget just ran out): say so once. */
  GlobalStarts = 3,
}

export class HandshakeLoad {
  private readonly cookieFree = new TokenBucketLimiter(COOKIE_FREE_PER_SOURCE_PER_SECOND, COOKIE_FREE_PER_SOURCE_BURST, RATE_LIMIT_MAX_SOURCES);
  /** Global budget tokens (the bucket is full at the first initiation). */
  private tokens = 0;
  private lastMs = Number.NEGATIVE_INFINITY;
  underLoadUntilMs = Number.NEGATIVE_INFINITY;

  constructor(
    readonly ratePerSecond: number,
    readonly burstPerPeer: number,
  ) {}

  /** Whether the initiation from `sourceKey` must show a cookie; `peers` sizes the budget's burst. */
  demand(nowMs: number, sourceKey: string, peers: number): CookieDemand {
    if (nowMs < this.underLoadUntilMs) return CookieDemand.Global;
    if (!this.cookieFree.allow(nowMs, sourceKey)) return CookieDemand.Source;
    const burst = this.ratePerSecond + this.burstPerPeer * peers;
    const refill = this.lastMs === Number.NEGATIVE_INFINITY ? burst : (Math.max(0, nowMs - this.lastMs) * this.ratePerSecond) / 1000;
    this.tokens = Math.min(burst, this.tokens + refill);
    this.lastMs = nowMs;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return CookieDemand.None;
    }
    // A flood that spends each refill right after the hold is one episode, not one a second.
    const continues = nowMs < this.underLoadUntilMs + UNDER_LOAD_HOLD_MS;
    this.underLoadUntilMs = nowMs + UNDER_LOAD_HOLD_MS;
    return continues ? CookieDemand.Global : CookieDemand.GlobalStarts;
  }

  /** Sources whose cookie-free allowance is being tracked. */
  get trackedSources(): number {
    return this.cookieFree.trackedSources;
  }
}
