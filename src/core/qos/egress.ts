/**
 * Egress of one local WAN link, shared by every peer: its counters, its rate, and (when the link's
 * uplink rate is configured) the LinkScheduler that shapes it: strict priority for control and
 * voice, the other classes by weight, and within a class deficit round robin across peers.
 *
 * Frames that carry a path sequence number (data, parity, probes) are numbered, framed and sealed
 * when they leave the queue (PendingTx): priority reorders the queue, and a frame numbered at
 * enqueue would look lost to the peer while it waits behind the voice that overtook it; a tail drop
 * then never leaves a gap in the sequence either. So the peer's loss reports, which steering and
 * adaptive FEC read, see the path and not our queue.
 */
import { DEFAULT_LINK_MTU_BYTES } from '../constants.ts';
import type { CostTier } from '../steer/classes.ts';
import type { Endpoint, Transmit } from '../types.ts';
import type { Fifo } from '../fifo.ts';
import type { ClassQueuePolicy } from './policy.ts';
import { LinkScheduler } from './scheduler.ts';

export const enum TxKind {
  /** Already sealed (hellos, drains, probe replies, handshakes, keepalives). */
  Sealed = 0,
  Data = 1,
  Parity = 2,
  Probe = 3,
}

const NO_LENGTHS: readonly number[] = Object.freeze([]);

/** A datagram waiting in a shaped link's queue, framed and sealed by its peer when it leaves. */
export class PendingTx {
  dupSeq = 0;
  /** Data of a bonded class: its bond_seq, given when queued (the order the flow sent in). */
  bondSeq = 0;
  fecGroup = 0;
  fecIndex = 0;
  /** Data: the nominal k; parity: the group's k. */
  fecK = 0;
  parityM = 0;
  checksum = 0;
  lengths: ArrayLike<number> = NO_LENGTHS;
  constructor(
    readonly kind: TxKind,
    /** Datagram size for the queue and the token bucket (exact but for a sequence varint's length). */
    readonly sizeBytes: number,
    /** The peer that builds the datagram (null: sealed already, e.g. a handshake reply), its slot (the DRR key) and path. */
    readonly owner: object | null,
    readonly peerSlot: number,
    readonly pathId: number,
    readonly to: Endpoint,
    readonly dscp: number,
    readonly classId: number,
    /** Sealed: the datagram; data: a copy of the inner packet; parity: a copy of the shard. */
    readonly bytes: Uint8Array,
  ) {}
}

export interface LinkRuntime {
  id: number;
  name: string;
  tier: CostTier;
  bandwidthBps: number;
  dscp: number;
  /** The interface MTU (LinkConfig.mtuBytes): the PMTU search's ceiling on this link's paths. */
  mtuBytes: number;
  /** Operator drain of the whole link (all peers). */
  drained: boolean;
  sched: LinkScheduler<PendingTx> | undefined;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  rateMarkBytes: number;
  rateMarkMs: number;
  txRateBps: number;
}

export function createLink(
  id: number,
  l: { name: string; costTier?: CostTier; bandwidthBps?: number; dscp?: number; shaperBurstBytes?: number; mtuBytes?: number },
  queues: readonly ClassQueuePolicy[],
  nowMs: number,
): LinkRuntime {
  const bw = l.bandwidthBps ?? 0;
  return {
    id,
    name: l.name,
    tier: l.costTier ?? 'primary',
    bandwidthBps: bw,
    dscp: l.dscp ?? 48, // probes are network control (CS6) unless told otherwise
    mtuBytes: l.mtuBytes ?? DEFAULT_LINK_MTU_BYTES,
    drained: false,
    sched: bw > 0 ? new LinkScheduler<PendingTx>({ rateBps: bw, classes: queues, ...(l.shaperBurstBytes ? { burstBytes: l.shaperBurstBytes } : {}) }, nowMs) : undefined,
    txPackets: 0,
    txBytes: 0,
    rxPackets: 0,
    rxBytes: 0,
    rateMarkBytes: 0,
    rateMarkMs: nowMs,
    txRateBps: 0,
  };
}

/** Spare capacity for `balance`: configured rate minus what goes out now (at least 5%); 0 = unknown. */
export function spareBps(l: LinkRuntime): number {
  return l.bandwidthBps > 0 ? Math.max(l.bandwidthBps * 0.05, l.bandwidthBps - l.txRateBps) : 0;
}

export function totalQueueDrops(s: LinkScheduler<PendingTx>): number {
  let n = 0;
  for (const c of s.counters) n += c.dropped;
  return n;
}

/**
 * Moves what the link's token bucket allows into `out`, building each queued frame as it leaves
 * (`build`: numbered, framed and sealed now; undefined when it cannot be, counted by `lost`).
 * Returns when to try again: the bucket's next release, or in a millisecond when `out` is full
 * (the shell drains transmits after every input).
 */
export function releaseLink(
  nowMs: number,
  link: LinkRuntime,
  out: Fifo<Transmit>,
  maxQueued: number,
  build: (item: PendingTx) => Uint8Array | undefined,
  lost: () => void,
): number {
  const sched = link.sched!;
  while (out.length < maxQueued) {
    const item = sched.dequeue(nowMs);
    if (item === undefined) break;
    const bytes = build(item);
    if (bytes === undefined) {
      lost();
      continue;
    }
    link.txPackets++;
    link.txBytes += bytes.length;
    out.push({ linkId: link.id, to: item.to, dscp: item.dscp, bytes });
  }
  return out.length >= maxQueued && sched.queuedPackets > 0 ? nowMs + 1 : sched.nextReleaseMs(nowMs);
}
