/**
 * Path state machine: UP / DEGRADED / DOWN / DRAINED, with hold-down and flap damping.
 *
 *   UP/DEGRADED --(nothing heard for deadAfterMs = 3 probe intervals)--> DOWN
 *   DOWN --(holdDownProbes good probes in a row, and not suppressed)--> UP
 *   any --(operator drain)--> DRAINED --(undrain)--> DOWN (must earn UP again via hold-down)
 *   UP <--> DEGRADED: set by steering when the path breaks some class's SLA (display and events)
 *
 * Flap damping (BGP route-flap damping, RFC 2439, in miniature): every fall to DOWN adds
 * FLAP_PENALTY to a penalty that decays exponentially (half-life FLAP_HALF_LIFE_MS). Above
 * SUPPRESS_PENALTY the path stays DOWN even when its probes are good, until the penalty decays
 * below REUSE_PENALTY. A link flapping every 2 s is thus kept out after its third fall.
 */

export type PathState = 'up' | 'degraded' | 'down' | 'drained';

export const DEFAULT_PROBE_INTERVAL_MS = 100;
export const DEAD_AFTER_PROBES = 3;
export const HOLD_DOWN_PROBES = 10;
export const FLAP_PENALTY = 1000;
export const SUPPRESS_PENALTY = 2500;
export const REUSE_PENALTY = 800;
export const FLAP_HALF_LIFE_MS = 15_000;
/** Penalty cap so a long flapping period does not suppress for hours. */
export const MAX_PENALTY = 6000;

export interface PathStateConfig {
  deadAfterMs: number;
  holdDownProbes: number;
  /** Flap damping on (default). Off only to measure what it saves. */
  flapDamping?: boolean;
}

export type PathTransition = { from: PathState; to: PathState; reason: string } | undefined;

export class PathStateMachine {
  state: PathState = 'up';
  /** Good probes received in a row while DOWN. */
  goodProbesInRow = 0;
  lastHeardMs: number | undefined;
  private penalty = 0;
  private penaltyAtMs = 0;
  suppressed = false;
  flaps = 0;
  private drained = false;
  private startMs: number;
  /** Silence before DOWN: the config's, or an idle peer's longer one (peer-idle.ts). */
  private deadAfterMs: number;
  /** Silence counts from here at the earliest (a switch to fast probing must not read the slow past as silence). */
  private graceFromMs = -Infinity;

  constructor(
    private readonly config: PathStateConfig,
    nowMs: number,
  ) {
    this.startMs = nowMs;
    this.deadAfterMs = config.deadAfterMs;
  }

  /** The peer's probing pace changed (peer-idle.ts): silence is judged against `deadAfterMs` from now on. */
  setDeadAfter(deadAfterMs: number, nowMs: number): void {
    if (deadAfterMs === this.deadAfterMs) return;
    this.deadAfterMs = deadAfterMs;
    this.graceFromMs = nowMs;
  }

  /** Restart the "nothing heard yet" clock (when the session that carries probes comes up). */
  resetSilenceClock(nowMs: number): void {
    if (this.lastHeardMs === undefined) this.startMs = nowMs;
  }

  get usable(): boolean {
    return this.state === 'up' || this.state === 'degraded';
  }

  /** Heard within the dead interval (the peer's pace: 300 ms, or an idle path's 7 s). */
  heardLately(nowMs: number): boolean {
    return this.lastHeardMs !== undefined && nowMs - this.lastHeardMs < this.deadAfterMs;
  }

  /** Deadline at which the path falls DOWN if nothing more is heard. */
  deadDeadlineMs(): number {
    if (!this.usable) return Infinity;
    return Math.max(this.lastHeardMs ?? this.startMs, this.graceFromMs) + this.deadAfterMs;
  }

  currentPenalty(nowMs: number): number {
    const dt = Math.max(0, nowMs - this.penaltyAtMs);
    return this.penalty * Math.pow(0.5, dt / FLAP_HALF_LIFE_MS);
  }

  /** Anything authenticated heard on the path. `isProbe`/`inOrder` drive the hold-down count. */
  onHeard(nowMs: number, isProbe: boolean, inOrder: boolean): PathTransition {
    this.lastHeardMs = nowMs;
    if (this.state !== 'down') return undefined;
    if (isProbe) this.goodProbesInRow = inOrder ? this.goodProbesInRow + 1 : 1;
    if (this.goodProbesInRow < this.config.holdDownProbes) return undefined;
    const p = this.currentPenalty(nowMs);
    if (this.suppressed && p > REUSE_PENALTY) return undefined;
    this.suppressed = false;
    this.state = 'up';
    this.goodProbesInRow = 0;
    return { from: 'down', to: 'up', reason: `${this.config.holdDownProbes} good probes in a row` };
  }

  /** Called at (or after) deadDeadlineMs(). */
  onTimeout(nowMs: number): PathTransition {
    if (!this.usable || nowMs < this.deadDeadlineMs()) return undefined;
    const from = this.state;
    const silentMs = Math.round(nowMs - (this.lastHeardMs ?? this.startMs));
    this.state = 'down';
    this.goodProbesInRow = 0;
    this.flaps++;
    this.penalty = Math.min(MAX_PENALTY, this.currentPenalty(nowMs) + FLAP_PENALTY);
    this.penaltyAtMs = nowMs;
    let reason = `nothing heard for ${silentMs} ms`;
    if (this.config.flapDamping !== false && this.penalty >= SUPPRESS_PENALTY && !this.suppressed) {
      this.suppressed = true;
      reason += `; flapping (${this.flaps} falls), damped until stable`;
    }
    return { from, to: 'down', reason };
  }

  /** Suppressed paths are re-evaluated when the penalty has decayed; returns when to look again. */
  reuseCheckMs(nowMs: number): number {
    if (!this.suppressed || this.state !== 'down') return Infinity;
    const p = this.currentPenalty(nowMs);
    if (p <= REUSE_PENALTY) return nowMs;
    return nowMs + FLAP_HALF_LIFE_MS * Math.log2(p / REUSE_PENALTY);
  }

  /** A suppressed path whose probes kept coming is let back once the penalty decays. */
  onReuseCheck(nowMs: number): PathTransition {
    if (!this.suppressed || this.state !== 'down') return undefined;
    if (this.currentPenalty(nowMs) > REUSE_PENALTY) return undefined;
    this.suppressed = false;
    if (this.goodProbesInRow >= this.config.holdDownProbes && this.heardLately(nowMs)) {
      this.state = 'up';
      this.goodProbesInRow = 0;
      return { from: 'down', to: 'up', reason: 'flap damping released: stable again' };
    }
    return undefined;
  }

  setDegraded(degraded: boolean, reason: string): PathTransition {
    if (this.state === 'up' && degraded) {
      this.state = 'degraded';
      return { from: 'up', to: 'degraded', reason };
    }
    if (this.state === 'degraded' && !degraded) {
      this.state = 'up';
      return { from: 'degraded', to: 'up', reason };
    }
    return undefined;
  }

  setDrained(drained: boolean): PathTransition {
    if (drained === this.drained) return undefined;
    this.drained = drained;
    const from = this.state;
    if (drained) {
      this.state = 'drained';
      return { from, to: 'drained', reason: 'drained by operator' };
    }
    this.state = 'down';
    this.goodProbesInRow = 0;
    return { from, to: 'down', reason: 'undrained by operator; back after hold-down' };
  }
}
