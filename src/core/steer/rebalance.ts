/**
 * Rebalancing of balanced classes (issue 17): when a path recovers or its capacity changes, the
 * long-lived flows of a `balance` class move back to it gradually, so its capacity is used again
 * (before: eight flows stayed on two links after the third came back; only new flows used it).
 *
 * Only for REBALANCE_WINDOW_MS after a path came back (steering's onPathRecovered: hold-down
 * passed, or SLA re-entry) or a link's capacity changed: flows placed by their hash at start are
 * left where they are (two paths whose RTTs cross cause no moves).
 *
 * Every probe interval (tick), for one class at a time: the active long-lived flows per path of
 * the class's selection set (usable, within SLA, best cost tier: select.ts) are compared with each
 * path's share of them by capacity (the link's configured rate; equal shares when any is unknown).
 * When the most loaded path is over its share and the least loaded under it by more than one flow
 * between them, ONE flow of the most loaded path is marked to move; it moves only at its next packet
 * after an idle gap longer than the two paths' one-way delay difference plus twice their jitter
 * (steering.ts flowFor): its packets on the new path cannot overtake the old path's, so TCP sees no
 * reordering. A flow that shows no such gap within MOVE_WAIT_MS is let go and another is tried; after
 * a move the next waits SETTLE_MS, so rates settle between moves.
 *
 * Pure: time is an argument; no randomness.
 */
import { pathUsable, type PathRuntime } from '../pathmon/path.ts';
import { COST_TIERS } from './classes.ts';
import type { FlowEntry, Steering } from './steering.ts';

/** A flow counts when it sent within this long and is at least LONG_LIVED_MS old. */
const ACTIVE_MS = 1000;
const LONG_LIVED_MS = 2000;
/** A marked flow that shows no idle gap within this long is let go. */
const MOVE_WAIT_MS = 2000;
/** After a move, the next one waits this long. */
const SETTLE_MS = 500;
/** The idle gap asked for never goes below this (timer and scheduling noise). */
const MIN_GAP_MS = 1;
/** How long after a recovery or a capacity change rebalancing runs. */
export const REBALANCE_WINDOW_MS = 30_000;

export class Rebalancer {
  private moving: FlowEntry | undefined;
  private movingSinceMs = 0;
  private nextMs = 0;
  /** Marks that timed out without an idle gap. */
  gaveUp = 0;
  private readonly capacities = new Map<number, number>();
  private capacityChangedMs = -Infinity;

  constructor(
    private readonly steering: Steering,
    private readonly paths: readonly PathRuntime[],
    private readonly capacityBps: (p: PathRuntime) => number,
    private readonly strategyOf: (classId: number) => string,
  ) {}

  tick(nowMs: number, classCount: number): void {
    const m = this.moving;
    if (m !== undefined) {
      if (m.movePath < 0) {
        // Moved (or cancelled by steering): let rates settle before the next one.
        this.moving = undefined;
        this.nextMs = nowMs + SETTLE_MS;
        return;
      }
      if (nowMs - this.movingSinceMs < MOVE_WAIT_MS) return;
      m.movePath = -1;
      this.moving = undefined;
      this.gaveUp++;
    }
    if (nowMs < this.nextMs) return;
    for (const p of this.paths) {
      const cap = this.capacityBps(p);
      const was = this.capacities.get(p.id);
      if (was !== undefined && was !== cap) this.capacityChangedMs = nowMs;
      this.capacities.set(p.id, cap);
    }
    if (nowMs - Math.max(this.steering.lastRecoveryMs, this.capacityChangedMs) > REBALANCE_WINDOW_MS) return;
    for (let c = 0; c < classCount; c++) {
      if (this.strategyOf(c) !== 'balance') continue;
      if (this.plan(nowMs, c)) return;
    }
  }

  /** Marks one flow of class `c` to move, if the class is out of balance; true when it did. */
  private plan(nowMs: number, c: number): boolean {
    let set: PathRuntime[] = [];
    for (const tier of COST_TIERS) {
      set = this.paths.filter((p) => pathUsable(p) && p.inSla[c] && p.tier === tier);
      if (set.length > 0) break;
    }
    if (set.length < 2) return false;
    const count = new Map<number, number>();
    for (const p of set) count.set(p.id, 0);
    let n = 0;
    for (const f of this.steering.flows.values()) {
      if (f.classId !== c || f.path2 >= 0 || nowMs - f.lastSeenMs > ACTIVE_MS || nowMs - f.createdMs < LONG_LIVED_MS) continue;
      const k = count.get(f.path);
      if (k === undefined) continue;
      count.set(f.path, k + 1);
      n++;
    }
    if (n < 2) return false;
    const caps = set.map((p) => this.capacityBps(p));
    const known = caps.every((x) => x > 0);
    const total = known ? caps.reduce((a, b) => a + b, 0) : set.length;
    let over: PathRuntime | undefined;
    let under: PathRuntime | undefined;
    let overExcess = -Infinity;
    let underExcess = Infinity;
    set.forEach((p, i) => {
      const excess = count.get(p.id)! - (n * (known ? caps[i]! : 1)) / total;
      if (excess > overExcess) {
        overExcess = excess;
        over = p;
      }
      if (excess < underExcess) {
        underExcess = excess;
        under = p;
      }
    });
    // Moving one flow must leave the two closer to their shares than they are.
    if (over === undefined || under === undefined || over === under || overExcess - underExcess <= 1) return false;
    const from: PathRuntime = over;
    const to: PathRuntime = under;
    let pick: FlowEntry | undefined;
    for (const f of this.steering.flows.values()) {
      if (f.classId !== c || f.path !== from.id || f.path2 >= 0 || f.movePath >= 0) continue;
      if (nowMs - f.lastSeenMs > ACTIVE_MS || nowMs - f.createdMs < LONG_LIVED_MS) continue;
      // The flow that has been quiet longest is the likeliest to show a gap soon.
      if (pick === undefined || f.lastSeenMs < pick.lastSeenMs) pick = f;
    }
    if (pick === undefined) return false;
    pick.movePath = to.id;
    pick.moveGapMs = moveGapMs(from, to, nowMs);
    this.moving = pick;
    this.movingSinceMs = nowMs;
    return true;
  }
}

/** Idle gap a flow needs before it may move from `a` to `b`: one-way delay difference plus jitter. */
export function moveGapMs(a: PathRuntime, b: PathRuntime, nowMs: number): number {
  const ra = a.stats.srttMs;
  const rb = b.stats.srttMs;
  const diff = ra !== undefined && rb !== undefined ? Math.abs(ra - rb) / 2 : 0;
  const jitter = Math.max(a.stats.txJitterMs(nowMs), b.stats.txJitterMs(nowMs));
  return Math.max(MIN_GAP_MS, diff + 2 * jitter);
}
