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
 * path) -> encode data frame with the path's sequence number -> transmit (twice for duplicated
 * classes). Of an incoming datagram: envelope -> frame -> path statistics -> by kind: deliver
 * data (after duplicate suppression), answer probes, take probe replies as RTT samples.
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
import { newInnerInfo, parseInner } from './inner.ts';
import { LONG_WINDOW_MS, PathStats, SHORT_WINDOW_MS } from './pathmon/path-stats.ts';
import {
  DEAD_AFTER_PROBES,
  DEFAULT_PROBE_INTERVAL_MS,
  HOLD_DOWN_PROBES,
  PathStateMachine,
  type PathState,
  type PathTransition,
} from './pathmon/path-state.ts';
import type { Rng } from './rng.ts';
import { CLASS_NAMES, DEFAULT_POLICIES, classOfDscp, slaBreach, type ClassPolicy, type CostTier, type PathMetrics } from './steer/classes.ts';
import { DedupeWindow } from './steer/dedupe.ts';
import { pathScore, selectPaths, type PathCandidate } from './steer/select.ts';
import {
  DROP_REASONS,
  formatEndpoint,
  type ClassSnapshot,
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
  writeDataFrame,
  writeEnvelopeHeader,
  type Frame,
} from './wire/codec.ts';
import { SessionManager, type CryptoEvent, type SessionManagerSnapshot } from './crypto/handshake-state.ts';
import { keyPairFromPrivate } from './crypto/keys.ts';
import type { DataCipher } from './crypto/types.ts';

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
}

export interface EdgeCryptoConfig {
  privateKey: Uint8Array;
  peerPublicKey: Uint8Array;
  /** Wall-clock ms since the epoch at nowMs = 0: only for the handshake's anti-replay timestamp. */
  wallClockEpochMs: number;
  cipher?: DataCipher;
}

/** Where a handshake came from: the reply goes back the same way. */
interface HandshakeSource {
  linkId: number;
  from: Endpoint;
}

const PEER_ID = 'peer';
/** Inner packets held while the first session is being set up (WireGuard stages 128 too). */
const MAX_STAGED_PACKETS = 128;

/** Timers live in a table keyed by this enum; the shell arms one OS timer for the earliest. */
const enum Timer {
  Probe = 0,
  PathDead = 1,
  FlowSweep = 2,
  Reuse = 3,
  Crypto = 4,
  Count = 5,
}

/** Hysteresis: a path that left a class's SLA comes back only under this fraction of each threshold. */
const SLA_REENTRY_SLACK = 0.8;
/** Window for judging re-entry: long enough that one clean second after a bad spell is not enough. */
const SLA_REENTRY_WINDOW_MS = 5000;
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
}

interface FlowEntry {
  classId: number;
  path: number;
  /** Second path of a duplicated class, or -1. */
  path2: number;
  lastSeenMs: number;
}

export class Edge {
  private readonly site: string;
  private readonly paths: PathRuntime[];
  private readonly policies: readonly ClassPolicy[];
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
    }));
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
    this.classTx = CLASS_NAMES.map(() => ({ packets: 0, bytes: 0 }));
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
    const flow = this.flowFor(nowMs, info.flowHash, classOfDscp(info.dscp));
    const cls = this.classTx[flow.classId]!;
    cls.packets++;
    cls.bytes += packet.length;
    const outerDscp = this.policies[flow.classId]!.outerDscp;
    let dupSeq = 0;
    if (flow.path2 >= 0) {
      this.dupSeq = (this.dupSeq + 1) >>> 0 || 1;
      dupSeq = this.dupSeq;
    }
    if (!this.sendData(this.paths[flow.path]!, packet, outerDscp, dupSeq)) {
      // No session yet (or it expired): hold a few packets, copied since the caller reuses its
      // buffer, and send them when the handshake completes instead of losing every flow's first packets.
      if (this.staged.length >= MAX_STAGED_PACKETS) return this.drop('noSession');
      this.staged.push(packet.slice());
      return;
    }
    if (flow.path2 >= 0) this.sendData(this.paths[flow.path2]!, packet, outerDscp, dupSeq);
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
      this.timers[Timer.Probe] = nowMs + this.probeIntervalMs;
    }
    if (nowMs >= this.timers[Timer.FlowSweep]!) {
      this.sweepFlows(nowMs);
      this.timers[Timer.FlowSweep] = nowMs + 1000;
    }
    this.rearmPathTimers(nowMs);
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
    }));
    const classes: ClassSnapshot[] = this.policies.map((pol, i) => ({
      name: pol.name,
      strategy: pol.strategy,
      flows: flowsPerClass[i]!,
      activeLinks: [...activePerClass[i]!].sort((a, b) => a - b).map((id) => this.paths[id]!.name),
      txPackets: this.classTx[i]!.packets,
      txBytes: this.classTx[i]!.bytes,
      moves: this.classMoves[i]!,
    }));
    return {
      nowMs,
      site: this.site,
      links,
      classes,
      flows: this.flows.size,
      flowMoves: this.flowMoves,
      tunPacketsIn: this.tunPacketsIn,
      deliveredPackets: this.deliveredPackets,
      duplicatesSuppressed: this.duplicatesSuppressed,
      session: this.sessionSnapshot(nowMs),
      drops: { ...this.drops },
      recentEvents: this.recentEvents.slice(),
    };
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
        }
        path.stats.onReceiveSeq(nowMs, p.seq);
        path.stats.onProbeArrival(nowMs, p.txUs / 1000);
        if (p.report) path.stats.onPeerReport(nowMs, p.report.received, p.report.highestSeq);
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
        if (r.report) path.stats.onPeerReport(nowMs, r.report.received, r.report.highestSeq);
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
      case 'fecParity':
        this.applyTransition(nowMs, path, path.sm.onHeard(nowMs, false, true));
        return; // FEC lands with issue 5
    }
  }

  // ---- path state and steering -------------------------------------------------------------

  private effectiveState(p: PathRuntime): PathState {
    if (p.remoteDrained && p.sm.state !== 'down') return 'drained';
    return p.sm.state;
  }

  private usable(p: PathRuntime): boolean {
    return p.sm.usable && !p.remoteDrained;
  }

  private metrics(nowMs: number, p: PathRuntime, windowMs: number): PathMetrics {
    return { txLossRatio: p.stats.txLossRatio(nowMs, windowMs), rttMs: p.stats.srttMs, jitterMs: p.stats.jitterMs };
  }

  private applyTransition(nowMs: number, p: PathRuntime, t: PathTransition): void {
    if (!t) return;
    this.emit(nowMs, t.to === 'down' || t.to === 'drained' ? 'linkDown' : t.to === 'up' && t.from !== 'degraded' ? 'linkUp' : 'pathState', p.name, `${p.name}: ${t.from} -> ${t.to} (${t.reason})`);
    if (t.to === 'down' || t.to === 'drained') {
      this.resteer(nowMs, (f) => f.path === p.id || f.path2 === p.id, `${p.name} ${t.to === 'down' ? `down: ${t.reason}` : 'drained'}`);
    } else if (t.to === 'up' && t.from !== 'degraded') {
      // What was lost while the path was down is history (DOWN already acted on it): judge the
      // path's loss afresh from here, or it would stay out of SLA for a whole window.
      p.stats.resetTx();
      this.onPathRecovered(nowMs, p);
    }
    this.rearmPathTimers(nowMs);
  }

  /** Every probe interval: SLA per class per path, with hysteresis; moves flows off breaches. */
  private evaluateSla(nowMs: number): void {
    for (const p of this.paths) {
      const short = this.metrics(nowMs, p, SHORT_WINDOW_MS);
      const reentry = this.metrics(nowMs, p, SLA_REENTRY_WINDOW_MS);
      let worst: string | undefined;
      for (let c = 0; c < this.policies.length; c++) {
        const sla = this.policies[c]!.sla;
        if (p.inSla[c]) {
          const breach = slaBreach(short, sla);
          if (breach) {
            p.inSla[c] = false;
            p.breach[c] = breach;
            const moved = this.resteer(nowMs, (f) => f.classId === c && (f.path === p.id || f.path2 === p.id), `${p.name} ${breach}`, c);
            if (moved === 0) this.emit(nowMs, 'sla', p.name, `${this.policies[c]!.name}: ${p.name} out of SLA (${breach})`);
          }
        } else {
          // Back in SLA only when both windows are comfortably inside the thresholds.
          if (!slaBreach(short, sla, SLA_REENTRY_SLACK) && !slaBreach(reentry, sla, SLA_REENTRY_SLACK)) {
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

  private candidates(nowMs: number, classId: number): PathCandidate[] {
    return this.paths.map((p) => ({
      id: p.id,
      usable: this.usable(p),
      inSla: p.inSla[classId]!,
      tier: p.tier,
      metrics: this.metrics(nowMs, p, SHORT_WINDOW_MS),
      spareBps: p.bandwidthBps > 0 ? Math.max(p.bandwidthBps * 0.05, p.bandwidthBps - p.txRateBps) : 0,
      lastHeardMs: p.sm.lastHeardMs ?? -Infinity,
    }));
  }

  /** The flow's entry, created or re-steered as needed. Hot path: the common case is one Map lookup. */
  private flowFor(nowMs: number, flowHash: number, classId: number): FlowEntry {
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
    flow = { classId, path: sel.primary, path2: sel.secondary, lastSeenMs: nowMs };
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

  /** A path came back after hold-down: take back flows on worse tiers or clearly worse paths. */
  private onPathRecovered(nowMs: number, p: PathRuntime, onlyClass = -1): void {
    const tierRank = (t: CostTier): number => (t === 'primary' ? 0 : t === 'overflow' ? 1 : 2);
    const recScore = pathScore(this.metrics(nowMs, p, SHORT_WINDOW_MS));
    this.resteer(
      nowMs,
      (f) => {
        if (!p.inSla[f.classId]) return false;
        const cur = this.paths[f.path]!;
        if (!this.usable(cur) || !cur.inSla[f.classId]) return true;
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

  /** False when there is no session to seal with (the caller stages the packet). */
  private sendData(p: PathRuntime, packet: Uint8Array, dscp: number, dupSeq: number): boolean {
    let bytes: Uint8Array | undefined;
    const seq = (p.txSeq + 1) >>> 0;
    if (!this.sessions) {
      bytes = encodeDataDatagram(0, 0, p.id, seq, packet, 0, 0, dupSeq);
    } else {
      const frame = new Uint8Array(dataFrameSize(p.id, seq, packet.length, 0, 0, dupSeq));
      writeDataFrame(frame, 0, p.id, seq, packet, 0, 0, dupSeq);
      bytes = this.seal(frame);
      if (!bytes) return false;
    }
    p.txSeq = seq;
    p.txDataPackets++;
    this.transmit(p, p.remote, bytes, dscp);
    return true;
  }

  private sendProbe(nowMs: number, p: PathRuntime): void {
    if (this.sessions && !this.sessionUp) return; // nothing to seal with; the handshake is under way
    p.txSeq = (p.txSeq + 1) >>> 0;
    const frame = encodeFrame({
      kind: 'probe',
      probe: {
        link: p.id,
        seq: p.txSeq,
        txUs: Math.round(nowMs * 1000),
        dscp: p.dscp,
        report: p.stats.report(nowMs),
        epoch: this.epoch,
      },
    });
    this.sendFrame(p, p.remote, frame, p.dscp);
  }

  private sendHello(p: PathRuntime): void {
    p.helloSent = true;
    const frame = encodeFrame({ kind: 'control', control: { hello: { link: p.id, linkName: p.name, site: this.site } } });
    this.sendFrame(p, p.remote, frame, p.dscp);
  }

  /** Seals (or, in plaintext mode, wraps) an encoded frame and queues it. */
  private sendFrame(p: PathRuntime, to: Endpoint, frame: Uint8Array, dscp: number): void {
    if (!this.sessions) {
      this.transmit(p, to, encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: frame }), dscp);
      return;
    }
    const bytes = this.seal(frame);
    if (bytes) this.transmit(p, to, bytes, dscp);
  }

  /** Envelope around the sealed frame, or undefined without a session (a handshake is started). */
  private seal(frame: Uint8Array): Uint8Array | undefined {
    const r = this.sessions!.seal(this.nowMs, PEER_ID, frame);
    if (!r.ok) {
      this.drainCrypto(this.nowMs);
      return undefined;
    }
    const ct = r.ciphertext;
    const out = new Uint8Array(envelopeHeaderSize(r.receiverIndex, r.counter, ct.length) + ct.length);
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

  private transmit(p: PathRuntime, to: Endpoint, bytes: Uint8Array, dscp: number): void {
    if (this.transmits.length >= MAX_TRANSMIT_QUEUE) return this.drop('transmitQueueFull');
    p.txPackets++;
    p.txBytes += bytes.length;
    this.transmits.push({ linkId: p.id, to, dscp, bytes });
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
