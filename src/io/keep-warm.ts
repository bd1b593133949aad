/**
 * Keep-warm: while a tunnel carries sparse traffic (a ping, a voice call, a terminal session), run
 * one packet through the start warm-up's throwaway pair (jit-warmup.ts) every KEEP_WARM_INTERVAL_MS
 * when no real packet came by, so that the next real packet finds the data path's code and data in
 * the CPU's caches.
 *
 * Why (issue 13, idle RTT; docs/BENCHMARKS.md "Keep-warm"): the same compiled code runs 10-15x
 * slower after a pause. On this VM kind an idle vCPU halts and the hypervisor flushes L1D on every
 * VM entry; the JS data path (V8 code, the Endpoint's objects, the native AEAD's tables) touched
 * once per 50 ms pays ~80-100 us per packet per edge instead of ~15-30, and an echo crosses that
 * path four times. wireguard-go's compact Go pays much less. Measured with `npm run bench --
 * rtt-trace` and tmp pings at 0.05 s: Braid 0.79-0.94 ms vs wireguard-go 0.47-0.55 without it,
 * 0.43-0.46 vs 0.43-0.46 with a 1 ms keep-warm.
 *
 * What it costs: one pulse is one packet through both halves of the pair (a seal, an open, the
 * shell's batches): CPU only while the tunnel is in use and otherwise quiet. A tick that finds
 * real traffic since the last one does nothing (the real packets kept the path warm), so a busy
 * tunnel pays only the timer; after KEEP_WARM_ACTIVE_MS without an inner packet it stops, and a
 * 250 ms poll of two counters is all an idle edge pays. `latency.keepWarm: off` turns it off.
 */
import { monotonicNowMs } from './clock.ts';

/** Pulse spacing while active. 1 ms matched wireguard-go's idle RTT; 2 ms and 5 ms left ~0.05 ms. */
export const KEEP_WARM_INTERVAL_MS = 1;
/** Active for this long after the last real inner packet (a ping every second stays warm). */
export const KEEP_WARM_ACTIVE_MS = 3000;
/** How often an idle edge looks at its counters for the first inner packet. */
const IDLE_POLL_MS = 250;

/** What the keep-warm runs: DataPathWarmer.pulse, and its count of pulses run. */
export interface Pulser {
  pulse(): void;
  readonly pulses: number;
}

export interface KeepWarmStats {
  /** Pulses run so far. */
  pulses: number;
  /** Wall ms spent inside pulses. */
  busyMs: number;
  /** Whether it is pulsing now (inner traffic within KEEP_WARM_ACTIVE_MS). */
  active: boolean;
}

export interface KeepWarmOptions {
  intervalMs?: number;
  activeForMs?: number;
  now?: () => number;
}

export class KeepWarm {
  private fast: NodeJS.Timeout | undefined;
  private idle: NodeJS.Timeout | undefined;
  private lastSeen = -1;
  private lastActiveMs = -Infinity;
  private busyMs = 0;
  /** The pulser's count when stop() let it go (stats() after stop). */
  private pulsesAtStop = 0;
  private readonly intervalMs: number;
  private readonly activeForMs: number;
  private readonly now: () => number;

  /** `innerPackets`: inner packets the real edge has read plus written so far (a counter). */
  constructor(
    private pulser: Pulser | undefined,
    private readonly innerPackets: () => number,
    opts: KeepWarmOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? KEEP_WARM_INTERVAL_MS;
    this.activeForMs = opts.activeForMs ?? KEEP_WARM_ACTIVE_MS;
    this.now = opts.now ?? monotonicNowMs;
  }

  start(): void {
    if (this.pulser === undefined || this.fast !== undefined || this.idle !== undefined) return;
    this.lastSeen = this.innerPackets();
    this.goIdle();
  }

  stop(): void {
    this.pulsesAtStop = this.pulser?.pulses ?? this.pulsesAtStop;
    if (this.fast !== undefined) clearInterval(this.fast);
    if (this.idle !== undefined) clearInterval(this.idle);
    this.fast = undefined;
    this.idle = undefined;
    this.pulser = undefined;
  }

  stats(): KeepWarmStats {
    return { pulses: this.pulser?.pulses ?? this.pulsesAtStop, busyMs: this.busyMs, active: this.fast !== undefined };
  }

  private goIdle(): void {
    if (this.fast !== undefined) clearInterval(this.fast);
    this.fast = undefined;
    this.idle = setInterval(this.onIdlePoll, IDLE_POLL_MS);
    this.idle.unref();
  }

  private readonly onIdlePoll = (): void => {
    const seen = this.innerPackets();
    if (seen === this.lastSeen) return;
    this.lastSeen = seen;
    this.lastActiveMs = this.now();
    if (this.idle !== undefined) clearInterval(this.idle);
    this.idle = undefined;
    this.fast = setInterval(this.onTick, this.intervalMs);
    this.fast.unref();
  };

  private readonly onTick = (): void => {
    const pulser = this.pulser;
    if (pulser === undefined) return;
    const t0 = this.now();
    const seen = this.innerPackets();
    if (seen !== this.lastSeen) {
      // Real packets since the last tick ran the path themselves.
      this.lastSeen = seen;
      this.lastActiveMs = t0;
      return;
    }
    if (t0 - this.lastActiveMs > this.activeForMs) {
      this.goIdle();
      return;
    }
    pulser.pulse();
    this.busyMs += this.now() - t0;
  };
}
