/**
 * Bonding of one peer (issue 17): the send side's bond scheduler and bond sequence per bonded
 * class, and the receive side's resequencer per class the peer bonds towards us.
 *
 * Send, per packet of a flow of a class whose strategy is `bond` (peer.ts sendInner):
 *   usableMtu  the packet must fit every bonded path, less the bond_seq's 5 bytes;
 *   pick       the path (steer/bond.ts: earliest arrival by capacity, RTT and our queue; paths
 *              too far behind the fastest one way, or losing 5% or more, are left out); the
 *              flow's own path when no path is a member;
 *   nextSeq    (peer-tx.ts, as the frame is built or queued) class id << 28 | a 28-bit counter
 *              that starts at random; FEC parity of the class goes through `parityPath` (the bond).
 * Receive, per data frame with a bond_seq (peer.ts onFrame): the class in the top 4 bits picks a
 * Resequencer (steer/reseq.ts, one sequence per class, so one buffer per (peer, class)); the 28-bit
 * counter is unwrapped into the resequencer's 32-bit serial space; what it releases goes to the
 * Endpoint in order. FEC-protected bonded data is passed through the FEC receiver first (it must
 * see the packet), and the packet comes back here through `deliverFec`; packets FEC rebuilds carry
 * no bond_seq and are delivered at once (they fill a hole, so they come in order).
 * Timers: `deadlineMs` (the oldest held packet's bound) is part of the peer's nextDeadlineMs;
 * `tick` runs every probe interval (peer-timers.ts): the schedulers' paths (and each member link's
 * CoDel slack: the queue 'eat' builds there on purpose), the hold bounds from the paths that
 * carried bonded packets lately, idle flows forgotten.
 * Delay equalization (a class with bond.equalizeDelay, steer/equalize.ts): on receive, a bonded
 * packet first waits D_max - D_path (one-way delays from our paths' lowest RTTs, D_max over the
 * class's members) and then goes to the resequencer, so every packet of the class sees the slowest
 * member's delay; on send, the scheduler then takes every member's delay as the slowest's.
 */
import { BOND_DEFAULT_MAX_DELAY_GAP_MS, BOND_MAX_PATHS, RESEQ_MAX_BOUND_MS } from './constants.ts';
import { pathMetrics, pathName, pathUsable, type PathRuntime } from './pathmon/path.ts';
import { SHORT_WINDOW_MS } from './pathmon/path-stats.ts';
import type { Peer } from './peer.ts';
import { BondScheduler, type BondPath, type BondPathSnapshot } from './steer/bond.ts';
import { DelayEqualizer, type EqualizeCounters } from './steer/equalize.ts';
import { CLASS_NAMES } from './steer/classes.ts';
import { Rebalancer } from './steer/rebalance.ts';
import { bondBoundMs, emptyReseqCounters, Resequencer, RESEQ_PATH_MEMORY_MS, type ReseqCounters } from './steer/reseq.ts';
import type { FlowEntry } from './steer/steering.ts';
import type { BondClassStatus } from './types.ts';
import type { DataFrame } from './wire/codec.ts';
import { BOND_SEQ_BYTES } from './wire/overhead.ts';

const SEQ_BITS = 28;
const SEQ_MASK = (1 << SEQ_BITS) - 1;
const NO_PATH = -1;
/** Fills the sequence number of a packet FEC already delivered (never handed to the Endpoint). */
const TOMBSTONE = new Uint8Array(0);
/** A late packet lengthens the hold bound by this share of it (at least LATE_STEP_MIN_MS)... */
const LATE_STEP_RATIO = 0.25;
const LATE_STEP_MIN_MS = 2;
/** ...and the extra decays by this factor every probe interval (half-life ~3.5 s at 100 ms). */
const LATE_EXTRA_DECAY = 0.98;

/** Per bonded class: what `braid status` shows (snapshot.ts). */
export interface BondClassSnapshot {
  class: string;
  /** Send side: paths in the bond and the packets each took. */
  paths: BondPathSnapshot[];
  /** Receive side (what the peer bonds towards us). */
  boundMs: number;
  heldPackets: number;
  reseq: ReseqCounters;
  /** Delay equalization (absent when the class does not equalize). */
  equalize?: EqualizeCounters & { heldPackets: number; holdMs: number[] };
}

interface TxClass {
  sched: BondScheduler;
  /** The class's delay gap and equalization the scheduler was made with (a live change makes a new one). */
  maxDelayGapMs: number;
  equalizeDelay: boolean;
  counter: number;
  /** Smallest usable inner MTU over the paths with an endpoint, less bond_seq. */
  mtuBytes: number;
}

interface RxClass {
  reseq: Resequencer;
  last28: number;
  ext: number;
  /** The bound from the paths' figures, and what late packets added to it (decays). */
  baseMs: number;
  extraMs: number;
  lateSeen: number;
  /** Largest hold bound this class ever had (the test's invariant: no hold beyond it). */
  boundMaxMs: number;
  /** bond.equalizeDelay: packets wait here before the resequencer (made when the class first equalizes). */
  eq: DelayEqualizer | undefined;
}

export class PeerBond {
  private readonly txc: (TxClass | undefined)[] = CLASS_NAMES.map(() => undefined);
  private readonly rxc: (RxClass | undefined)[] = CLASS_NAMES.map(() => undefined);
  /** When each of our paths last carried a bonded packet from the peer (for the hold bound). */
  private readonly lastBondRxMs = new Float64Array(BOND_MAX_PATHS).fill(-Infinity);
  private readonly scratch: BondPath[] = [];
  /** The bonded data frame being passed through the FEC receiver (deliverFec). */
  private fecPacket: Uint8Array | undefined;
  private fecSeq = 0;
  private fecPath = NO_PATH;
  private fecNowMs = 0;
  /** Earliest bound of a held packet (Infinity: none held); part of the peer's deadline. */
  deadlineMs = Infinity;
  /** bond_seq with a class id we do not know: delivered unordered. */
  badClass = 0;
  /** Balanced classes' flows back onto recovered capacity (made at the first tick: steering exists then). */
  private rebalancer: Rebalancer | undefined;

  constructor(private readonly peer: Peer) {}

  /** Classes 0 and 1 (control, voice) never bond (NO_BOND_CLASSES): bond_seq is never 0. */
  bonded(classId: number): boolean {
    return classId >= 2 && this.peer.host.policies()[classId]?.strategy === 'bond';
  }

  // ---- send -----------------------------------------------------------------------------

  /** Largest inner packet for the flow's class on `path`: every bonded path must take it. */
  usableMtu(classId: number, path: PathRuntime): number {
    if (!this.bonded(classId)) return this.peer.usableMtu(path);
    return this.peer.smallestUsableMtu() - BOND_SEQ_BYTES;
  }

  /** The path this packet of `flow` takes: the bond's pick for a bonded class, else `path`. */
  pick(nowMs: number, flow: FlowEntry, classId: number, path: PathRuntime, sizeBytes: number): PathRuntime {
    if (flow.path2 >= 0 || !this.bonded(classId)) return path;
    const peer = this.peer;
    if (peer.host.sessions !== undefined && !peer.sessionUp) return path;
    const t = this.txClass(nowMs, classId);
    let id = t.sched.pick(nowMs, sizeBytes);
    let p = id >= 0 ? peer.paths[id] : undefined;
    if (p !== undefined && !pathUsable(p)) {
      // It went down since the last refresh: the bond changes now, not at the next probe tick.
      this.refreshClass(nowMs, classId, t);
      id = t.sched.pick(nowMs, sizeBytes);
      p = id >= 0 ? peer.paths[id] : undefined;
    }
    if (p === undefined) return path;
    const shares = (flow.bondPathPackets ??= []);
    while (shares.length <= p.id) shares.push(0);
    shares[p.id]!++;
    return p;
  }

  /** The bond_seq of the next data frame of `classId` (0: not bonded). */
  nextSeq(classId: number): number {
    const t = this.txc[classId];
    if (t === undefined || !this.bonded(classId)) return 0;
    t.counter = (t.counter + 1) & SEQ_MASK;
    return ((classId << SEQ_BITS) | t.counter) >>> 0;
  }

  /** Parity of a bonded class goes where the bond sends (spread by the same scheduler). */
  parityPath(nowMs: number, classId: number, shardBytes: number): PathRuntime | undefined {
    if (!this.bonded(classId)) return undefined;
    const t = this.txc[classId];
    if (t === undefined) return undefined;
    const id = t.sched.pick(nowMs, shardBytes);
    const p = id >= 0 ? this.peer.paths[id] : undefined;
    return p !== undefined && pathUsable(p) ? p : undefined;
  }

  private txClass(nowMs: number, classId: number): TxClass {
    let t = this.txc[classId];
    if (t === undefined) {
      const maxDelayGapMs = this.maxDelayGapMs(classId);
      const equalizeDelay = this.equalizes(classId);
      t = {
        sched: new BondScheduler({ kind: 'eat', maxDelayGapMs, equalizeDelay }),
        maxDelayGapMs,
        equalizeDelay,
        // Class id in the top bits (classes 0 and 1 never bond), so bond_seq is never 0.
        counter: this.peer.host.rng.nextU32() & SEQ_MASK,
        mtuBytes: 0,
      };
      this.txc[classId] = t;
      this.refreshClass(nowMs, classId, t);
    }
    return t;
  }

  private maxDelayGapMs(classId: number): number {
    return this.peer.host.policies()[classId]!.bondMaxDelayGapMs ?? BOND_DEFAULT_MAX_DELAY_GAP_MS;
  }

  private equalizes(classId: number): boolean {
    return this.peer.host.policies()[classId]!.bondEqualizeDelay === true;
  }

  /**
   * The class's bond candidates: usable paths within the class's SLA (all usable ones when none
   * is), backup-tier paths only when nothing else is usable.
   */
  private refreshClass(nowMs: number, classId: number, t: TxClass): void {
    const peer = this.peer;
    const out = this.scratch;
    out.length = 0;
    let anyInSla = false;
    let anyNonBackup = false;
    for (const p of peer.paths) {
      if (!pathUsable(p)) continue;
      if (p.inSla[classId]) anyInSla = true;
      if (p.tier !== 'backup') anyNonBackup = true;
    }
    for (const p of peer.paths) {
      if (!pathUsable(p) || (anyInSla && !p.inSla[classId]) || (anyNonBackup && p.tier === 'backup')) continue;
      const link = peer.host.links[p.linkId]!;
      const base = p.stats.minRttMs;
      out.push({
        id: p.id,
        // The link's configured rate: the scheduler's clocks count what the bond itself sends.
        spareBps: link.bandwidthBps,
        srttMs: p.stats.srttMs,
        ...(Number.isFinite(base) && base > 0 ? { baseRttMs: base } : {}),
        lossRatio: pathMetrics(nowMs, p, SHORT_WINDOW_MS).txLossRatio,
        mtuBytes: peer.usableMtu(p) - BOND_SEQ_BYTES,
        queueBytes: link.sched?.queuedBytesOf(classId) ?? 0,
      });
    }
    t.sched.setPaths(nowMs, out);
    t.mtuBytes = peer.smallestUsableMtu() - BOND_SEQ_BYTES;
    // The queue the bond builds on a fast path on purpose is not for CoDel to drop (scheduler.ts).
    for (const b of out) peer.host.links[peer.paths[b.id]!.linkId]!.sched?.setCodelSlack(nowMs, classId, t.sched.slackMs(b.id));
  }

  // ---- receive --------------------------------------------------------------------------

  /**
   * A data frame that is FEC-protected or bonded (peer.ts onFrame, after dedupe and the epoch
   * checks): FEC first when protected, then the class's resequencer.
   */
  onData(nowMs: number, path: PathRuntime, d: DataFrame): void {
    const seq = d.bondSeq ?? 0;
    if (d.fecGroup !== 0) {
      this.fecPacket = seq !== 0 ? d.packet : undefined;
      this.fecSeq = seq;
      this.fecPath = path.id;
      this.fecNowMs = nowMs;
      this.peer.fecRx.onData(nowMs, d.fecGroup, d.fecIndex, d.fecK, d.packet);
      if (seq !== 0 && this.fecPacket !== undefined) {
        // Not delivered: FEC rebuilt it before it came (it went out then, without its bond_seq).
        // Its number still fills the hole, or the packets behind it would wait for the bound.
        this.fecPacket = undefined;
        this.push(nowMs, path.id, seq, TOMBSTONE);
      }
      return;
    }
    this.push(nowMs, path.id, seq, d.packet);
  }

  /** The FEC receiver delivers a packet: the bonded frame in hand goes through its resequencer. */
  deliverFec(packet: Uint8Array): void {
    if (this.fecPacket !== undefined && packet === this.fecPacket) {
      this.fecPacket = undefined;
      this.push(this.fecNowMs, this.fecPath, this.fecSeq, packet);
      return;
    }
    this.peer.host.deliverFrom(this.peer, packet);
  }

  private push(nowMs: number, pathId: number, seq: number, packet: Uint8Array): void {
    const peer = this.peer;
    const classId = seq >>> SEQ_BITS;
    if (seq === 0 || classId >= CLASS_NAMES.length) {
      if (seq !== 0) this.badClass++;
      peer.host.deliverFrom(peer, packet);
      return;
    }
    const c28 = seq & SEQ_MASK;
    let r = this.rxc[classId];
    if (r === undefined) {
      const baseMs = this.boundFor(nowMs);
      r = { reseq: new Resequencer(baseMs), last28: c28, ext: c28 === 0 ? 1 : c28, baseMs, extraMs: 0, lateSeen: 0, boundMaxMs: 0, eq: undefined };
      r.boundMaxMs = r.reseq.getBoundMs();
      this.rxc[classId] = r;
      this.setHolds(classId, r);
      seq = r.ext;
    } else {
      // Unwrap the 28-bit counter into the resequencer's 32-bit serial space (which skips 0).
      const delta = ((c28 - r.last28) << (32 - SEQ_BITS)) >> (32 - SEQ_BITS);
      let ext = (r.ext + delta) >>> 0;
      if (delta > 0 && ext < r.ext) ext = (ext + 1) >>> 0;
      else if (delta < 0 && ext > r.ext) ext = (ext - 1) >>> 0;
      if (ext === 0) ext = delta < 0 ? 0xffffffff : 1;
      if (delta > 0) {
        r.last28 = c28;
        r.ext = ext;
      }
      seq = ext;
    }
    if (pathId >= 0 && pathId < BOND_MAX_PATHS) this.lastBondRxMs[pathId] = nowMs;
    if (r.eq !== undefined) {
      r.eq.push(nowMs, pathId, seq, packet);
      this.rearm();
      return;
    }
    this.toReseq(r, nowMs, pathId, seq, packet);
  }

  /** A bonded packet into its class's resequencer (at arrival, or when the equalizer lets it go). */
  private toReseq(r: RxClass, nowMs: number, pathId: number, seq: number, packet: Uint8Array): void {
    const out = r.reseq.push(nowMs, 0, seq, packet, pathId);
    this.deliver(out);
    const late = r.reseq.flowCounters(0)?.late ?? r.lateSeen;
    if (late > r.lateSeen) {
      // A packet came after its hole was given up: the bound was shorter than the real delay
      // difference (probes skip the data queues). Lengthen it; tick() lets it decay again.
      r.lateSeen = late;
      r.extraMs = Math.min(RESEQ_MAX_BOUND_MS, r.extraMs + Math.max(LATE_STEP_MIN_MS, (r.baseMs + r.extraMs) * LATE_STEP_RATIO));
      this.setBound(r);
    }
    this.rearm();
  }

  /** At deadlineMs: release what reached its bound. */
  onTimeout(nowMs: number): void {
    for (const r of this.rxc) {
      if (r === undefined) continue;
      r.eq?.release(nowMs);
      this.deliver(r.reseq.handleTimeout(nowMs));
    }
    this.rearm();
  }

  /** What a resequencer released, in order, to the Endpoint (tombstones are not packets). */
  private deliver(out: readonly Uint8Array[]): void {
    const peer = this.peer;
    for (let i = 0; i < out.length; i++) if (out[i]!.length > 0) peer.host.deliverFrom(peer, out[i]!);
  }

  private rearm(): void {
    let t = Infinity;
    for (const r of this.rxc) if (r !== undefined) t = Math.min(t, r.reseq.nextDeadlineMs(), r.eq?.nextReleaseMs() ?? Infinity);
    this.deadlineMs = t;
  }

  /**
   * bond.equalizeDelay: each path's hold, D_max - D_path. D = half the path's lowest RTT (its
   * propagation delay; queueing is the resequencer's business), D_max over the paths the peer's
   * scheduler would bond for the class: usable, not backup-tier while others are, within the
   * class's delay gap of the fastest. Not equalizing: holds 0 (what is held still goes in time).
   */
  private setHolds(classId: number, r: RxClass): void {
    if (!this.equalizes(classId)) {
      r.eq?.clearHolds();
      return;
    }
    r.eq ??= new DelayEqualizer((t, pathId, seq, packet) => this.toReseq(r, t, pathId, seq, packet));
    const paths = this.peer.paths;
    let anyNonBackup = false;
    for (const p of paths) if (pathUsable(p) && p.tier !== 'backup') anyNonBackup = true;
    let minOwd = Infinity;
    for (const p of paths) if (pathUsable(p) && !(anyNonBackup && p.tier === 'backup')) minOwd = Math.min(minOwd, owdMs(p));
    const gapMs = this.maxDelayGapMs(classId);
    let maxOwd = -Infinity;
    for (const p of paths) {
      const d = owdMs(p);
      if (pathUsable(p) && !(anyNonBackup && p.tier === 'backup') && d - minOwd <= gapMs) maxOwd = Math.max(maxOwd, d);
    }
    for (const p of paths) {
      const d = owdMs(p);
      r.eq.setHoldMs(p.id, Number.isFinite(d) && d <= maxOwd ? maxOwd - d : 0);
    }
  }

  /**
   * The hold bound: the delay difference of the paths that carried bonded packets lately (our RTT
   * of each, taken as symmetric) plus twice their jitter; all usable paths before any did.
   */
  private boundFor(nowMs: number): number {
    const paths: { rttMs: number | undefined; jitterMs: number }[] = [];
    for (const p of this.peer.paths) {
      if (p.id < BOND_MAX_PATHS && nowMs - this.lastBondRxMs[p.id]! <= RESEQ_PATH_MEMORY_MS) paths.push({ rttMs: p.stats.srttMs, jitterMs: p.stats.jitterMs });
    }
    if (paths.length === 0) for (const p of this.peer.paths) if (pathUsable(p)) paths.push({ rttMs: p.stats.srttMs, jitterMs: p.stats.jitterMs });
    return paths.length === 0 ? RESEQ_MAX_BOUND_MS : bondBoundMs(paths);
  }

  // ---- timers and snapshot --------------------------------------------------------------

  /** Every probe interval: bonded classes' paths, hold bounds, idle state, rebalancing. */
  tick(nowMs: number): void {
    const peer = this.peer;
    this.rebalancer ??= new Rebalancer(peer.steering, peer.paths, (p) => peer.host.links[p.linkId]!.bandwidthBps, (c) => peer.host.policies()[c]!.strategy);
    this.rebalancer.tick(nowMs, CLASS_NAMES.length);
    for (let c = 0; c < this.txc.length; c++) {
      const t = this.txc[c];
      if (t === undefined) continue;
      if (!this.bonded(c)) this.txc[c] = undefined;
      else if (t.maxDelayGapMs !== this.maxDelayGapMs(c) || t.equalizeDelay !== this.equalizes(c)) this.txc[c] = undefined; // made again at the next packet
      else this.refreshClass(nowMs, c, t);
    }
    let bound = -1;
    for (let c = 0; c < this.rxc.length; c++) {
      const r = this.rxc[c];
      if (r === undefined) continue;
      this.setHolds(c, r);
      if (bound < 0) bound = this.boundFor(nowMs);
      r.baseMs = bound;
      r.extraMs *= LATE_EXTRA_DECAY;
      this.setBound(r);
      r.reseq.forgetIdle(nowMs);
    }
    this.rearm();
  }

  private setBound(r: RxClass): void {
    r.reseq.setBoundMs(r.baseMs + r.extraMs);
    r.boundMaxMs = Math.max(r.boundMaxMs, r.reseq.getBoundMs());
  }

  /** Released at once (the peer went away or restarted): what is held goes out in order. */
  flushAll(nowMs: number): void {
    for (const r of this.rxc) {
      if (r === undefined) continue;
      r.eq?.flush(nowMs);
      this.deliver(r.reseq.flush(nowMs, 0));
    }
    this.rearm();
  }

  /** Largest hold bound class `classId`'s resequencer ever had (tests' invariant). */
  boundMaxMs(classId: number): number {
    return this.rxc[classId]?.boundMaxMs ?? 0;
  }

  snapshot(): BondClassSnapshot[] {
    const out: BondClassSnapshot[] = [];
    for (let c = 0; c < CLASS_NAMES.length; c++) {
      const t = this.txc[c];
      const r = this.rxc[c];
      if (t === undefined && r === undefined) continue;
      const s = r?.reseq.snapshot(1);
      out.push({
        class: CLASS_NAMES[c]!,
        paths: t?.sched.snapshot() ?? [],
        boundMs: s?.boundMs ?? 0,
        heldPackets: s?.heldPackets ?? 0,
        reseq: s?.totals ?? emptyReseqCounters(),
        ...(r?.eq !== undefined ? { equalize: { ...r.eq.c, heldPackets: r.eq.heldPackets, holdMs: this.peer.paths.map((p) => r.eq!.getHoldMs(p.id)) } } : {}),
      });
    }
    return out;
  }
}

/** The snapshot's `bond` section: every peer's bonded classes (absent when none bonds). */
export function bondStatus(peers: readonly Peer[], many: boolean): { bond?: BondClassStatus[] } {
  const out: BondClassStatus[] = [];
  for (const peer of peers) {
    for (const c of peer.bond.snapshot()) {
      let total = 0;
      for (const p of c.paths) total += p.packets;
      const r = c.reseq;
      out.push({
        ...(many ? { peer: peer.name } : {}),
        class: c.class,
        links: c.paths.map((p) => {
          const path = peer.paths[p.id];
          return { link: path ? pathName(path) : String(p.id), member: p.member, ...(p.reason !== undefined ? { reason: p.reason } : {}), packets: p.packets, ratio: total > 0 ? p.packets / total : 0 };
        }),
        boundMs: c.boundMs,
        heldPackets: c.heldPackets,
        maxDepth: r.maxDepth,
        holdMaxMs: r.holdMaxMs,
        holdAvgMs: r.heldReleased > 0 ? r.holdSumMs / r.heldReleased : 0,
        timeouts: r.timeouts,
        holesSkipped: r.holesSkipped,
        evidenceSkips: r.evidenceSkips,
        overflowSkips: r.overflowSkips,
        late: r.late,
        delivered: r.delivered,
        ...(c.equalize !== undefined
          ? {
              equalize: {
                holdMs: c.equalize.holdMs,
                heldPackets: c.equalize.heldPackets,
                held: c.equalize.held,
                holdAvgMs: c.equalize.held > 0 ? c.equalize.holdSumMs / c.equalize.held : 0,
                holdMaxMs: c.equalize.holdMaxMs,
                maxDepth: c.equalize.maxDepth,
                early: c.equalize.early,
              },
            }
          : {}),
      });
    }
  }
  return out.length > 0 ? { bond: out } : {};
}

/** A path's one-way delay for equalization: half its lowest RTT (its smoothed RTT before one). */
function owdMs(p: PathRuntime): number {
  const base = p.stats.minRttMs;
  if (Number.isFinite(base) && base > 0) return base / 2;
  const srtt = p.stats.srttMs;
  return srtt !== undefined && Number.isFinite(srtt) ? srtt / 2 : Infinity;
}
