/**
 * Edge: the whole overlay protocol of one branch box as a deterministic state machine
 * (quinn-proto's design). It owns no socket, no file and no timer and never reads the clock:
 * time arrives as `nowMs` (monotonic milliseconds, any origin), randomness from an injected Rng.
 *
 * Call order (the shell's loop, src/io/driver.ts; the simulator's World does the same in virtual time):
 *   inputs   handleTunPacket(now, packet)          an inner IP packet from the site
 *            handleDatagram(now, linkId, from, b)  an overlay datagram from a WAN link
 *            handleTimeout(now)                    when now >= pollTimeout()
 *            setLinkAdmin(now, linkId, drained)    operator commands
 *   outputs  pollTransmit()  -> Transmit | undefined   datagrams to send, in order
 *            pollDelivery()  -> Uint8Array | undefined inner packets for the TUN, in order
 *            pollTimeout()   -> number | undefined     the next deadline (absolute ms)
 *            pollEvent()     -> EdgeEvent | undefined  state changes with reasons
 *            snapshot(now)   -> EdgeSnapshot           counters, paths, classes
 * After any input, the shell drains the poll* outputs and re-arms its one timer to pollTimeout().
 *
 * Buffer contract: `handleDatagram` may hand out views into `datagram` through pollDelivery, so
 * the shell must not reuse that buffer until it has drained pollDelivery. `handleTunPacket` copies
 * what it needs: the packet buffer may be reused as soon as the call returns.
 *
 * Per-packet problems never throw: they are counted in snapshot().drops.
 *
 * Pipeline of an outgoing packet: parse inner header -> class from DSCP -> flow table (sticky
 * path) -> FEC stamp (protected classes: the class's FecEncoder keeps a copy, the packet is not
 * delayed) -> encode data frame with the path's sequence number -> transmit (twice for duplicated
 * classes) -> parity of a group that just closed, sealed and sent on another path -> per-link
 * queue: unshaped links go straight to pollTransmit; shaped links (bandwidthBps) go through the
 * link's LinkScheduler (strict priority / DRR / token bucket) and leave at Timer.Shaper deadlines.
 * Of an incoming datagram: envelope -> frame -> path statistics -> by kind: deliver data (after
 * duplicate suppression; protected data goes out at once, then feeds the class's FecDecoder, which
 * may return packets it rebuilt), parity to the decoder (rebuilt packets delivered), answer
 * probes, take probe replies as RTT samples.
 *
 * Timers (Timer enum): probe, path dead, flow sweep, reuse check, crypto, FEC flush (a class's
 * open group reaching its flush deadline), FEC expiry (decoder groups given up), shaper release.
 * Every probe interval the adaptive controller of each FEC class sets m from the tx loss of the
 * paths the class used (share-weighted), with hysteresis and a congestion cap.
 *
 * One peer; a path is a local link and the peer endpoint configured for it, so path id = link id.
 */
import {
  FLOW_IDLE_TIMEOUT_MS,
  MAX_DELIVERY_QUEUE,
  MAX_EVENT_QUEUE,
  MAX_FLOWS,
  MAX_INNER_PACKET_BYTES,
  MAX_LINKS,
  MAX_TRANSMIT_QUEUE,
  RECENT_EVENTS_KEPT,
} from './constants.ts';
import { Fifo } from './fifo.ts';
import { flowTuple, formatFlowTuple, newInnerInfo, parseInner, type InnerInfo } from './inner.ts';
import { allocBytes, copyBytes } from './bytes.ts';
import { LONG_WINDOW_MS, MIN_LOST_FOR_SLA, PathStats, SHORT_WINDOW_MS } from './pathmon/path-stats.ts';
import {
  DEAD_AFTER_PROBES,
  DEFAULT_PROBE_INTERVAL_MS,
  HOLD_DOWN_PROBES,
  PathStateMachine,
  type PathState,
  type PathTransition,
} from './pathmon/path-state.ts';
import type { Rng } from './rng.ts';
import { CLASS_NAMES, DEFAULT_POLICIES, classOfDscp, slaBreach, type ClassName, type ClassPolicy, type CostTier, type PathMetrics, type Sla } from './steer/classes.ts';
import { DedupeWindow } from './steer/dedupe.ts';
import { pathScore, selectPaths, type PathCandidate } from './steer/select.ts';
import {
  DROP_REASONS,
  formatEndpoint,
  type ClassSnapshot,
  type FlowSnapshot,
  type DropReason,
  type EdgeEvent,
  type EdgeEventKind,
  type EdgeSnapshot,
  type Endpoint,
  type LinkSnapshot,
  type Transmit,
} from './types.ts';
import {
  dataFrameSize,
  decodeEnvelope,
  decodeFrame,
  encodeDataDatagram,
  encodeEnvelope,
  encodeFrame,
  envelopeHeaderSize,
  parityFrameSize,
  writeDataFrame,
  writeEnvelopeHeader,
  writeParityFrame,
  type FecParityFrame as WireParityFrame,
  type ParityFields,
  type Frame,
  type PathReport,
} from './wire/codec.ts';
import type { ErasureCodec } from './fec/codec.ts';
import { createGf256Codec } from './fec/gf256.ts';
import { FecEncoder, type FecParityShard } from './fec/encoder.ts';
import { FecDecoder, type FecParityFrame, type RecoveredPacket } from './fec/decoder.ts';
import { AdaptiveParity, parityTable } from './fec/adaptive.ts';
import { DEFAULT_FEC_POLICIES, checkFecPolicy, type ClassFecPolicy } from './fec/policy.ts';
import { FEC_GROUP_COUNTER_MASK, FEC_GROUP_TAG_SHIFT, FEC_MAX_K } from './fec/limits.ts';
import { DEFAULT_QUEUE_POLICIES, checkQueuePolicy, type ClassQueuePolicy } from './qos/policy.ts';
import { LinkScheduler } from './qos/scheduler.ts';
import { SessionManager, type CryptoEvent, type SessionManagerSnapshot } from './crypto/handshake-state.ts';
import { keyPairFromPrivate } from './crypto/keys.ts';
import type { DataCipher } from './crypto/types.ts';
import type { AeadFactory } from './crypto/transport.ts';

export interface EdgeLinkConfig {
  /** Operator's name for the link ("mpls", "inet", "lte"). */
  name: string;
  /** The peer's endpoint reached over this link. */
  remote: Endpoint;
  costTier?: CostTier;
  /** Configured uplink rate; 0/undefined = unknown (balance treats links equally). */
  bandwidthBps?: number;
  /** Outer DSCP of probes and control frames on this link. */
  dscp?: number;
  /**
   * Token bucket depth of the shaper (bytes) when bandwidthBps is set. Default max(2 full
   * packets, 2 ms at the rate): see qos/scheduler.ts.
   */
  shaperBurstBytes?: number;
}

export interface EdgeConfig {
  site: string;
  /** Links by index: the index is the link id on the wire and in Transmit.linkId. */
  links: EdgeLinkConfig[];
  probeIntervalMs?: number;
  /** Nothing heard for this long: path DOWN. Default 3 probe intervals. */
  deadAfterMs?: number;
  holdDownProbes?: number;
  /** Flap damping (default on); off only to measure what it saves. */
  flapDamping?: boolean;
  flowIdleTimeoutMs?: number;
  maxFlows?: number;
  /** Class policies by class id (CLASS_NAMES order); defaults from RFC 4594 / DESIGN.md. */
  policies?: readonly ClassPolicy[];
  /**
   * Noise IK keys. Without them the overlay runs in plaintext, which only benchmarks and
   * old tests ask for (config `insecurePlaintext: true`).
   */
  crypto?: EdgeCryptoConfig;
  /** FEC per class by class name, merged field by field onto DEFAULT_FEC_POLICIES (fec/policy.ts). */
  fec?: Partial<Record<ClassName, Partial<ClassFecPolicy>>>;
  /** Queueing per class on shaped links, merged onto DEFAULT_QUEUE_POLICIES (qos/policy.ts). */
  queues?: Partial<Record<ClassName, Partial<ClassQueuePolicy>>>;
  /**
   * Reed-Solomon codec for FEC. Default createGf256Codec(), the pure TypeScript one: both make
   * byte-identical parity (two edges may differ), and on this machine kind the TypeScript codec is
   * the faster (bench/fec.ts, docs/BENCHMARKS.md: 8+2 over 1400-byte shards ~33 us per group
   * against ~51 us for the reed-solomon-erasure wasm build, whose per-call copies in and out of
   * wasm memory cost more than its arithmetic saves; 16+4 ~130 us against ~190 us). The core reads
   * no files, so the wasm codec (createRsCodec) can only come from the shell.
   */
  fecCodec?: ErasureCodec;
  /**
   * Largest overlay datagram (UDP payload) the links carry without IP fragmentation: link MTU
   * minus the outer IPv4/UDP headers. Default 1472 (1500-byte links). A packet is FEC-protected
   * only when a parity datagram for it fits too (parity carries ~70 + 2k bytes of headers besides
   * the shard), so with the default 1420-byte TUN MTU full-size packets go unprotected; a class
   * that should protect full-size traffic needs a smaller TUN MTU (about 1370 for k = 16).
   */
  maxDatagramBytes?: number;
}

export interface EdgeCryptoConfig {
  privateKey: Uint8Array;
  peerPublicKey: Uint8Array;
  /** Wall-clock ms since the epoch at nowMs = 0: only for the handshake's anti-replay timestamp. */
  wallClockEpochMs: number;
  cipher?: DataCipher;
  /**
   * Who seals and opens data packets. The core's default is node:crypto (a cipher object per
   * packet); the shell passes the native addon's (OpenSSL contexts kept per key, ~4x cheaper) when
   * it loads. Per Edge, so two Edges in one process (the simulator, tests) can differ.
   */
  aead?: AeadFactory;
}

/** Where a handshake came from: the reply goes back the same way. */
interface HandshakeSource {
  linkId: number;
  from: Endpoint;
}

const PEER_ID = 'peer';
const NO_LENGTHS: readonly number[] = Object.freeze([]);
/** Inner packets held while the first session is being set up (WireGuard stages 128 too). */
const MAX_STAGED_PACKETS = 128;

/** Timers live in a table keyed by this enum; the shell arms one OS timer for the earliest. */
const enum Timer {
  Probe = 0,
  PathDead = 1,
  FlowSweep = 2,
  Reuse = 3,
  Crypto = 4,
  /** Earliest flush deadline of an open FEC group (sender). */
  FecFlush = 5,
  /** Earliest expiry of a FEC group held by a decoder (receiver; bookkeeping only). */
  FecExpire = 6,
  /** Earliest time a shaped link's token bucket lets its next datagram go. */
  Shaper = 7,
  Count = 8,
}

/** Default EdgeConfig.maxDatagramBytes: 1500 - 20 (IPv4) - 8 (UDP). */
const DEFAULT_MAX_DATAGRAM_BYTES = 1472;
/**
 * Bound on a parity datagram's bytes besides its shard, for groups of k: envelope 19 (version,
 * receiver, 64-bit counter, length) + AEAD tag 16 + FecParity fields 29 (frame tag and length,
 * link, path seq, tagged group id, index, k, m, checksum, shard tag and length) + lengths 3 + 2k
 * (each under 16384).
 */
function parityOverheadBytes(k: number): number {
  return 19 + 16 + 29 + 3 + 2 * k;
}

const AEAD_TAG_BYTES = 16;
/** Queue accounting size of a probe (epoch, 64-bit timestamp, report, envelope, tag: ~60-80 bytes). */
const PROBE_DATAGRAM_BYTES = 96;
const NO_BYTES = new Uint8Array(0);

const enum TxKind {
  /** Already sealed (hellos, drains, probe replies, handshakes, keepalives). */
  Sealed = 0,
  Data = 1,
  Parity = 2,
  Probe = 3,
}

/**
 * A datagram waiting in a shaped link's queue. Frames that carry the path's sequence number
 * (data, parity, probes) are numbered, framed and sealed when they leave the queue: priority
 * reorders the queue, and a frame numbered at enqueue would look lost to the peer (its reorder
 * grace is 100 ms) while it waits behind the voice that overtook it; a tail drop then never
 * leaves a gap in the sequence either. So the peer's loss reports, which steering and adaptive
 * FEC read, see the path and not our queue.
 */
class PendingTx {
  dupSeq = 0;
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
    readonly to: Endpoint,
    readonly dscp: number,
    readonly classId: number,
    /** Sealed: the datagram; data: a copy of the inner packet; parity: a copy of the shard. */
    readonly bytes: Uint8Array,
  ) {}
}

/** Network control: probes, handshakes, hellos and drains are queued as this class. */
const CONTROL_CLASS = 0;
/** Loss windows the adaptive FEC controller reads (the larger of the two: quick up, steady level). */
const FEC_LOSS_SHORT_MS = SHORT_WINDOW_MS;
const FEC_LOSS_LONG_MS = 5000;
/**
 * A path's delay counts as inflated (a queue building: congestion rather than random loss) when
 * its smoothed RTT exceeds the smallest seen by this much: 5 ms, or 20% on long paths.
 */
const FEC_QUEUE_DELAY_MIN_MS = 5;
const FEC_QUEUE_DELAY_RATIO = 0.2;
/** ... and by more than this many RFC 3550 jitters (a jittery LTE path's srtt sits above its minimum). */
const FEC_QUEUE_DELAY_JITTERS = 3;
/** Loss at or above this on a path with inflated delay is taken as congestion. */
const FEC_CONGESTION_MIN_LOSS_RATIO = 0.01;
/** Adaptation ticks (probe intervals) between the controller's loss-with-rate comparisons. */
const FEC_RATE_TEST_TICKS = 10;
/** Residual-loss window of the class snapshot: 30 one-second marks. */
const FEC_RESIDUAL_MARKS = 30;
/** A class decoder's byte budget (7 classes x 4 MiB at most; a 20+10 group of 1400-byte shards is ~60 KiB). */
const FEC_DECODER_BUDGET_BYTES = 4 * 1024 * 1024;

/** Sender-side FEC of one class. */
interface FecTx {
  classId: number;
  policy: ClassFecPolicy;
  encoder: FecEncoder;
  adaptive: AdaptiveParity;
  /** Datagrams (data and parity) of the class per path since the last adaptation. */
  pathPackets: Float64Array;
  /** m per early-flushed group size, rebuilt at each adaptation. */
  table: Uint8Array;
  lossRatio: number;
  paritySent: number;
  parityBytes: number;
  parityUnsent: number;
  /** Round-robin position over the parity candidates ('spread'). */
  rotor: number;
  adaptTicks: number;
  /** Longest packet protected: its parity datagram must fit maxDatagramBytes. */
  maxPacketBytes: number;
  /** Packets sent unprotected because they were longer. */
  tooLarge: number;
  /** Encoder counters of the encoders this class had before a live policy change (kept monotonic). */
  protectedBefore: number;
  cappedBefore: number;
}

/** Receiver-side FEC of one class (made when the peer first sends protected traffic of it). */
interface FecRx {
  decoder: FecDecoder;
  /** Protected data frames received and delivered (not counting late originals). */
  dataReceived: number;
  /** Data frames that arrived after their packet had been rebuilt from parity. */
  lateOriginals: number;
  /** Once a second: cumulative (expected, unrecoverable), for the residual-loss window. */
  markExpected: Float64Array;
  markLost: Float64Array;
  markHead: number;
  markCount: number;
}

/** Hysteresis: a path that left a class's SLA comes back only under this fraction of each threshold. */
const SLA_REENTRY_SLACK = 0.8;
/**
 * Re-entry into a class's SLA is judged only on what happened after the breach, over a window
 * that grows with how often the path left that SLA lately: 5 s after one breach, then 10 s, then
 * 20 s. Without it, a path with bursty loss (LTE's Gilbert-Elliott bursts: 0.5% on average, 3-8%
 * in a bad second) re-entered on a 5 s window that still held its clean pre-breach seconds, took
 * voice back and broke again a second later: all-degraded counted 84 voice moves in 20 s.
 */
const SLA_REENTRY_BASE_MS = 5000;
/** Longest re-entry window: well inside the ~32 s of peer reports PathStats keeps. */
const SLA_REENTRY_MAX_MS = 20_000;
/** The exit count behind the re-entry window decays with this half-life. */
const SLA_EXIT_HALF_LIFE_MS = 60_000;
/** Second, longer window a loss breach must also show before a path leaves a class's SLA. */
const SLA_CONFIRM_WINDOW_MS = 3000;
/** Cap on the packets re-entry wants as evidence (a 0.1% SLA would otherwise ask for 1250). */
const SLA_REENTRY_MAX_PACKETS = 300;
/** A recovered path takes back 'best' flows only if it is clearly better (score ratio). */
const REVERT_SCORE_RATIO = 0.7;

interface PathRuntime {
  id: number;
  name: string;
  remote: Endpoint;
  tier: CostTier;
  bandwidthBps: number;
  dscp: number;
  sm: PathStateMachine;
  /** Replaced when the peer restarts. */
  stats: PathStats;
  /** The peer drained its end of this path: we do not send data on it either. */
  remoteDrained: boolean;
  /** Per-path sequence shared by probes and data frames. */
  txSeq: number;
  /** Sequence of our last probe (for "good probes in a row" on the peer side, ours here). */
  lastProbeSeqRx: number;
  /** Per class: is this path within the class's SLA (with hysteresis). */
  inSla: boolean[];
  /** Per class: the current breach in words, for move reasons. */
  breach: (string | undefined)[];
  /** Per class: when the path last left the class's SLA. */
  slaOutAtMs: Float64Array;
  /** Per class: recent SLA exits (decaying, half-life SLA_EXIT_HALF_LIFE_MS) as of slaExitsAtMs. */
  slaExits: Float64Array;
  slaExitsAtMs: Float64Array;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  txDataPackets: number;
  rxDataPackets: number;
  /** Bytes sent at the last rate sample, and the smoothed send rate. */
  rateMarkBytes: number;
  rateMarkMs: number;
  txRateBps: number;
  peerLinkName: string | undefined;
  helloSent: boolean;
  /** The peer's start epoch as last seen in its probes on this path. */
  peerEpoch: number | undefined;
  /** Egress queue when the link is shaped (bandwidthBps set); undefined: transmits go at once. */
  sched: LinkScheduler<PendingTx> | undefined;
  /** Per class: this link's queue drops at the last FEC adaptation (congestion signal). */
  classDropsSeen: Float64Array;
  fecParitySent: number;
}

interface FlowEntry {
  classId: number;
  path: number;
  /** Second path of a duplicated class, or -1. */
  path2: number;
  lastSeenMs: number;
  createdMs: number;
  packets: number;
  bytes: number;
  /** The 5-tuple as bytes (inner.ts flowTuple), formatted only for the top-flows list. */
  tuple: Uint8Array;
}

/** Flows listed in snapshot().topFlows. */
const TOP_FLOWS = 10;

export class Edge {
  private readonly site: string;
  private readonly paths: PathRuntime[];
  private policies: readonly ClassPolicy[];
  private readonly probeIntervalMs: number;
  private readonly flowIdleTimeoutMs: number;
  private readonly maxFlows: number;
  private readonly rng: Rng;

  private readonly timers = new Float64Array(Timer.Count).fill(Infinity);
  private readonly transmits = new Fifo<Transmit>();
  private readonly deliveries = new Fifo<Uint8Array>();
  private readonly events = new Fifo<EdgeEvent>();
  private readonly recentEvents: EdgeEvent[] = [];
  private readonly flows = new Map<number, FlowEntry>();
  private readonly drops: Record<DropReason, number>;
  private readonly inner = newInnerInfo();
  private readonly dedupe = new DedupeWindow();
  private dupSeq = 0;
  private tunPacketsIn = 0;
  private deliveredPackets = 0;
  private duplicatesSuppressed = 0;
  private readonly classTx: { packets: number; bytes: number }[];
  private readonly classMoves: number[];
  private flowMoves = 0;
  /** Random per start: the peer sees a new epoch in our probes and restarts its sequence tracking. */
  private readonly epoch: number;
  /** Undefined in plaintext mode. */
  private readonly sessions: SessionManager<HandshakeSource> | undefined;
  /** Inner packets that arrived before the first session: sent when it is up. */
  private staged: Uint8Array[] = [];
  /** Time of the input being handled (send paths seal with it). */
  private nowMs: number;
  private fecPolicies: readonly ClassFecPolicy[];
  private readonly queuePolicies: readonly ClassQueuePolicy[];
  private readonly fecCodec: ErasureCodec;
  /** Per class: sender FEC state, undefined when FEC is off for the class. */
  private readonly fecTx: (FecTx | undefined)[];
  private fecTxList: FecTx[];
  /** Per class: receiver FEC state, made on the first protected frame of the class. */
  private readonly fecRx: (FecRx | undefined)[];
  /** The peer epoch the decoders' groups belong to: a new one (peer restart) resets them. */
  private fecPeerEpoch: number | undefined;
  private fecMarkMs: number;
  /** Reused adapter from a wire FecParity to the decoder's input (no allocation per parity). */
  private readonly parityIn: { groupId: number; index: number; k: number; m: number; lengths: ArrayLike<number>; checksum: number; shard: Uint8Array } = { groupId: 0, index: 0, k: 0, m: 0, lengths: [], checksum: 0, shard: new Uint8Array(0) };
  /** Reused parity fields for the frame writer, and the lengths of an all-same-size group. */
  private readonly parityOut: { groupId: number; index: number; k: number; m: number; lengths: ArrayLike<number>; checksum: number; shard: Uint8Array } = { groupId: 0, index: 0, k: 0, m: 0, lengths: [], checksum: 0, shard: new Uint8Array(0) };
  private readonly uniformLengths: number[] = [];
  /** Data datagram bytes on the wire per class (for the FEC overhead ratio). */
  private readonly classWireBytes: Float64Array;
  /** Scratch for parity placement and adaptation. */
  private readonly pathScratch = new Int32Array(MAX_LINKS);
  private readonly lossScratch: number[] = [];
  private readonly shareScratch: number[] = [];
  private readonly anyShaped: boolean;
  private readonly maxDatagramBytes: number;

  constructor(config: EdgeConfig, nowMs: number, rng: Rng) {
    if (config.links.length > MAX_LINKS) throw new Error(`at most ${MAX_LINKS} links`);
    this.site = config.site;
    this.rng = rng;
    this.nowMs = nowMs;
    this.epoch = rng.nextU32() || 1;
    if (config.crypto) {
      const c = config.crypto;
      this.sessions = new SessionManager<HandshakeSource>({
        local: keyPairFromPrivate(c.privateKey),
        rng,
        wallClockEpochMs: c.wallClockEpochMs,
        ciphers: { preferred: c.cipher ?? 'chacha20-poly1305', accepted: ['chacha20-poly1305', 'aes-256-gcm'] },
        ...(c.aead ? { aead: c.aead } : {}),
      });
      this.sessions.addPeer(PEER_ID, c.peerPublicKey);
    }
    this.probeIntervalMs = config.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    const deadAfterMs = config.deadAfterMs ?? DEAD_AFTER_PROBES * this.probeIntervalMs;
    const holdDownProbes = config.holdDownProbes ?? HOLD_DOWN_PROBES;
    this.flowIdleTimeoutMs = config.flowIdleTimeoutMs ?? FLOW_IDLE_TIMEOUT_MS;
    this.maxFlows = config.maxFlows ?? MAX_FLOWS;
    this.policies = config.policies ?? DEFAULT_POLICIES;
    if (this.policies.length !== CLASS_NAMES.length) throw new Error(`policies: expected ${CLASS_NAMES.length} classes`);
    this.fecCodec = config.fecCodec ?? createGf256Codec();
    this.maxDatagramBytes = config.maxDatagramBytes ?? DEFAULT_MAX_DATAGRAM_BYTES;
    this.fecPolicies = CLASS_NAMES.map((name, i) => {
      const p: ClassFecPolicy = { ...DEFAULT_FEC_POLICIES[i]!, ...stripUndefined(config.fec?.[name]) };
      checkFecPolicy(p, `class ${name}`);
      return p;
    });
    this.queuePolicies = CLASS_NAMES.map((name, i) => {
      const p: ClassQueuePolicy = { ...DEFAULT_QUEUE_POLICIES[i]!, ...stripUndefined(config.queues?.[name]) };
      checkQueuePolicy(p, `class ${name}`);
      return p;
    });
    this.fecTx = this.fecPolicies.map((pol, classId) => (pol.enabled && pol.maxM > 0 ? this.makeFecTx(classId, pol) : undefined));
    this.fecTxList = this.fecTx.filter((f): f is FecTx => f !== undefined);
    this.fecRx = CLASS_NAMES.map(() => undefined);
    this.fecMarkMs = nowMs;
    this.paths = config.links.map((l, id) => ({
      id,
      name: l.name,
      remote: { ...l.remote },
      tier: l.costTier ?? 'primary',
      bandwidthBps: l.bandwidthBps ?? 0,
      dscp: l.dscp ?? 48, // probes are network control (CS6) unless told otherwise
      sm: new PathStateMachine({ deadAfterMs, holdDownProbes, flapDamping: config.flapDamping ?? true }, nowMs),
      stats: new PathStats(),
      remoteDrained: false,
      txSeq: 0,
      lastProbeSeqRx: -1,
      inSla: CLASS_NAMES.map(() => true),
      breach: CLASS_NAMES.map(() => undefined),
      slaOutAtMs: new Float64Array(CLASS_NAMES.length),
      slaExits: new Float64Array(CLASS_NAMES.length),
      slaExitsAtMs: new Float64Array(CLASS_NAMES.length),
      txPackets: 0,
      txBytes: 0,
      rxPackets: 0,
      rxBytes: 0,
      txDataPackets: 0,
      rxDataPackets: 0,
      rateMarkBytes: 0,
      rateMarkMs: nowMs,
      txRateBps: 0,
      peerLinkName: undefined,
      helloSent: false,
      peerEpoch: undefined,
      sched:
        l.bandwidthBps !== undefined && l.bandwidthBps > 0
          ? new LinkScheduler<PendingTx>({ rateBps: l.bandwidthBps, classes: this.queuePolicies, ...(l.shaperBurstBytes ? { burstBytes: l.shaperBurstBytes } : {}) }, nowMs)
          : undefined,
      classDropsSeen: new Float64Array(CLASS_NAMES.length),
      fecParitySent: 0,
    }));
    this.anyShaped = this.paths.some((p) => p.sched !== undefined);
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
    this.classTx = CLASS_NAMES.map(() => ({ packets: 0, bytes: 0 }));
    this.classWireBytes = new Float64Array(CLASS_NAMES.length);
    this.classMoves = CLASS_NAMES.map(() => 0);
    // Spread the first probes of many edges started at once (a fleet reboot).
    this.timers[Timer.Probe] = nowMs + Math.floor(this.rng.nextFloat() * Math.min(this.probeIntervalMs, 10));
    this.timers[Timer.FlowSweep] = nowMs + 1000;
    this.rearmPathTimers(nowMs);
    if (this.sessions) {
      // Handshake at once: the first packet of the site should not wait for it.
      this.sessions.connect(nowMs, PEER_ID);
      this.drainCrypto(nowMs);
    }
  }

  // ---- inputs ------------------------------------------------------------------------------

  handleTunPacket(nowMs: number, packet: Uint8Array): void {
    this.nowMs = nowMs;
    this.tunPacketsIn++;
    if (packet.length > MAX_INNER_PACKET_BYTES) return this.drop('tooLarge');
    const info = parseInner(packet, this.inner);
    if (!info) return this.drop('badInner');
    if (this.paths.length === 0) return this.drop('noLink');
    const flow = this.flowFor(nowMs, info.flowHash, classOfDscp(info.dscp), packet, info);
    flow.packets++;
    flow.bytes += packet.length;
    const classId = flow.classId;
    const cls = this.classTx[classId]!;
    cls.packets++;
    cls.bytes += packet.length;
    const outerDscp = this.policies[classId]!.outerDscp;
    const fec = this.fecTx[classId];
    // FEC for single-path flows once a session exists (a staged packet must not hold a group slot:
    // it is sent later under a new stamp). Duplicated flows are redundant already, and a frame never
    // carries dup_seq and FEC fields together (the overhead budget counts on it).
    if (fec !== undefined && flow.path2 < 0 && (this.sessions === undefined || this.sessionUp) && packet.length <= fec.maxPacketBytes) {
      fec.pathPackets[flow.path]!++;
      const stamp = fec.encoder.push(nowMs, packet, flow.path);
      if (stamp !== undefined) {
        if (stamp.index === 0) {
          const due = nowMs + fec.policy.flushMs;
          if (due < this.timers[Timer.FecFlush]!) this.timers[Timer.FecFlush] = due;
        }
        // Not staged on failure: the group already counts the packet, a second stamp could make
        // the receiver deliver it twice (once rebuilt, once as the staged copy).
        if (!this.sendData(this.paths[flow.path]!, packet, outerDscp, 0, classId, stamp.groupId, stamp.index, stamp.k)) this.drop('noSession');
        this.sendParity(fec);
        return;
      }
    }
    if (fec !== undefined && packet.length > fec.maxPacketBytes) fec.tooLarge++;
    let dupSeq = 0;
    if (flow.path2 >= 0) {
      this.dupSeq = (this.dupSeq + 1) >>> 0 || 1;
      dupSeq = this.dupSeq;
    }
    if (!this.sendData(this.paths[flow.path]!, packet, outerDscp, dupSeq, classId)) {
      // No session yet (or it expired): hold a few packets, copied since the caller reuses its
      // buffer, and send them when the handshake completes instead of losing every flow's first packets.
      if (this.staged.length >= MAX_STAGED_PACKETS) return this.drop('noSession');
      this.staged.push(copyBytes(packet));
      return;
    }
    if (flow.path2 >= 0) this.sendData(this.paths[flow.path2]!, packet, outerDscp, dupSeq, classId);
  }

  handleDatagram(nowMs: number, linkId: number, from: Endpoint, datagram: Uint8Array): void {
    this.nowMs = nowMs;
    const path = this.paths[linkId];
    if (!path) return this.drop('unknownLink');
    path.rxPackets++;
    path.rxBytes += datagram.length;
    const env = decodeEnvelope(datagram);
    if (!env.ok) return this.drop(env.reason);
    const e = env.value;
    if (!this.sessions) {
      if (e.receiver !== 0 || (e.handshake && e.handshake.length > 0)) return this.drop('unauthenticated');
      const frame = decodeFrame(e.sealed);
      if (!frame.ok) return this.drop(frame.reason);
      return this.handleFrame(nowMs, path, from, frame.value);
    }
    if (e.handshake && e.handshake.length > 0) {
      // Unauthenticated until the handshake code says otherwise: no path state is touched.
      this.sessions.handleHandshake(nowMs, { linkId, from }, formatEndpoint(from), e.handshake);
      this.drainCrypto(nowMs);
      return;
    }
    if (e.receiver === 0) return this.drop('unauthenticated');
    const opened = this.sessions.open(nowMs, e.receiver, e.counter, e.sealed);
    if (!opened.ok) {
      this.drop(opened.reason);
      return;
    }
    this.drainCrypto(nowMs);
    // Authenticated: the peer may have moved (NAT rebinding, a new address on LTE). Follow it.
    if (from.address !== path.remote.address || from.port !== path.remote.port) {
      this.emit(nowMs, 'pathState', path.name, `${path.name}: peer endpoint ${formatEndpoint(path.remote)} -> ${formatEndpoint(from)}`);
      path.remote = { address: from.address, port: from.port };
    }
    if (opened.plaintext.length === 0) {
      // Keepalive: proves the path and the session, carries nothing.
      this.applyTransition(nowMs, path, path.sm.onHeard(nowMs, false, true));
      return;
    }
    const frame = decodeFrame(opened.plaintext);
    if (!frame.ok) return this.drop(frame.reason);
    this.handleFrame(nowMs, path, from, frame.value);
  }

  handleTimeout(nowMs: number): void {
    this.nowMs = nowMs;
    if (this.sessions && nowMs >= this.timers[Timer.Crypto]!) {
      this.sessions.handleTimeout(nowMs);
      this.drainCrypto(nowMs);
    }
    if (nowMs >= this.timers[Timer.PathDead]! || nowMs >= this.timers[Timer.Reuse]!) {
      for (const p of this.paths) {
        this.applyTransition(nowMs, p, p.sm.onTimeout(nowMs));
        this.applyTransition(nowMs, p, p.sm.onReuseCheck(nowMs));
      }
    }
    if (nowMs >= this.timers[Timer.Probe]!) {
      for (const p of this.paths) {
        this.sendProbe(nowMs, p);
        this.sampleRate(nowMs, p);
      }
      this.evaluateSla(nowMs);
      this.adaptFec(nowMs);
      if (nowMs - this.fecMarkMs >= 1000) this.markFecWindows(nowMs);
      this.timers[Timer.Probe] = nowMs + this.probeIntervalMs;
    }
    if (nowMs >= this.timers[Timer.FlowSweep]!) {
      this.sweepFlows(nowMs);
      this.timers[Timer.FlowSweep] = nowMs + 1000;
    }
    if (nowMs >= this.timers[Timer.FecFlush]!) {
      let next = Infinity;
      for (const fec of this.fecTxList) {
        fec.encoder.onTimeout(nowMs);
        this.sendParity(fec);
        const d = fec.encoder.nextDeadlineMs();
        if (d !== undefined && d < next) next = d;
      }
      this.timers[Timer.FecFlush] = next;
    }
    if (nowMs >= this.timers[Timer.FecExpire]!) {
      let next = Infinity;
      for (const rx of this.fecRx) {
        if (rx === undefined) continue;
        const before = rx.decoder.counters.malformed;
        rx.decoder.onTimeout(nowMs);
        this.drops.fecMalformed += rx.decoder.counters.malformed - before;
        const d = rx.decoder.nextDeadlineMs();
        if (d !== undefined && d < next) next = d;
      }
      this.timers[Timer.FecExpire] = next;
    }
    if (nowMs >= this.timers[Timer.Shaper]!) this.releaseShaped(nowMs);
    this.rearmPathTimers(nowMs);
  }

  /**
   * Live class changes (config reload): SLA, strategy and outer DSCP from `policies` (all seven, in
   * CLASS_NAMES order), FEC from `fec` (overrides merged on the defaults, as at construction).
   * Validates everything before changing anything (RangeError naming the class and field).
   * A class whose SLA changed is judged afresh from the next probe interval; one whose strategy
   * changed has its flows re-steered now; one whose FEC changed gets a new encoder (its open group
   * goes out without parity; group ids continue). Queue policies are not live (the shell says so).
   * Returns what changed, e.g. ["voice: sla", "bulk: fec"], for the shell's log line.
   */
  setClassPolicies(nowMs: number, policies: readonly ClassPolicy[], fec: Partial<Record<ClassName, Partial<ClassFecPolicy>>> = {}): string[] {
    this.nowMs = nowMs;
    if (policies.length !== CLASS_NAMES.length) throw new RangeError(`policies: expected ${CLASS_NAMES.length} classes, got ${policies.length}`);
    const nextFec = CLASS_NAMES.map((name, i) => {
      const p: ClassFecPolicy = { ...DEFAULT_FEC_POLICIES[i]!, ...stripUndefined(fec[name]) };
      checkFecPolicy(p, `class ${name}`);
      return p;
    });
    const changed: string[] = [];
    const old = this.policies;
    this.policies = policies.map((p) => ({ ...p, sla: { ...p.sla } }));
    for (let c = 0; c < CLASS_NAMES.length; c++) {
      const name = CLASS_NAMES[c]!;
      const was = old[c]!;
      const now = this.policies[c]!;
      if (JSON.stringify(was.sla) !== JSON.stringify(now.sla)) {
        changed.push(`${name}: sla`);
        for (const p of this.paths) {
          p.inSla[c] = true;
          p.breach[c] = undefined;
          p.slaExits[c] = 0;
        }
      }
      if (was.outerDscp !== now.outerDscp) changed.push(`${name}: outerDscp`);
      if (was.strategy !== now.strategy) {
        changed.push(`${name}: strategy`);
        this.resteer(nowMs, (f) => f.classId === c, `${name} strategy now ${now.strategy}`, c);
      }
      if (JSON.stringify(this.fecPolicies[c]) !== JSON.stringify(nextFec[c])) {
        changed.push(`${name}: fec`);
        const before = this.fecTx[c];
        const pol = nextFec[c]!;
        // +1: nextGroupId is the old encoder's open group when one is open, whose data already
        // went out under that id (reusing it made the receiver drop the new group's first packets
        // as duplicates: found by the live-classes test).
        const next = pol.enabled && pol.maxM > 0 ? this.makeFecTx(c, pol, before ? before.encoder.nextGroupId + 1 : undefined) : undefined;
        if (next && before) {
          next.paritySent = before.paritySent;
          next.parityBytes = before.parityBytes;
          next.parityUnsent = before.parityUnsent;
          next.tooLarge = before.tooLarge;
          next.protectedBefore = before.protectedBefore + before.encoder.counters.protectedPackets;
          next.cappedBefore = before.cappedBefore + before.encoder.counters.parityCapped;
        }
        this.fecTx[c] = next;
      }
    }
    this.fecPolicies = nextFec;
    this.fecTxList = this.fecTx.filter((f): f is FecTx => f !== undefined);
    if (changed.length > 0) this.emit(nowMs, 'config', undefined, `classes changed live: ${changed.join(', ')}`);
    return changed;
  }

  /** The TOP_FLOWS flows that sent the most bytes: one pass keeping a small sorted list. */
  private topFlows(nowMs: number): FlowSnapshot[] {
    const top: FlowEntry[] = [];
    for (const f of this.flows.values()) {
      if (top.length === TOP_FLOWS && f.bytes <= top[TOP_FLOWS - 1]!.bytes) continue;
      let i = top.length < TOP_FLOWS ? top.length : TOP_FLOWS - 1;
      top[i] = f;
      while (i > 0 && top[i - 1]!.bytes < f.bytes) {
        top[i] = top[i - 1]!;
        top[--i] = f;
      }
    }
    return top.map((f) => {
      const ageMs = Math.max(0, nowMs - f.createdMs);
      const activeMs = f.lastSeenMs - f.createdMs;
      return {
        flow: formatFlowTuple(f.tuple),
        class: CLASS_NAMES[f.classId]!,
        links: this.pathLabel(f.path, f.path2),
        packets: f.packets,
        bytes: f.bytes,
        ageMs,
        rateBps: activeMs >= 1 ? Math.round((f.bytes * 8 * 1000) / activeMs) : 0,
      };
    });
  }

  /** Operator drain: a drained link carries no data (probes continue so its state stays known). */
  setLinkAdmin(nowMs: number, linkId: number, drained: boolean): void {
    this.nowMs = nowMs;
    const path = this.paths[linkId];
    if (!path) return;
    this.applyTransition(nowMs, path, path.sm.setDrained(drained));
    // Tell the peer so it stops sending on this link too.
    const frame = encodeFrame({ kind: 'control', control: { drain: { link: path.id, drained } } });
    for (const p of this.paths) this.sendFrame(p, p.remote, frame, p.dscp);
    this.rearmPathTimers(nowMs);
  }

  // ---- outputs -----------------------------------------------------------------------------

  pollTransmit(): Transmit | undefined {
    return this.transmits.shift();
  }

  pollDelivery(): Uint8Array | undefined {
    return this.deliveries.shift();
  }

  pollTimeout(): number | undefined {
    let t = Infinity;
    for (let i = 0; i < Timer.Count; i++) if (this.timers[i]! < t) t = this.timers[i]!;
    return t === Infinity ? undefined : t;
  }

  pollEvent(): EdgeEvent | undefined {
    return this.events.shift();
  }

  snapshot(nowMs: number): EdgeSnapshot {
    const flowsPerPath = this.paths.map(() => 0);
    const flowsPerClass = CLASS_NAMES.map(() => 0);
    const activePerClass = CLASS_NAMES.map(() => new Set<number>());
    for (const f of this.flows.values()) {
      flowsPerPath[f.path]!++;
      flowsPerClass[f.classId]!++;
      activePerClass[f.classId]!.add(f.path);
      if (f.path2 >= 0) activePerClass[f.classId]!.add(f.path2);
    }
    const links: LinkSnapshot[] = this.paths.map((p) => ({
      id: p.id,
      name: p.name,
      state: this.effectiveState(p),
      tier: p.tier,
      remote: formatEndpoint(p.remote),
      rttMs: p.stats.srttMs,
      rttP50Ms: p.stats.rttPercentileMs(50),
      rttP99Ms: p.stats.rttPercentileMs(99),
      jitterMs: p.stats.jitterMs,
      txJitterMs: p.stats.peerJitterMs,
      txLossRatio: p.stats.txLossRatio(nowMs, SHORT_WINDOW_MS),
      rxLossRatio: p.stats.rxLossRatio(nowMs, SHORT_WINDOW_MS),
      txLossLongRatio: p.stats.txLossRatio(nowMs, LONG_WINDOW_MS),
      rxLossLongRatio: p.stats.rxLossRatio(nowMs, LONG_WINDOW_MS),
      txLossTotalRatio: p.stats.txLossTotalRatio(),
      rxLossTotalRatio: p.stats.rxLossTotalRatio(),
      lastHeardAgoMs: p.sm.lastHeardMs === undefined ? undefined : nowMs - p.sm.lastHeardMs,
      flaps: p.sm.flaps,
      suppressed: p.sm.suppressed,
      txRateBps: p.txRateBps,
      txPackets: p.txPackets,
      txBytes: p.txBytes,
      rxPackets: p.rxPackets,
      rxBytes: p.rxBytes,
      txDataPackets: p.txDataPackets,
      rxDataPackets: p.rxDataPackets,
      flows: flowsPerPath[p.id]!,
      peerLinkName: p.peerLinkName,
      ...(p.sched ? { shaperRateBps: p.sched.rateBps, queuedPackets: p.sched.queuedPackets, queueDrops: totalDrops(p.sched) } : {}),
      ...(this.fecTxList.length > 0 ? { fecParitySent: p.fecParitySent } : {}),
    }));
    const classes: ClassSnapshot[] = this.policies.map((pol, i) => ({
      name: pol.name,
      strategy: pol.strategy,
      flows: flowsPerClass[i]!,
      activeLinks: [...activePerClass[i]!].sort((a, b) => a - b).map((id) => this.paths[id]!.name),
      txPackets: this.classTx[i]!.packets,
      txBytes: this.classTx[i]!.bytes,
      moves: this.classMoves[i]!,
      outerDscp: pol.outerDscp,
      ...this.classFecSnapshot(i),
      ...this.classQueueSnapshot(i),
    }));
    return {
      nowMs,
      site: this.site,
      links,
      classes,
      flows: this.flows.size,
      flowMoves: this.flowMoves,
      topFlows: this.topFlows(nowMs),
      tunPacketsIn: this.tunPacketsIn,
      deliveredPackets: this.deliveredPackets,
      duplicatesSuppressed: this.duplicatesSuppressed,
      session: this.sessionSnapshot(nowMs),
      drops: { ...this.drops },
      recentEvents: this.recentEvents.slice(),
    };
  }

  private classFecSnapshot(classId: number): Partial<ClassSnapshot> {
    const out: Partial<ClassSnapshot> = {};
    const tx = this.fecTx[classId];
    if (tx !== undefined) {
      const e = tx.encoder;
      out.fecK = tx.policy.k;
      out.fecM = e.m;
      out.fecProtectedPackets = tx.protectedBefore + e.counters.protectedPackets;
      out.fecParitySent = tx.paritySent;
      out.fecParityBytes = tx.parityBytes;
      const wire = this.classWireBytes[classId]!;
      out.fecDataWireBytes = wire;
      out.fecOverheadRatio = wire > 0 ? tx.parityBytes / wire : 0;
      out.fecLossRatio = tx.lossRatio;
      out.fecCongested = tx.adaptive.congested(this.nowMs);
      out.fecTooLarge = tx.tooLarge;
      out.fecParityCapped = tx.cappedBefore + e.counters.parityCapped;
    }
    const rx = this.fecRx[classId];
    if (rx !== undefined) {
      const c = rx.decoder.counters;
      out.fecRecovered = c.recovered;
      out.fecUnrecoverable = c.unrecoverable;
      out.fecMalformed = c.malformed;
      out.fecLateOriginals = rx.lateOriginals;
      const r = this.residualOf(rx);
      if (r !== undefined) out.residualLossRatio = r;
    }
    return out;
  }

  private classQueueSnapshot(classId: number): Partial<ClassSnapshot> {
    if (!this.anyShaped) return {};
    let drops = 0;
    let sent = 0;
    let delaySum = 0;
    let delayMax = 0;
    for (const p of this.paths) {
      const c = p.sched?.counters[classId];
      if (c === undefined) continue;
      drops += c.dropped;
      sent += c.sent;
      delaySum += c.delaySumMs;
      if (c.delayMaxMs > delayMax) delayMax = c.delayMaxMs;
    }
    return { queueDrops: drops, queueDelayAvgMs: sent > 0 ? delaySum / sent : 0, queueDelayMaxMs: delayMax };
  }

  private sessionSnapshot(nowMs: number): EdgeSnapshot['session'] {
    if (!this.sessions) return { encrypted: false, established: false, ageMs: undefined, cipher: undefined, handshakeAttempts: 0, handshakeDrops: {} };
    const s: SessionManagerSnapshot = this.sessions.snapshot(nowMs);
    const peer = s.peers[0];
    const handshakeDrops: Record<string, number> = {};
    for (const [k, v] of Object.entries(s.handshakeDrops)) if (v > 0) handshakeDrops[k] = v;
    return {
      encrypted: true,
      established: peer?.hasSession ?? false,
      ageMs: peer?.sessionAgeMs,
      cipher: peer?.cipher,
      handshakeAttempts: peer?.handshakeAttempts ?? 0,
      handshakeDrops,
      underLoad: s.underLoad,
    };
  }

  // ---- receive -----------------------------------------------------------------------------

  private handleFrame(nowMs: number, path: PathRuntime, from: Endpoint, frame: Frame): void {
    switch (frame.kind) {
      case 'data': {
        const d = frame.data;
        path.stats.onReceiveSeq(nowMs, d.pathSeq);
        this.applyTransition(nowMs, path, path.sm.onHeard(nowMs, false, true));
        path.rxDataPackets++;
        if (d.dupSeq !== 0 && !this.dedupe.accept(d.dupSeq)) {
          this.duplicatesSuppressed++;
          return;
        }
        if (d.fecGroup !== 0) return this.receiveProtected(nowMs, d.fecGroup, d.fecIndex, d.fecK, d.packet);
        this.deliver(d.packet);
        return;
      }
      case 'probe': {
        const p = frame.probe;
        if (p.epoch && p.epoch !== path.peerEpoch) {
          if (path.peerEpoch !== undefined) {
            // The peer restarted: its sequences start over, old statistics no longer apply.
            path.stats = new PathStats();
            path.lastProbeSeqRx = -1;
            path.helloSent = false;
            this.emit(nowMs, 'pathState', path.name, `${path.name}: peer restarted (new epoch), path statistics reset`);
          }
          path.peerEpoch = p.epoch;
          if (p.epoch !== this.fecPeerEpoch) {
            // FEC groups of the peer's previous life can never complete: forget them (counters stay).
            if (this.fecPeerEpoch !== undefined) for (const rx of this.fecRx) rx?.decoder.reset();
            this.fecPeerEpoch = p.epoch;
          }
        }
        path.stats.onReceiveSeq(nowMs, p.seq);
        path.stats.onProbeArrival(nowMs, p.txUs / 1000);
        if (p.report) this.takePeerReport(nowMs, path, p.report);
        const inOrder = path.lastProbeSeqRx < 0 || ((p.seq - path.lastProbeSeqRx) | 0) > 0;
        path.lastProbeSeqRx = p.seq;
        this.applyTransition(nowMs, path, path.sm.onHeard(nowMs, true, inOrder));
        // Reply on the reverse of the probe's path, echoing its timestamp (STAMP-style).
        const reply = encodeFrame({
          kind: 'probeReply',
          probeReply: { link: path.id, seq: p.seq, txUs: p.txUs, holdUs: 0, report: path.stats.report(nowMs) },
        });
        this.sendFrame(path, from, reply, p.dscp);
        if (!path.helloSent) this.sendHello(path);
        return;
      }
      case 'probeReply': {
        const r = frame.probeReply;
        path.stats.onRttSample(nowMs - r.txUs / 1000 - r.holdUs / 1000);
        if (r.report) this.takePeerReport(nowMs, path, r.report);
        this.applyTransition(nowMs, path, path.sm.onHeard(nowMs, false, true));
        return;
      }
      case 'control': {
        this.applyTransition(nowMs, path, path.sm.onHeard(nowMs, false, true));
        const { hello, drain } = frame.control;
        if (hello && hello.linkName !== path.peerLinkName) {
          path.peerLinkName = hello.linkName;
          this.emit(nowMs, 'peerHello', path.name, `${path.name}: peer ${hello.site} link ${hello.linkName}`);
        }
        if (drain) {
          const target = this.paths[drain.link];
          if (target && target.remoteDrained !== drain.drained) {
            target.remoteDrained = drain.drained;
            this.emit(nowMs, 'pathState', target.name, `${target.name}: ${drain.drained ? 'drained' : 'undrained'} by the peer's operator`);
            this.resteer(nowMs, (f) => f.path === target.id || f.path2 === target.id || !drain.drained, `${target.name} drained by peer`);
          }
        }
        return;
      }
      case 'fecParity': {
        const f = frame.fecParity;
        // Parity shares the path's sequence with data and probes: count it, or it looks like loss.
        path.stats.onReceiveSeq(nowMs, f.pathSeq);
        this.applyTransition(nowMs, path, path.sm.onHeard(nowMs, false, true));
        this.receiveParity(nowMs, f);
        return;
      }
    }
  }

  /**
   * A peer's report of what it received from us on this path. One claiming a sequence number we
   * have not sent yet describes our previous life (we restarted; the peer has not seen our new
   * epoch yet): taken, it would make every honest report after it look stale for as long as our
   * new sequence takes to pass the old one (seconds with no tx-loss figure, so no adaptive FEC).
   */
  private takePeerReport(nowMs: number, path: PathRuntime, report: PathReport): void {
    if (((report.highestSeq - path.txSeq) | 0) > 0) return;
    path.stats.onPeerReport(nowMs, report.received, report.highestSeq);
    path.stats.onPeerJitter(nowMs, report.jitterUs);
  }

  // ---- FEC receive -------------------------------------------------------------------------

  /** The class decoder a group id is tagged for, made on first use; undefined for a bad tag. */
  private fecRxFor(groupId: number): FecRx | undefined {
    const classId = groupId >>> FEC_GROUP_TAG_SHIFT;
    if (classId >= CLASS_NAMES.length || (groupId & FEC_GROUP_COUNTER_MASK) === 0) return undefined;
    let rx = this.fecRx[classId];
    if (rx === undefined) {
      rx = {
        decoder: new FecDecoder(this.fecCodec, { budgetBytes: FEC_DECODER_BUDGET_BYTES }),
        dataReceived: 0,
        lateOriginals: 0,
        markExpected: new Float64Array(FEC_RESIDUAL_MARKS),
        markLost: new Float64Array(FEC_RESIDUAL_MARKS),
        markHead: 0,
        markCount: 0,
      };
      this.fecRx[classId] = rx;
    }
    return rx;
  }

  /**
   * A protected data packet: delivered at once unless it is a copy of one already delivered
   * (received before, or rebuilt from parity before it arrived), then kept for its group.
   */
  private receiveProtected(nowMs: number, groupId: number, index: number, fecK: number | undefined, packet: Uint8Array): void {
    const rx = this.fecRxFor(groupId);
    if (rx === undefined) {
      // Authenticated data with a FEC tag we cannot place: deliver it, count the bad tag.
      this.drop('fecMalformed');
      this.deliver(packet);
      return;
    }
    const dec = rx.decoder;
    if (dec.isDelivered(groupId, index)) {
      // Usually an original that was rebuilt from parity before it arrived (a slower data path).
      rx.lateOriginals++;
      this.duplicatesSuppressed++;
      return;
    }
    rx.dataReceived++;
    this.deliver(packet);
    const before = dec.counters.malformed;
    const rebuilt = dec.onData(nowMs, groupId, index, fecK !== undefined && fecK !== 0 ? fecK : undefined, packet);
    this.afterDecode(nowMs, dec, before, rebuilt);
  }

  private receiveParity(nowMs: number, f: WireParityFrame): void {
    const rx = this.fecRxFor(f.group);
    if (rx === undefined) return this.drop('fecMalformed');
    const a = this.parityIn;
    a.groupId = f.group;
    a.index = f.index;
    a.k = f.k;
    a.m = f.m;
    if (f.lengths.length === 0 && f.k >= 1 && f.k <= FEC_MAX_K) {
      // Lengths left out: every data packet of the group is as long as the shard.
      const u = this.uniformLengths;
      u.length = f.k;
      u.fill(f.shard.length);
      a.lengths = u;
    } else {
      a.lengths = f.lengths;
    }
    a.checksum = f.checksum ?? 0;
    a.shard = f.shard;
    const dec = rx.decoder;
    const before = dec.counters.malformed;
    const rebuilt = dec.onParity(nowMs, a as FecParityFrame);
    this.afterDecode(nowMs, dec, before, rebuilt);
  }

  private afterDecode(nowMs: number, dec: FecDecoder, malformedBefore: number, rebuilt: readonly RecoveredPacket[]): void {
    const bad = dec.counters.malformed - malformedBefore;
    if (bad !== 0) this.drops.fecMalformed += bad;
    for (let i = 0; i < rebuilt.length; i++) this.deliver(rebuilt[i]!.packet);
    // No live group before means none expires earlier than one made now (see handleTimeout).
    if (this.timers[Timer.FecExpire] === Infinity && dec.liveGroups > 0) this.timers[Timer.FecExpire] = nowMs + dec.expireMs;
  }

  /** Once a second: the residual-loss window marks of every class decoder. */
  private markFecWindows(nowMs: number): void {
    this.fecMarkMs = nowMs;
    for (const rx of this.fecRx) {
      if (rx === undefined) continue;
      const c = rx.decoder.counters;
      rx.markExpected[rx.markHead] = rx.dataReceived + c.recovered + c.unrecoverable;
      rx.markLost[rx.markHead] = c.unrecoverable;
      rx.markHead = (rx.markHead + 1) % FEC_RESIDUAL_MARKS;
      if (rx.markCount < FEC_RESIDUAL_MARKS) rx.markCount++;
    }
  }

  private residualOf(rx: FecRx): number | undefined {
    const c = rx.decoder.counters;
    const expected = rx.dataReceived + c.recovered + c.unrecoverable;
    const oldest = rx.markCount < FEC_RESIDUAL_MARKS ? 0 : rx.markHead;
    const e0 = rx.markCount === 0 ? 0 : rx.markCount < FEC_RESIDUAL_MARKS ? 0 : rx.markExpected[oldest]!;
    const l0 = rx.markCount === 0 ? 0 : rx.markCount < FEC_RESIDUAL_MARKS ? 0 : rx.markLost[oldest]!;
    const de = expected - e0;
    return de > 0 ? (c.unrecoverable - l0) / de : undefined;
  }

  // ---- path state and steering -------------------------------------------------------------

  private effectiveState(p: PathRuntime): PathState {
    if (p.remoteDrained && p.sm.state !== 'down') return 'drained';
    return p.sm.state;
  }

  private usable(p: PathRuntime): boolean {
    return p.sm.usable && !p.remoteDrained;
  }

  /**
   * Steering's view of a path over `windowMs`. `minLost` (default MIN_LOST_FOR_SLA) keeps one lost
   * probe on an idle path from reading as 10% loss in a 1 s window; re-entry judges a window of
   * many seconds, where every loss counts (else 2 of 100 probes lost read as 0%).
   */
  private metrics(nowMs: number, p: PathRuntime, windowMs: number, minLost = MIN_LOST_FOR_SLA): PathMetrics {
    return { txLossRatio: p.stats.txLossRatio(nowMs, windowMs, minLost), rttMs: p.stats.srttMs, jitterMs: p.stats.txJitterMs(nowMs) };
  }

  private applyTransition(nowMs: number, p: PathRuntime, t: PathTransition): void {
    if (!t) return;
    this.emit(nowMs, t.to === 'down' || t.to === 'drained' ? 'linkDown' : t.to === 'up' && t.from !== 'degraded' ? 'linkUp' : 'pathState', p.name, `${p.name}: ${t.from} -> ${t.to} (${t.reason})`);
    if (t.to === 'down' || t.to === 'drained') {
      this.resteer(nowMs, (f) => f.path === p.id || f.path2 === p.id, `${p.name} ${t.to === 'down' ? `down: ${t.reason}` : 'drained'}`);
    } else if (t.to === 'up' && t.from !== 'degraded') {
      // What was lost while the path was down is history (DOWN already acted on it): judge the
      // path's loss afresh from here, or it would stay out of SLA for a whole window. The
      // hold-down (10 good probes in a row, flap damping) was this path's re-entry test, so its
      // SLA standing starts clean too; SLA exits while UP are what re-entry evidence is for.
      p.stats.resetTx();
      for (let c = 0; c < this.policies.length; c++) {
        // Loss starts afresh; RTT and jitter are current and still count (a jitter storm can
        // make a path fall silent for 300 ms and come back just as jittery).
        if (p.inSla[c] || slaBreach({ txLossRatio: undefined, rttMs: p.stats.srttMs, jitterMs: p.stats.txJitterMs(nowMs) }, this.policies[c]!.sla, SLA_REENTRY_SLACK)) continue;
        p.inSla[c] = true;
        p.breach[c] = undefined;
      }
      this.onPathRecovered(nowMs, p);
    }
    this.rearmPathTimers(nowMs);
  }

  /** Every probe interval: SLA per class per path, with hysteresis; moves flows off breaches. */
  private evaluateSla(nowMs: number): void {
    for (const p of this.paths) {
      const short = this.metrics(nowMs, p, SHORT_WINDOW_MS);
      // Loss leaves the SLA only when the last second AND the last 3 s both exceed the threshold:
      // 3 random losses in one second of 130 packets read as 2.3% on a 0.2% cable path (a false
      // exit every minute or so per direction); over 3 s they stay under 1%. Real trouble (5% and
      // up) exceeds both windows within the first second, so reaction time is unchanged.
      const confirm = this.metrics(nowMs, p, SLA_CONFIRM_WINDOW_MS);
      const exitView: PathMetrics =
        short.txLossRatio !== undefined && confirm.txLossRatio !== undefined && confirm.txLossRatio < short.txLossRatio
          ? { ...short, txLossRatio: confirm.txLossRatio }
          : short;
      let worst: string | undefined;
      for (let c = 0; c < this.policies.length; c++) {
        const sla = this.policies[c]!.sla;
        if (p.inSla[c]) {
          const breach = slaBreach(exitView, sla);
          if (breach) {
            p.inSla[c] = false;
            p.breach[c] = breach;
            p.slaOutAtMs[c] = nowMs;
            p.slaExits[c] = this.slaExitsNow(nowMs, p, c) + 1;
            p.slaExitsAtMs[c] = nowMs;
            const moved = this.resteer(nowMs, (f) => f.classId === c && (f.path === p.id || f.path2 === p.id), `${p.name} ${breach}`, c);
            if (moved === 0) this.emit(nowMs, 'sla', p.name, `${this.policies[c]!.name}: ${p.name} out of SLA (${breach})`);
          }
        } else {
          // Back in SLA only when the path has been comfortably inside the thresholds for the
          // whole re-entry window since the breach, and still is over the last second.
          const windowMs = this.slaReentryWindowMs(nowMs, p, c);
          const sinceMs = nowMs - p.slaOutAtMs[c]!;
          if (sinceMs >= windowMs && !slaBreach(short, sla, SLA_REENTRY_SLACK) && this.reentryEvidence(nowMs, p, sla, windowMs, sinceMs)) {
            p.inSla[c] = true;
            p.breach[c] = undefined;
            this.emit(nowMs, 'sla', p.name, `${this.policies[c]!.name}: ${p.name} back within SLA`);
            if (this.usable(p)) this.onPathRecovered(nowMs, p, c);
          }
        }
        if (!p.inSla[c] && worst === undefined) worst = `${this.policies[c]!.name} SLA: ${p.breach[c]}`;
      }
      this.applyTransition(nowMs, p, p.sm.setDegraded(worst !== undefined, worst ?? 'every class within SLA'));
    }
  }

  /**
   * Has path `p` shown, since it left the SLA, that it is comfortably within it? Loss must be judged
   * over enough packets to tell the slack threshold from zero (1 / (0.8 x 1%) = 125 for voice:
   * 12.5 s of probes on an idle path, less under traffic); 0 lost of 50 probes is what a path
   * with 2% loss shows a third of the time. A path that cannot gather that evidence within the
   * long window is judged on what it has.
   */
  private reentryEvidence(nowMs: number, p: PathRuntime, sla: Sla, windowMs: number, sinceMs: number): boolean {
    const threshold = sla.lossRatio * SLA_REENTRY_SLACK;
    const packets = Math.min(SLA_REENTRY_MAX_PACKETS, Math.ceil(1 / Math.max(threshold, 1e-6)));
    let loss = p.stats.txLossEvidence(nowMs, windowMs, Math.min(sinceMs, LONG_WINDOW_MS), packets);
    if (loss === undefined) {
      if (sinceMs < LONG_WINDOW_MS) return false;
      loss = p.stats.txLossRatio(nowMs, LONG_WINDOW_MS, 0);
    }
    return !slaBreach({ txLossRatio: loss, rttMs: p.stats.srttMs, jitterMs: p.stats.txJitterMs(nowMs) }, sla, SLA_REENTRY_SLACK);
  }

  /** Recent SLA exits of path `p` for class `c`, decayed to `nowMs`. */
  private slaExitsNow(nowMs: number, p: PathRuntime, c: number): number {
    const ageMs = Math.max(0, nowMs - p.slaExitsAtMs[c]!);
    return p.slaExits[c]! * Math.pow(0.5, ageMs / SLA_EXIT_HALF_LIFE_MS);
  }

  /** 5 s after one recent exit, doubling per further exit, at most SLA_REENTRY_MAX_MS. */
  private slaReentryWindowMs(nowMs: number, p: PathRuntime, c: number): number {
    const exits = Math.max(1, Math.round(this.slaExitsNow(nowMs, p, c)));
    return Math.min(SLA_REENTRY_MAX_MS, SLA_REENTRY_BASE_MS * 2 ** (exits - 1));
  }

  /**
   * Paths as selection sees them. When no usable path meets the class's SLA, selection picks the
   * least bad, and that is judged over the long window with every loss counted: the last second
   * of a path with bursty loss (6% on average, 0 in its good spells) must not make it look better
   * than a steady 2% one.
   */
  private candidates(nowMs: number, classId: number): PathCandidate[] {
    const anyInSla = this.paths.some((p) => p.inSla[classId] && this.usable(p));
    return this.paths.map((p) => ({
      id: p.id,
      usable: this.usable(p),
      inSla: p.inSla[classId]!,
      tier: p.tier,
      metrics: anyInSla ? this.metrics(nowMs, p, SHORT_WINDOW_MS) : this.metrics(nowMs, p, LONG_WINDOW_MS, 0),
      spareBps: p.bandwidthBps > 0 ? Math.max(p.bandwidthBps * 0.05, p.bandwidthBps - p.txRateBps) : 0,
      lastHeardMs: p.sm.lastHeardMs ?? -Infinity,
    }));
  }

  /** The flow's entry, created or re-steered as needed. Hot path: the common case is one Map lookup. */
  private flowFor(nowMs: number, flowHash: number, classId: number, packet: Uint8Array, info: InnerInfo): FlowEntry {
    let flow = this.flows.get(flowHash);
    if (flow && flow.classId === classId) {
      flow.lastSeenMs = nowMs;
      return flow;
    }
    const sel = selectPaths(this.candidates(nowMs, classId), this.policies[classId]!.strategy, flowHash);
    if (flow) {
      // The same 5-tuple changed DSCP: treat it as its new class.
      flow.classId = classId;
      flow.path = sel.primary;
      flow.path2 = sel.secondary;
      flow.lastSeenMs = nowMs;
      return flow;
    }
    if (this.flows.size >= this.maxFlows) {
      // Map iterates in insertion order: the first key is the oldest-created flow.
      const oldest = this.flows.keys().next().value;
      if (oldest !== undefined) this.flows.delete(oldest);
    }
    flow = { classId, path: sel.primary, path2: sel.secondary, lastSeenMs: nowMs, createdMs: nowMs, packets: 0, bytes: 0, tuple: flowTuple(packet, info) };
    this.flows.set(flowHash, flow);
    return flow;
  }

  /**
   * Re-chooses paths for the flows matching `which`. One event per (class, from -> to) with the
   * reason, e.g. "voice: mpls -> inet (mpls loss 4.1% > 1%) [3 flows]". Returns flows moved.
   */
  private resteer(nowMs: number, which: (f: FlowEntry) => boolean, reason: string, onlyClass = -1): number {
    const groups = new Map<string, { classId: number; from: string; to: string; n: number }>();
    const cands = new Map<number, PathCandidate[]>();
    let moved = 0;
    for (const [hash, f] of this.flows) {
      if ((onlyClass >= 0 && f.classId !== onlyClass) || !which(f)) continue;
      let c = cands.get(f.classId);
      if (!c) cands.set(f.classId, (c = this.candidates(nowMs, f.classId)));
      const sel = selectPaths(c, this.policies[f.classId]!.strategy, hash);
      if (sel.primary === f.path && sel.secondary === f.path2) continue;
      const from = this.pathLabel(f.path, f.path2);
      f.path = sel.primary;
      f.path2 = sel.secondary;
      const to = this.pathLabel(f.path, f.path2);
      moved++;
      this.classMoves[f.classId]!++;
      const key = `${f.classId}|${from}|${to}`;
      const g = groups.get(key);
      if (g) g.n++;
      else groups.set(key, { classId: f.classId, from, to, n: 1 });
    }
    this.flowMoves += moved;
    for (const g of groups.values()) {
      this.emit(nowMs, 'flowMoved', undefined, `${this.policies[g.classId]!.name}: ${g.from} -> ${g.to} (${reason})${g.n > 1 ? ` [${g.n} flows]` : ''}`);
    }
    return moved;
  }

  private pathLabel(a: number, b: number): string {
    const n = (i: number): string => this.paths[i]?.name ?? 'none';
    return b >= 0 ? `${n(a)}+${n(b)}` : n(a);
  }

  /**
   * A path came back (after hold-down, or into a class's SLA): take back flows on worse tiers or
   * clearly worse paths. A flow sitting on a usable path that is itself out of SLA moves only if
   * the returning path has also been the better one over the long window: when every path breaks
   * the SLA, a bursty path's clean spell must not pull voice off the least-bad one.
   */
  private onPathRecovered(nowMs: number, p: PathRuntime, onlyClass = -1): void {
    const tierRank = (t: CostTier): number => (t === 'primary' ? 0 : t === 'overflow' ? 1 : 2);
    const recScore = pathScore(this.metrics(nowMs, p, SHORT_WINDOW_MS));
    const longScores = new Float64Array(this.paths.length).fill(NaN);
    const longScore = (q: PathRuntime): number => {
      let v = longScores[q.id]!;
      if (Number.isNaN(v)) v = longScores[q.id] = pathScore(this.metrics(nowMs, q, LONG_WINDOW_MS, 0));
      return v;
    };
    this.resteer(
      nowMs,
      (f) => {
        if (!p.inSla[f.classId]) return false;
        const cur = this.paths[f.path]!;
        if (!this.usable(cur)) return true;
        if (!cur.inSla[f.classId]) return longScore(p) <= longScore(cur);
        if (tierRank(cur.tier) > tierRank(p.tier)) return true;
        const strategy = this.policies[f.classId]!.strategy;
        if (strategy === 'duplicate') return f.path2 < 0;
        if (strategy === 'best') return recScore < pathScore(this.metrics(nowMs, cur, SHORT_WINDOW_MS)) * REVERT_SCORE_RATIO;
        return false;
      },
      onlyClass >= 0 ? `${p.name} back within ${this.policies[onlyClass]!.name} SLA` : `${p.name} recovered`,
      onlyClass,
    );
  }

  private sweepFlows(nowMs: number): void {
    for (const [hash, flow] of this.flows) {
      if (nowMs - flow.lastSeenMs > this.flowIdleTimeoutMs) this.flows.delete(hash);
    }
  }

  private rearmPathTimers(nowMs: number): void {
    if (this.sessions && !this.sessionUp) {
      // No session, no probes: silence means nothing yet.
      this.timers[Timer.PathDead] = Infinity;
      this.timers[Timer.Reuse] = Infinity;
      return;
    }
    let dead = Infinity;
    let reuse = Infinity;
    for (const p of this.paths) {
      const d = p.sm.deadDeadlineMs();
      if (d < dead) dead = d;
      const r = p.sm.reuseCheckMs(nowMs);
      if (r < reuse) reuse = r;
    }
    this.timers[Timer.PathDead] = dead;
    this.timers[Timer.Reuse] = reuse <= nowMs ? nowMs + this.probeIntervalMs : reuse;
  }

  private sampleRate(nowMs: number, p: PathRuntime): void {
    const dt = nowMs - p.rateMarkMs;
    if (dt < 250) return;
    const rate = ((p.txBytes - p.rateMarkBytes) * 8 * 1000) / dt;
    p.txRateBps = p.txRateBps === 0 ? rate : p.txRateBps + (rate - p.txRateBps) / 4;
    p.rateMarkBytes = p.txBytes;
    p.rateMarkMs = nowMs;
  }

  // ---- send --------------------------------------------------------------------------------

  /**
   * Sends (unshaped link) or queues (shaped link) one data frame. False when there is no session
   * to seal with: the caller stages the packet. A full queue is a counted drop (true: not staged).
   */
  private sendData(p: PathRuntime, packet: Uint8Array, dscp: number, dupSeq: number, classId: number, fecGroup = 0, fecIndex = 0, fecK = 0): boolean {
    const sched = p.sched;
    if (sched !== undefined) {
      if (this.sessions !== undefined && !this.sessionUp) return false;
      const frameBytes = dataFrameSize(p.id, (p.txSeq + 1) >>> 0, packet.length, fecGroup, fecIndex, dupSeq, fecK);
      const size = this.datagramSizeFor(frameBytes);
      if (!sched.admit(classId, size)) {
        this.drop('queueFull');
        return true;
      }
      // Numbered and sealed when it leaves the queue (PendingTx): copy, the caller reuses its buffer.
      const item = new PendingTx(TxKind.Data, size, p.remote, dscp, classId, copyBytes(packet));
      item.dupSeq = dupSeq;
      item.fecGroup = fecGroup;
      item.fecIndex = fecIndex;
      item.fecK = fecK;
      sched.enqueue(this.nowMs, classId, item);
      this.releaseLink(this.nowMs, p, sched);
      return true;
    }
    const bytes = this.buildData(p, packet, dupSeq, classId, fecGroup, fecIndex, fecK);
    if (bytes === undefined) return false;
    this.transmit(p, p.remote, bytes, dscp, classId);
    return true;
  }

  /** Numbers, frames and seals a data frame on `p` now; undefined without a session. */
  private buildData(p: PathRuntime, packet: Uint8Array, dupSeq: number, classId: number, fecGroup: number, fecIndex: number, fecK: number): Uint8Array | undefined {
    let bytes: Uint8Array | undefined;
    const seq = (p.txSeq + 1) >>> 0;
    if (!this.sessions) {
      bytes = encodeDataDatagram(0, 0, p.id, seq, packet, fecGroup, fecIndex, dupSeq, fecK);
    } else {
      // One buffer per datagram: the frame is written after room for the largest envelope header,
      // sealed in place, and the header written just before the ciphertext. The frame buffer and
      // the envelope copy it replaces cost 3.7-5 us per packet plus GC (bench/overlay.ts profile);
      // the prototype moved encrypted/plaintext iperf3 from 0.50-0.69 to 0.59-0.78.
      const frameLen = dataFrameSize(p.id, seq, packet.length, fecGroup, fecIndex, dupSeq, fecK);
      const sealedLen = frameLen + AEAD_TAG_BYTES;
      const room = envelopeHeaderSize(0xffffffff, 2 ** 52, sealedLen);
      const buf = allocBytes(room + sealedLen);
      writeDataFrame(buf, room, p.id, seq, packet, fecGroup, fecIndex, dupSeq, fecK);
      const r = this.sessions.seal(this.nowMs, PEER_ID, buf.subarray(room, room + frameLen), buf.subarray(room));
      if (!r.ok) {
        this.drainCrypto(this.nowMs);
        return undefined;
      }
      const start = room - envelopeHeaderSize(r.receiverIndex, r.counter, sealedLen);
      writeEnvelopeHeader(buf, start, r.receiverIndex, r.counter, sealedLen);
      bytes = buf.subarray(start);
    }
    p.txSeq = seq;
    p.stats.onSent(this.nowMs, seq);
    p.txDataPackets++;
    this.classWireBytes[classId]! += bytes.length;
    return bytes;
  }

  /** Datagram size of a frame of `frameBytes` once enveloped (and sealed), for queue accounting. */
  private datagramSizeFor(frameBytes: number): number {
    if (!this.sessions) return envelopeHeaderSize(0, 0, frameBytes) + frameBytes;
    const sealed = frameBytes + AEAD_TAG_BYTES;
    return envelopeHeaderSize(1, 1, sealed) + sealed;
  }

  // ---- FEC send ----------------------------------------------------------------------------

  private makeFecTx(classId: number, policy: ClassFecPolicy, firstGroupId?: number): FecTx {
    // Group ids start at a value derived from our random epoch (no extra Rng draw, so runs with
    // FEC on and off stay draw-for-draw identical), tagged with the class for the receiver. A
    // rebuilt encoder (live policy change) continues where the old one stopped: the receiver may
    // still hold the old groups, and a reused id would mix two groups' shards.
    const start = firstGroupId !== undefined ? firstGroupId & FEC_GROUP_COUNTER_MASK : (Math.imul(this.epoch ^ Math.imul(classId + 1, 0x9e3779b1), 0x85ebca6b) >>> 0) & FEC_GROUP_COUNTER_MASK;
    const minM = Math.min(policy.minM, policy.maxM);
    const encoder = new FecEncoder(this.fecCodec, { k: policy.k, m: minM, flushMs: policy.flushMs, firstGroupId: start || 1, groupTag: classId, maxOverheadRatio: policy.maxOverheadRatio });
    const adaptive = new AdaptiveParity({ k: policy.k, targetLossRatio: policy.targetResidualLossRatio, maxM: policy.maxM, criterion: 'packet' });
    const fec: FecTx = {
      classId,
      policy,
      encoder,
      adaptive,
      pathPackets: new Float64Array(MAX_LINKS),
      table: new Uint8Array(policy.k + 1),
      lossRatio: 0,
      paritySent: 0,
      parityBytes: 0,
      parityUnsent: 0,
      rotor: 0,
      adaptTicks: 0,
      maxPacketBytes: this.maxDatagramBytes - parityOverheadBytes(policy.k),
      tooLarge: 0,
      protectedBefore: 0,
      cappedBefore: 0,
    };
    if (minM > 0 && minM < policy.maxM) {
      parityTable(policy.k, 0, policy.targetResidualLossRatio, minM, 'packet', fec.table);
      for (let k = 1; k <= policy.k; k++) fec.table[k] = Math.max(fec.table[k]!, minM);
      encoder.setParityTable(fec.table);
    }
    return fec;
  }

  /** Sends (or queues, on a shaped link) every parity shard the class's encoder has ready. */
  private sendParity(fec: FecTx): void {
    const enc = fec.encoder;
    const dscp = this.policies[fec.classId]!.outerDscp;
    for (let s = enc.pollParity(); s !== undefined; s = enc.pollParity()) {
      const p = this.parityPath(fec, s);
      if (p === undefined) {
        fec.parityUnsent++;
        continue;
      }
      // Lengths are left out when every data packet is as long as the shard (constant-size voice
      // frames): 2 bytes per packet of a 200-byte group, ~15% of its parity datagram.
      let uniform = true;
      for (let i = 0; i < s.lengths.length; i++) {
        if (s.lengths[i] !== s.shardBytes) {
          uniform = false;
          break;
        }
      }
      const f = this.parityOut;
      f.groupId = s.groupId;
      f.index = s.index;
      f.k = s.k;
      f.m = s.m;
      f.checksum = s.checksum;
      f.shard = s.shard;
      f.lengths = uniform ? NO_LENGTHS : s.lengths;
      const sched = p.sched;
      if (sched !== undefined) {
        if (this.sessions !== undefined && !this.sessionUp) {
          fec.parityUnsent++;
          continue;
        }
        const size = this.datagramSizeFor(parityFrameSize(p.id, (p.txSeq + 1) >>> 0, f));
        if (!sched.admit(fec.classId, size)) {
          this.drop('queueFull');
          continue;
        }
        // The shard lives in the encoder's ring only for a few groups: the queue keeps a copy.
        const item = new PendingTx(TxKind.Parity, size, p.remote, dscp, fec.classId, copyBytes(s.shard));
        item.fecGroup = s.groupId;
        item.fecIndex = s.index;
        item.fecK = s.k;
        item.parityM = s.m;
        item.checksum = s.checksum;
        item.lengths = f.lengths; // a fresh array per group (encoder.ts), or NO_LENGTHS
        sched.enqueue(this.nowMs, fec.classId, item);
        this.releaseLink(this.nowMs, p, sched);
        continue;
      }
      const bytes = this.buildParity(p, fec, f);
      if (bytes === undefined) continue;
      this.transmit(p, p.remote, bytes, dscp, fec.classId);
    }
  }

  /** Numbers, frames and seals a parity frame on `p` now; undefined (counted) without a session. */
  private buildParity(p: PathRuntime, fec: FecTx, f: ParityFields): Uint8Array | undefined {
    const seq = (p.txSeq + 1) >>> 0;
    const frameBytes = parityFrameSize(p.id, seq, f);
    let bytes: Uint8Array | undefined;
    if (!this.sessions) {
      bytes = allocBytes(envelopeHeaderSize(0, 0, frameBytes) + frameBytes);
      writeParityFrame(bytes, writeEnvelopeHeader(bytes, 0, 0, 0, frameBytes), p.id, seq, f);
    } else {
      const frame = allocBytes(frameBytes);
      writeParityFrame(frame, 0, p.id, seq, f);
      bytes = this.seal(frame);
    }
    if (bytes === undefined) {
      fec.parityUnsent++;
      return undefined;
    }
    p.txSeq = seq;
    p.stats.onSent(this.nowMs, seq);
    p.fecParitySent++;
    fec.paritySent++;
    fec.parityBytes += bytes.length;
    fec.pathPackets[p.id]!++;
    return bytes;
  }

  /**
   * Where a parity shard goes. 'spread': a usable non-backup path that carries none of the group's
   * data, round robin when there are several (a burst on the data path then cannot take the
   * parity too); else the data's path. 'same': the data's path. Never a DOWN, drained or held-down
   * path (those get no data either).
   */
  private parityPath(fec: FecTx, s: FecParityShard): PathRuntime | undefined {
    const mask = s.dataPathMask;
    if (fec.policy.parityPlacement === 'spread') {
      let n = 0;
      for (const p of this.paths) {
        if (p.id < 32 && (mask & (1 << p.id)) !== 0) continue;
        if (p.tier !== 'backup' && this.usable(p)) this.pathScratch[n++] = p.id;
      }
      if (n > 0) return this.paths[this.pathScratch[fec.rotor++ % n]!];
    }
    for (const p of this.paths) {
      if (p.id < 32 && (mask & (1 << p.id)) !== 0 && this.usable(p)) return p;
    }
    // The data's path went unusable since: any path the steering would use now.
    return this.bestUsablePath();
  }

  /**
   * Every probe interval, per FEC class: m from the tx loss of the paths the class used since the
   * last interval (share-weighted, the larger of a 1 s and a 5 s window), with the controller's
   * hysteresis. Congestion caps m (adaptive.ts congestionMaxM): the class's own queue on a path it
   * uses dropped (drops of other classes do not count: with strict priority and DRR this class's
   * parity displaces their traffic, not its own), or a path loses while its RTT is inflated above
   * its minimum (a queue building: random loss does not queue), or the controller's own test sees
   * loss rise with our sending rate while the delay is inflated.
   */
  private adaptFec(nowMs: number): void {
    if (this.fecTxList.length === 0) return;
    for (const fec of this.fecTxList) {
      const losses = this.lossScratch;
      const shares = this.shareScratch;
      losses.length = 0;
      shares.length = 0;
      let rate = 0;
      let congested = false;
      let delayInflated = false;
      for (const p of this.paths) {
        const n = fec.pathPackets[p.id]!;
        const dropped = p.sched?.counters[fec.classId]?.dropped ?? 0;
        const droppedNow = dropped > p.classDropsSeen[fec.classId]!;
        p.classDropsSeen[fec.classId] = dropped;
        if (n === 0) continue;
        if (droppedNow) congested = true;
        const short = p.stats.txLossRatio(nowMs, FEC_LOSS_SHORT_MS) ?? 0;
        const long = p.stats.txLossRatio(nowMs, FEC_LOSS_LONG_MS) ?? 0;
        losses.push(Math.max(short, long));
        shares.push(n);
        rate += p.txRateBps;
        const srtt = p.stats.srttMs;
        const base = p.stats.minRttMs;
        const inflated =
          srtt !== undefined && Number.isFinite(base) && srtt - base > Math.max(FEC_QUEUE_DELAY_MIN_MS, base * FEC_QUEUE_DELAY_RATIO, FEC_QUEUE_DELAY_JITTERS * p.stats.jitterMs);
        if (inflated) {
          delayInflated = true;
          // Losing while a queue builds on the path: congestion (ours or cross traffic), not
          // random loss. Parity would add load to the bottleneck that is dropping.
          if (Math.max(short, long) >= FEC_CONGESTION_MIN_LOSS_RATIO) congested = true;
        }
      }
      fec.pathPackets.fill(0);
      if (shares.length === 0) continue; // idle: the next burst starts with the last m
      const pol = fec.policy;
      // The controller's own test (loss rose with our sending rate) compares successive calls
      // that carry a rate: once a second, so that the smoothed loss and rate have moved.
      fec.adaptTicks++;
      const withRate = fec.adaptTicks % FEC_RATE_TEST_TICKS === 0;
      const adaptiveM = fec.adaptive.update(nowMs, { pathLossRatios: losses, pathShares: shares, ...(withRate ? { sendRateBps: rate } : {}), congested, delayInflated });
      fec.lossRatio = fec.adaptive.lossRatio;
      const m = Math.min(pol.maxM, Math.max(pol.minM, adaptiveM));
      if (m !== fec.encoder.m) fec.encoder.setM(m);
      if (m > 0 && pol.minM < pol.maxM) {
        parityTable(pol.k, fec.lossRatio, pol.targetResidualLossRatio, m, 'packet', fec.table);
        if (pol.minM > 0) for (let k = 1; k <= pol.k; k++) fec.table[k] = Math.max(fec.table[k]!, pol.minM);
        fec.encoder.setParityTable(fec.table);
      }
    }
  }

  private sendProbe(nowMs: number, p: PathRuntime): void {
    if (this.sessions && !this.sessionUp) return; // nothing to seal with; the handshake is under way
    const sched = p.sched;
    if (sched !== undefined) {
      // Framed when it leaves the queue: its sequence number and timestamp are the departure's.
      if (!sched.admit(CONTROL_CLASS, PROBE_DATAGRAM_BYTES)) return this.drop('queueFull');
      sched.enqueue(nowMs, CONTROL_CLASS, new PendingTx(TxKind.Probe, PROBE_DATAGRAM_BYTES, p.remote, p.dscp, CONTROL_CLASS, NO_BYTES));
      this.releaseLink(nowMs, p, sched);
      return;
    }
    const bytes = this.buildProbe(nowMs, p);
    if (bytes) this.transmit(p, p.remote, bytes, p.dscp);
  }

  private buildProbe(nowMs: number, p: PathRuntime): Uint8Array | undefined {
    const seq = (p.txSeq + 1) >>> 0;
    const frame = encodeFrame({
      kind: 'probe',
      probe: {
        link: p.id,
        seq,
        txUs: Math.round(nowMs * 1000),
        dscp: p.dscp,
        report: p.stats.report(nowMs),
        epoch: this.epoch,
      },
    });
    const bytes = this.wrap(frame);
    if (bytes !== undefined) {
      p.txSeq = seq;
      p.stats.onSent(nowMs, seq);
    }
    return bytes;
  }

  private sendHello(p: PathRuntime): void {
    p.helloSent = true;
    const frame = encodeFrame({ kind: 'control', control: { hello: { link: p.id, linkName: p.name, site: this.site } } });
    this.sendFrame(p, p.remote, frame, p.dscp);
  }

  /** Seals (or, in plaintext mode, wraps) an encoded frame and queues it. */
  private sendFrame(p: PathRuntime, to: Endpoint, frame: Uint8Array, dscp: number): void {
    const bytes = this.wrap(frame);
    if (bytes) this.transmit(p, to, bytes, dscp);
  }

  /** The datagram for an encoded frame: sealed, or enveloped in plaintext mode. */
  private wrap(frame: Uint8Array): Uint8Array | undefined {
    if (!this.sessions) return encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: frame });
    return this.seal(frame);
  }

  /** Envelope around the sealed frame, or undefined without a session (a handshake is started). */
  private seal(frame: Uint8Array): Uint8Array | undefined {
    const r = this.sessions!.seal(this.nowMs, PEER_ID, frame);
    if (!r.ok) {
      this.drainCrypto(this.nowMs);
      return undefined;
    }
    const ct = r.ciphertext;
    const out = allocBytes(envelopeHeaderSize(r.receiverIndex, r.counter, ct.length) + ct.length);
    out.set(ct, writeEnvelopeHeader(out, 0, r.receiverIndex, r.counter, ct.length));
    return out;
  }

  private sessionReady(): boolean {
    return this.sessions?.snapshot(this.nowMs).peers[0]?.hasSession === true;
  }

  /** Cheap per-probe check; refreshed on every session event. */
  private sessionUp = false;

  /** Moves handshake messages onto the wire and session events into ours. */
  private drainCrypto(nowMs: number): void {
    const sessions = this.sessions;
    if (!sessions) return;
    for (let t = sessions.pollTransmit(); t; t = sessions.pollTransmit()) {
      if (t.kind === 'initiation') {
        // Every path: the handshake must not depend on the one link that might be dead.
        const bytes = encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: new Uint8Array(0), handshake: t.bytes });
        for (const p of this.paths) this.transmit(p, p.remote, bytes, p.dscp);
      } else if (t.kind === 'reply') {
        const p = this.paths[t.to.linkId];
        if (p) this.transmit(p, t.to.from, encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: new Uint8Array(0), handshake: t.bytes }), p.dscp);
      } else {
        const p = this.bestUsablePath();
        if (p) {
          const bytes = this.seal(new Uint8Array(0));
          if (bytes) this.transmit(p, p.remote, bytes, p.dscp);
        }
      }
    }
    for (let e = sessions.pollEvent(); e; e = sessions.pollEvent()) this.onCryptoEvent(nowMs, e);
    const t = sessions.nextDeadlineMs();
    this.timers[Timer.Crypto] = t ?? Infinity;
  }

  private onCryptoEvent(nowMs: number, e: CryptoEvent): void {
    this.emit(nowMs, 'session', undefined, `session: ${e.message}`);
    const wasUp = this.sessionUp;
    this.sessionUp = this.sessionReady();
    if (this.sessionUp && !wasUp) {
      for (const p of this.paths) p.sm.resetSilenceClock(nowMs);
      this.rearmPathTimers(nowMs);
    }
    if ((e.kind === 'sessionEstablished' || e.kind === 'sessionConfirmed') && this.staged.length > 0 && this.sessionReady()) {
      const staged = this.staged;
      this.staged = [];
      for (const pkt of staged) this.handleTunPacket(nowMs, pkt);
    }
  }

  private bestUsablePath(): PathRuntime | undefined {
    let best: PathRuntime | undefined;
    for (const p of this.paths) {
      if (!this.usable(p)) continue;
      if (!best || (p.stats.srttMs ?? Infinity) < (best.stats.srttMs ?? Infinity)) best = p;
    }
    return best ?? this.paths[0];
  }

  /**
   * Queues a sealed datagram for the shell. Unshaped links: straight to pollTransmit. Shaped
   * links: into the link's class queue, released now if the token bucket allows, else at
   * Timer.Shaper.
   */
  private transmit(p: PathRuntime, to: Endpoint, bytes: Uint8Array, dscp: number, classId = CONTROL_CLASS): void {
    const sched = p.sched;
    if (sched === undefined) {
      if (this.transmits.length >= MAX_TRANSMIT_QUEUE) return this.drop('transmitQueueFull');
      p.txPackets++;
      p.txBytes += bytes.length;
      this.transmits.push({ linkId: p.id, to, dscp, bytes });
      return;
    }
    if (!sched.enqueue(this.nowMs, classId, new PendingTx(TxKind.Sealed, bytes.length, to, dscp, classId, bytes))) return this.drop('queueFull');
    this.releaseLink(this.nowMs, p, sched);
  }

  /**
   * Moves what the link's bucket allows into the transmit queue, numbering, framing and sealing
   * the frames that carry a path sequence as they leave; re-arms Timer.Shaper.
   */
  private releaseLink(nowMs: number, p: PathRuntime, sched: LinkScheduler<PendingTx>): void {
    while (this.transmits.length < MAX_TRANSMIT_QUEUE) {
      const item = sched.dequeue(nowMs);
      if (item === undefined) break;
      let bytes: Uint8Array | undefined;
      switch (item.kind) {
        case TxKind.Sealed:
          bytes = item.bytes;
          break;
        case TxKind.Data:
          bytes = this.buildData(p, item.bytes, item.dupSeq, item.classId, item.fecGroup, item.fecIndex, item.fecK);
          break;
        case TxKind.Parity: {
          const fec = this.fecTx[item.classId];
          if (fec === undefined) break;
          const f = this.parityOut;
          f.groupId = item.fecGroup;
          f.index = item.fecIndex;
          f.k = item.fecK;
          f.m = item.parityM;
          f.checksum = item.checksum;
          f.lengths = item.lengths;
          f.shard = item.bytes;
          bytes = this.buildParity(p, fec, f);
          break;
        }
        case TxKind.Probe:
          bytes = this.buildProbe(nowMs, p);
          break;
      }
      if (bytes === undefined) {
        // The session went away while it waited (a handshake is under way): lost, counted.
        this.drop('noSession');
        continue;
      }
      p.txPackets++;
      p.txBytes += bytes.length;
      this.transmits.push({ linkId: p.id, to: item.to, dscp: item.dscp, bytes });
    }
    // The shell drains transmits after every input; if it has not, try again in a millisecond.
    const next = this.transmits.length >= MAX_TRANSMIT_QUEUE && sched.queuedPackets > 0 ? nowMs + 1 : sched.nextReleaseMs(nowMs);
    if (next < this.timers[Timer.Shaper]!) this.timers[Timer.Shaper] = next;
  }

  private releaseShaped(nowMs: number): void {
    this.timers[Timer.Shaper] = Infinity;
    for (const p of this.paths) if (p.sched !== undefined) this.releaseLink(nowMs, p, p.sched);
  }

  private deliver(packet: Uint8Array): void {
    if (this.deliveries.length >= MAX_DELIVERY_QUEUE) return this.drop('deliveryQueueFull');
    this.deliveredPackets++;
    this.deliveries.push(packet);
  }

  private drop(reason: DropReason): void {
    this.drops[reason]++;
  }

  private emit(atMs: number, kind: EdgeEventKind, link: string | undefined, message: string): void {
    const event: EdgeEvent = link === undefined ? { atMs, kind, message } : { atMs, kind, link, message };
    if (this.events.length >= MAX_EVENT_QUEUE) this.events.shift();
    this.events.push(event);
    this.recentEvents.push(event);
    if (this.recentEvents.length > RECENT_EVENTS_KEPT) this.recentEvents.shift();
  }
}

function totalDrops(s: LinkScheduler<PendingTx>): number {
  let n = 0;
  for (const c of s.counters) n += c.dropped;
  return n;
}

/** A partial policy without its undefined fields, so spreading it never erases a default. */
function stripUndefined<T extends object>(o: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (o === undefined) return out;
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

