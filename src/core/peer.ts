/**
 * Peer: one remote site as seen by the Endpoint: paths, flows, steering, FEC, dedupe, staging and
 * timers. The Endpoint owns the sockets' side (links, shapers, sessions, routing); a Peer never sees
 * another peer. Idle peers probe slowly, one side per path (peer-idle.ts).
 * Send path (sendInner, after the Endpoint classified and routed the packet):
 *   flow (sticky path, steer/steering.ts) -> FEC stamp (fec/fec-tx.ts) -> dup seq -> data frame on
 *   the path(s) (peer-tx.ts: queue or seal) -> parity of a group that closed.
 * Receive path (onFrame, authenticated): path by (arrival link, sender's link in the frame) ->
 *   endpoint learned/moved -> path statistics -> by kind: data (dedupe, FEC, then the Endpoint's
 *   source check and delivery), probe (answer; a new epoch resets per-peer receive state),
 *   probe reply (RTT), control (hello: the peer's link name; drain), parity (FEC decoder).
 * Timers (PeerTimer): probe, path dead, reuse check, flow sweep, FEC flush, FEC expiry, keepalive;
 * `nextDeadlineMs()` is their minimum, kept in the Endpoint's heap across peers.
 */
import { copyBytes } from './bytes.ts';
import type { EventFields } from './events.ts';
import type { ErasureCodec } from './fec/codec.ts';
import { FecReceiver } from './fec/fec-rx.ts';
import { FecTx, MAX_PATHS_PER_PEER } from './fec/fec-tx.ts';
import type { ClassFecPolicy } from './fec/policy.ts';
import type { InnerInfo } from './inner.ts';
import { createPath, pathName, pathUsable, pathUsableMtu, retargetPmtu, type PathRuntime } from './pathmon/path.ts';
import { onPmtuReply, PMTU_PROBE_SEQ } from './peer-pmtu.ts';
import { answerProbe, takeEcho } from './peer-echo.ts';
import { PathStats } from './pathmon/path-stats.ts';
import type { PathStateConfig } from './pathmon/path-state.ts';
import { HELLO_REFRESH_MS, PeerTx } from './peer-tx.ts';
import { PeerBond } from './peer-bond.ts';
import { IdleProbing, noteData } from './peer-idle.ts';
import { peerTimeout, rearmPathTimers } from './peer-timers.ts';
import { spareBps, type LinkRuntime, type PendingTx } from './qos/egress.ts';
import { CLASS_NAMES, type ClassPolicy } from './steer/classes.ts';
import { DedupeWindow, RecentDups } from './steer/dedupe.ts';
import { Steering, type FlowEntry } from './steer/steering.ts';
import { formatEndpoint, sameEndpoint, type DropReason, type EdgeEventKind, type Endpoint, type PeerConfig } from './types.ts';
import type { Frame, PathReport } from './wire/codec.ts';
import type { SessionManager } from './crypto/handshake-state.ts';
import type { Rng } from './rng.ts';
import type { InnerMtuStage } from './inner/fit.ts';
import { usableInnerMtu } from './wire/overhead.ts';
import { sanitizeText } from './sanitize.ts';

/** Inner packets held while the first session is being set up (WireGuard stages 128 too). */
const MAX_STAGED_PACKETS = 128;
/** An endpoint moves at most this often per path (a replayed copy racing the real one cannot flap it). */
const ENDPOINT_MOVE_MIN_INTERVAL_MS = 200;
const NO_TIMER = Infinity;

export const enum PeerTimer {
  Probe = 0,
  PathDead = 1,
  Reuse = 2,
  FlowSweep = 3,
  FecFlush = 4,
  FecExpire = 5,
  Keepalive = 6,
  Count = 7,
}

/** Where a handshake came from: the reply goes back the same way. */
export interface HandshakeSource {
  linkId: number;
  from: Endpoint;
}

/** What a Peer needs from its Endpoint. */
export interface PeerHost {
  readonly site: string;
  readonly epoch: number;
  readonly links: readonly LinkRuntime[];
  readonly sessions: SessionManager<HandshakeSource> | undefined;
  readonly nowMs: number;
  readonly rng: Rng;
  readonly probeIntervalMs: number;
  readonly idleProbeAfterMs: number;
  readonly pathConfig: PathStateConfig;
  readonly fecCodec: ErasureCodec;
  readonly maxFlows: number | undefined; readonly flowIdleTimeoutMs: number | undefined;
  policies(): readonly ClassPolicy[];
  fecPolicies(): readonly ClassFecPolicy[];
  transmit(link: LinkRuntime, peerSlot: number, pathId: number, to: Endpoint, bytes: Uint8Array, dscp: number, classId: number): void;
  enqueue(link: LinkRuntime, item: PendingTx): void;
  /** An authenticated inner packet from this peer: source check, then TUN or forwarding. */
  deliverFrom(peer: Peer, packet: Uint8Array): void;
  /** Packets staged while the peer had no session or no path: send them again now. */
  resendStaged(peer: Peer): void;
  drop(reason: DropReason, n?: number): void;
  readonly innerMtu: InnerMtuStage;
  readonly maxDatagramBytes: number;
  /** An ICMP error we made for the site (too big): straight into the TUN. */
  deliverLocal(packet: Uint8Array): void;
  emit(atMs: number, kind: EdgeEventKind, fields: EventFields): void;
  drainCrypto(): void;
}

export class Peer {
  readonly paths: PathRuntime[] = [];
  readonly steering: Steering;
  readonly tx: PeerTx;
  readonly fecTx: (FecTx | undefined)[];
  fecTxList: FecTx[];
  readonly fecRx: FecReceiver;
  readonly bond: PeerBond = new PeerBond(this);
  readonly idle: IdleProbing;
  readonly timers = new Float64Array(PeerTimer.Count).fill(NO_TIMER);
  readonly classTx = CLASS_NAMES.map(() => ({ packets: 0, bytes: 0 }));
  readonly classWireBytes = new Float64Array(CLASS_NAMES.length);
  sessionUp = false;
  /** Heap position in the Endpoint's timer heap (-1: not in it). */
  heapIndex = -1;
  heapDeadlineMs = Infinity;
  dedupe = new DedupeWindow();
  /**
   * Our duplicate numbering starts where our random epoch says, not at 1: a peer that saw our
   * previous life does not take the new numbers for old copies (nor the reverse).
   */
  private dupSeq: number;
  /** Duplicate numbers accepted lately and the session (receiver index) each came in (see onPeerEpoch). */
  private readonly recentDups = new RecentDups();
  private staged: Uint8Array[] = [];
  /** The peer's start epoch: per-peer receive state (dedupe, FEC decoders) belongs to it. */
  peerEpoch: number | undefined;
  /**
   * The window of the peer's previous life, and since when its sessions are the new life's: a
   * second copy the old box sent, still in flight (or replayed) under a session made before the
   * new epoch's, is checked against the old window, which saw its first copy (VOPR seeds 86, 152).
   */
  private readonly prevWindows: { sinceMs: number; window: DedupeWindow }[] = [];
  private epochSessionSinceMs = -Infinity;
  /** Its previous epochs (a few): their late probes are ignored. */
  private readonly retiredEpochs: number[] = [];
  // Counters, `wg show` style plus ours.
  txInnerPackets = 0;
  txInnerBytes = 0;
  rxInnerPackets = 0;
  rxInnerBytes = 0;
  forwardedPackets = 0;
  duplicatesSuppressed = 0;
  sourceNotAllowed = 0;
  siteName: string | undefined;

  constructor(
    readonly host: PeerHost,
    readonly slot: number,
    public config: PeerConfig,
    nowMs: number,
  ) {
    this.steering = new Steering(
      {
        peerName: config.name,
        paths: this.paths,
        policies: () => host.policies(),
        emit: (at, kind, f) => host.emit(at, kind, f),
        spareBps: (p) => spareBps(host.links[p.linkId]!),
        fecView: (classId, lossRatio, now) => this.fecView(classId, lossRatio, now),
        pathStateChanged: (now) => this.rearmPathTimers(now),
      },
      host.rng,
      host.maxFlows,
      host.flowIdleTimeoutMs,
    );
    this.tx = new PeerTx(this);
    this.idle = new IdleProbing(nowMs);
    this.dupSeq = Math.imul(host.epoch ^ 0x5bd1e995, 0x9e3779b1) >>> 0;
    this.fecTx = host.fecPolicies().map((pol, c) => this.makeFecTx(c, pol));
    this.fecTxList = this.fecTx.filter((f): f is FecTx => f !== undefined);
    this.fecRx = new FecReceiver(host.fecCodec, {
      deliver: (pkt) => this.bond.deliverFec(pkt),
      countDrop: (r, n = 1) => host.drop(r, n),
      countDuplicate: () => this.duplicatesSuppressed++,
    }, nowMs);
    this.addConfiguredPaths(nowMs);
    this.timers[PeerTimer.FlowSweep] = nowMs + 1000;
    this.rearmPathTimers(nowMs);
  }

  get name(): string {
    return this.config.name;
  }

  /** The loss FEC would leave for the class on a path losing `lossRatio` (fec-tx.ts slaView). */
  fecView(classId: number, lossRatio: number, nowMs: number): { residualRatio: number; k: number; m: number } | undefined {
    return this.fecTx[classId]?.slaView(lossRatio, nowMs);
  }

  makeFecTx(classId: number, pol: ClassFecPolicy, firstGroupId?: number): FecTx | undefined {
    return pol.enabled && pol.maxM > 0 ? new FecTx(classId, pol, this.host.fecCodec, this.host.epoch, this.host.maxDatagramBytes, firstGroupId) : undefined;
  }

  /** Whether local link `linkId` may reach this peer (config `links`). */
  linkAllowed(linkId: number): boolean {
    const allowed = this.config.links;
    return allowed === undefined || allowed.includes(this.host.links[linkId]!.name);
  }

  /** One path per local link with a configured endpoint (live reloads add or move them). */
  addConfiguredPaths(nowMs: number): void {
    const eps = this.config.endpoints ?? {};
    for (const link of this.host.links) {
      const ep = eps[link.name];
      if (ep === undefined || !this.linkAllowed(link.id)) continue;
      const existing = this.paths.find((p) => p.linkId === link.id && p.configured);
      if (existing) {
        if (!sameEndpoint(existing.remote, ep)) this.moveEndpoint(nowMs, existing, ep, 'configuration');
        continue;
      }
      this.newPath(nowMs, link, ep, true, -1);
    }
  }

  /** Paths on links no longer allowed, or configured endpoints removed, stop carrying traffic. */
  retireUnwantedPaths(nowMs: number): void {
    const eps = this.config.endpoints ?? {};
    for (const p of this.paths) {
      if (!p.hasEndpoint) continue;
      const gone = !this.linkAllowed(p.linkId) || (p.configured && eps[p.name] === undefined);
      if (!gone) continue;
      p.hasEndpoint = false;
      p.configured = false;
      this.steering.forgetPath(nowMs, p.id, `${pathName(p)} removed from the configuration`);
    }
  }

  newPath(nowMs: number, link: LinkRuntime, ep: Endpoint | undefined, configured: boolean, remoteLink: number): PathRuntime | undefined {
    if (this.paths.length >= MAX_PATHS_PER_PEER) {
      this.host.drop('pathLimit');
      return undefined;
    }
    const p = createPath({ id: this.paths.length, linkId: link.id, name: link.name, tier: link.tier, dscp: link.dscp, remote: ep, configured, remoteLink, linkMtuBytes: link.mtuBytes, maxDatagramBytes: this.host.maxDatagramBytes }, this.host.pathConfig, nowMs);
    if (this.sessionUp) p.sm.resetSilenceClock(nowMs);
    this.paths.push(p);
    return p;
  }

  /** `reason` when the move is ours (configuration, silence), not the peer's packet. */
  moveEndpoint(nowMs: number, p: PathRuntime, to: Endpoint, reason?: string): void {
    const from = p.hasEndpoint ? formatEndpoint(p.remote) : 'none';
    p.remote = { address: to.address, port: to.port };
    retargetPmtu(p, this.host.links[p.linkId]!.mtuBytes, this.host.maxDatagramBytes, nowMs);
    p.hasEndpoint = true;
    p.endpointMovedAtMs = nowMs;
    p.endpointMoves++;
    this.host.emit(nowMs, 'endpointMoved', { peer: this.name, link: pathName(p), from, to: formatEndpoint(to), ...(reason !== undefined ? { reason } : {}) });
  }

  // ---- send -------------------------------------------------------------------------------

  usableMtu(p: PathRuntime): number {
    return pathUsableMtu(p);
  }

  /** The smallest usable inner MTU over the paths with an endpoint (for MSS clamping). */
  smallestUsableMtu(): number {
    let m = Infinity;
    for (const p of this.paths) if (p.hasEndpoint) m = Math.min(m, this.usableMtu(p));
    return m === Infinity ? usableInnerMtu(this.host.maxDatagramBytes + 28, 4) : m;
  }

  /** An inner packet routed to this peer: flow, MTU, FEC, then out on its path(s). */
  sendInner(nowMs: number, packet: Uint8Array, info: InnerInfo, classId: number, rule?: FlowEntry['rule']): void {
    const host = this.host;
    noteData(this, nowMs);
    const flow = this.steering.flowFor(nowMs, packet, info, classId, rule);
    flow.packets++;
    flow.bytes += packet.length;
    this.txInnerPackets++;
    this.txInnerBytes += packet.length;
    const cls = this.classTx[classId]!;
    cls.packets++;
    cls.bytes += packet.length;
    let path = this.paths[flow.path];
    // A flow made before any path had an endpoint (a hub waiting for a spoke: staged below), or whose path lost it.
    if (path === undefined || !path.hasEndpoint) path = this.paths[this.steering.reselect(nowMs, flow)];
    if (path === undefined || !path.hasEndpoint) {
      if (this.staged.length >= MAX_STAGED_PACKETS) return host.drop('noLink');
      this.staged.push(copyBytes(packet));
      return;
    }
    const second = flow.path2 >= 0 ? this.paths[flow.path2] : undefined;
    let usable = this.bond.usableMtu(classId, path);
    if (second !== undefined && second.hasEndpoint) usable = Math.min(usable, this.usableMtu(second));
    // Stage "fit": SYNs get an MSS the path takes; bigger packets are cut (IPv4 without DF) or get
    // Frag Needed / Packet Too Big for the hosts' PMTU discovery. The underlay is never fragmented.
    if (info.protocol === 6) host.innerMtu.clampMss(packet, info, usable);
    if (packet.length > usable) {
      const f = host.innerMtu.fit(nowMs, packet, usable);
      if (f.kind === 'fragments') {
        for (const frag of f.fragments) this.sendOnPaths(nowMs, frag, flow, classId, this.bond.pick(nowMs, flow, classId, path, frag.length), second);
        return;
      }
      if (f.kind === 'tooBig' && f.icmp !== undefined) host.deliverLocal(f.icmp);
      return host.drop(f.kind === 'tooBig' ? 'tooLarge' : 'badInner');
    }
    this.sendOnPaths(nowMs, packet, flow, classId, this.bond.pick(nowMs, flow, classId, path, packet.length), second);
  }

  private sendOnPaths(nowMs: number, packet: Uint8Array, flow: FlowEntry, classId: number, path: PathRuntime, second: PathRuntime | undefined): void {
    const host = this.host;
    const outerDscp = host.policies()[classId]!.outerDscp;
    const fec = this.fecTx[classId];
    // FEC for single-path flows once a session exists (a staged packet must not hold a group slot).
    // Duplicated flows are redundant already; a frame never carries dup_seq and FEC fields together.
    if (fec !== undefined && flow.path2 < 0 && (host.sessions === undefined || this.sessionUp) && packet.length <= fec.maxPacketBytes) {
      fec.countPacket(path.id);
      const stamp = fec.encoder.push(nowMs, packet, path.id);
      if (stamp !== undefined) {
        if (stamp.index === 0) {
          const due = nowMs + fec.policy.flushMs;
          if (due < this.timers[PeerTimer.FecFlush]!) this.timers[PeerTimer.FecFlush] = due;
        }
        // Not staged on failure: the group already counts the packet.
        if (!this.tx.sendData(path, packet, outerDscp, 0, classId, stamp.groupId, stamp.index, stamp.k)) host.drop('noSession');
        this.tx.sendParity(fec);
        return;
      }
    }
    if (fec !== undefined && packet.length > fec.maxPacketBytes) fec.tooLarge++;
    let dupSeq = 0;
    if (flow.path2 >= 0) {
      this.dupSeq = (this.dupSeq + 1) >>> 0 || 1;
      dupSeq = this.dupSeq;
    }
    if (!this.tx.sendData(path, packet, outerDscp, dupSeq, classId)) {
      // No session yet (or it expired): hold a few packets and send them when the handshake completes.
      if (this.staged.length >= MAX_STAGED_PACKETS) return host.drop('noSession');
      this.staged.push(copyBytes(packet));
      return;
    }
    if (second !== undefined && second.hasEndpoint) this.tx.sendData(second, packet, outerDscp, dupSeq, classId);
  }

  /** Staged packets, once a session (or a path) exists: re-enter through the Endpoint's send path. */
  takeStaged(): Uint8Array[] {
    const s = this.staged;
    this.staged = [];
    return s;
  }

  get stagedCount(): number {
    return this.staged.length;
  }

  bestUsablePath(): PathRuntime | undefined {
    let best: PathRuntime | undefined;
    for (const p of this.paths) {
      if (!pathUsable(p)) continue;
      if (!best || (p.stats.srttMs ?? Infinity) < (best.stats.srttMs ?? Infinity)) best = p;
    }
    return best ?? this.paths.find((p) => p.hasEndpoint);
  }

  /** Handshake initiation: on every path with an endpoint (must not depend on one dead link). */
  sendInitiation(bytes: Uint8Array): void {
    for (const p of this.paths) if (p.hasEndpoint) this.tx.transmit(p, p.remote, bytes, p.dscp);
  }

  // ---- receive ----------------------------------------------------------------------------

  /**
   * The path an authenticated frame from sender link `remoteLink` arriving on local link `linkId`
   * from `from` belongs to: the known one (its endpoint follows the peer, rate-limited), else a
   * configured path not bound to a remote link yet, else a new learned path.
   */
  pathFor(nowMs: number, linkId: number, remoteLink: number, from: Endpoint): PathRuntime | undefined {
    let unbound: PathRuntime | undefined;
    for (const p of this.paths) {
      if (p.linkId !== linkId) continue;
      if (p.remoteLink === remoteLink) {
        if (!p.hasEndpoint && !this.linkAllowed(linkId)) return undefined;
        if ((!p.hasEndpoint || !sameEndpoint(p.remote, from)) && nowMs - p.endpointMovedAtMs >= ENDPOINT_MOVE_MIN_INTERVAL_MS) this.moveEndpoint(nowMs, p, from);
        return p;
      }
      if (p.remoteLink < 0 && unbound === undefined) unbound = p;
    }
    if (unbound !== undefined) {
      unbound.remoteLink = remoteLink;
      if (!sameEndpoint(unbound.remote, from)) this.moveEndpoint(nowMs, unbound, from);
      return unbound;
    }
    if (!this.linkAllowed(linkId)) return undefined;
    const p = this.newPath(nowMs, this.host.links[linkId]!, from, false, remoteLink);
    if (p !== undefined) {
      this.host.emit(nowMs, 'pathLearned', { peer: this.name, link: p.name, to: formatEndpoint(from) });
      if (this.staged.length > 0) this.host.resendStaged(this);
    }
    return p;
  }

  /** An authenticated keepalive: proves the session and the path it came on, if we know it. */
  onKeepalive(nowMs: number, linkId: number, from: Endpoint): void {
    for (const p of this.paths) {
      if (p.linkId === linkId && p.hasEndpoint && sameEndpoint(p.remote, from)) {
        p.rxPackets++;
        this.steering.onTransition(nowMs, p, p.sm.onHeard(nowMs, false, true));
      }
    }
  }

  onFrame(nowMs: number, linkId: number, from: Endpoint, frame: Frame, sizeBytes: number, receiverIndex = 0): void {
    const remoteLink =
      frame.kind === 'data' ? frame.data.link
      : frame.kind === 'probe' ? frame.probe.link
      : frame.kind === 'probeReply' ? frame.probeReply.link
      : frame.kind === 'fecParity' ? frame.fecParity.link
      : frame.control.hello ? frame.control.hello.link
      : -1;
    if (remoteLink < 0) {
      // A drain names the sender's link; it is not about the path it arrived on.
      const drain = frame.kind === 'control' ? frame.control.drain : undefined;
      if (drain) this.onRemoteDrain(nowMs, drain.link, drain.drained);
      this.onKeepalive(nowMs, linkId, from);
      return;
    }
    const path = this.pathFor(nowMs, linkId, remoteLink, from);
    if (path === undefined) return;
    path.rxPackets++;
    path.rxBytes += sizeBytes;
    switch (frame.kind) {
      case 'data': {
        noteData(this, nowMs);
        const d = frame.data;
        path.stats.onReceiveSeq(nowMs, d.pathSeq);
        this.steering.onTransition(nowMs, path, path.sm.onHeard(nowMs, false, true));
        path.rxDataPackets++;
        if (d.dupSeq !== 0) {
          if (!this.dedupeFor(receiverIndex).accept(d.dupSeq)) {
            this.duplicatesSuppressed++;
            return;
          }
          this.recentDups.note(d.dupSeq, receiverIndex);
        }
        // FEC state belongs to the epoch: a protected frame of the peer's previous life may have been
        // rebuilt already (VOPR seed 167: an old-life k = 1 parity replayed late delivered voice twice).
        if (d.fecGroup !== 0 && this.oldLife(receiverIndex)) return this.host.drop('staleEpoch');
        if (d.fecGroup !== 0 || d.bondSeq) return this.bond.onData(nowMs, path, d);
        this.host.deliverFrom(this, d.packet);
        return;
      }
      case 'probe': {
        const p = frame.probe;
        // A PMTU probe (padded, seq 0): answered, kept out of the path's statistics (peer-pmtu.ts).
        if (p.seq === PMTU_PROBE_SEQ) return this.tx.sendProbeReply(path, from, PMTU_PROBE_SEQ, p.txUs, nowMs, p.dscp);
        // A probe of the peer's previous life (late on a slow path, or replayed) must not switch the
        // peer back to that epoch: that would reset its receive state a second time.
        if (p.epoch && p.epoch !== this.peerEpoch && this.retiredEpochs.includes(p.epoch)) return;
        if (p.epoch && p.epoch !== path.peerEpoch) {
          if (path.peerEpoch !== undefined) {
            // The peer restarted: its sequences start over, old statistics no longer apply.
            path.stats = new PathStats();
            path.lastProbeSeqRx = -1;
            path.helloAtMs = -Infinity;
            path.echoSeq = 0;
            this.host.emit(nowMs, 'pathState', { peer: this.name, link: pathName(path), text: `${pathName(path)}: peer restarted (new epoch), path statistics reset` });
          }
          path.peerEpoch = p.epoch;
          if (p.epoch !== this.peerEpoch) this.onPeerEpoch(p.epoch, this.host.sessions?.sessionCreatedMs(receiverIndex) ?? nowMs);
        }
        path.stats.onReceiveSeq(nowMs, p.seq);
        path.stats.onProbeArrival(nowMs, p.txUs / 1000);
        if (p.report) this.takePeerReport(nowMs, path, p.report);
        takeEcho(path, p, nowMs);
        const inOrder = path.lastProbeSeqRx < 0 || ((p.seq - path.lastProbeSeqRx) | 0) > 0;
        path.lastProbeSeqRx = p.seq;
        path.peerProbeAtMs = nowMs;
        this.steering.onTransition(nowMs, path, path.sm.onHeard(nowMs, true, inOrder));
        answerProbe(this, path, from, p, nowMs);
        if (nowMs - path.helloAtMs >= HELLO_REFRESH_MS) this.tx.sendHello(nowMs, path);
        return;
      }
      case 'probeReply': {
        const r = frame.probeReply;
        if (r.seq === PMTU_PROBE_SEQ) return onPmtuReply(this, path, r.txUs, nowMs);
        // Our direction carried a probe sent then: what blames the size of a lost PMTU probe (peer-pmtu.ts).
        path.pmtu.onPathHeard(r.txUs / 1000);
        path.stats.onRttSample(nowMs - r.txUs / 1000 - r.holdUs / 1000);
        if (r.report) this.takePeerReport(nowMs, path, r.report);
        this.steering.onTransition(nowMs, path, path.sm.onHeard(nowMs, this.idle.slow, true)); // idle: replies earn the hold-down
        return;
      }
      case 'control': {
        this.steering.onTransition(nowMs, path, path.sm.onHeard(nowMs, false, true));
        const { hello, drain } = frame.control;
        // Peer-supplied strings are made safe here, before any terminal or log sees them.
        const linkName = hello ? sanitizeText(hello.linkName, 64) : undefined;
        if (hello && linkName !== path.peerLinkName) {
          path.peerLinkName = linkName;
          this.siteName = sanitizeText(hello.site, 64);
          this.host.emit(nowMs, 'peerHello', { peer: this.name, link: path.name, text: `${path.name}: peer ${this.siteName} link ${linkName}` });
        }
        if (hello) this.steering.onPeerTier(nowMs, path, hello.tier ?? 0);
        if (drain) this.onRemoteDrain(nowMs, drain.link, drain.drained);
        return;
      }
      case 'fecParity': {
        const f = frame.fecParity;
        // Parity shares the path's sequence with data and probes: count it, or it looks like loss.
        path.stats.onReceiveSeq(nowMs, f.pathSeq);
        this.steering.onTransition(nowMs, path, path.sm.onHeard(nowMs, false, true));
        if (this.oldLife(receiverIndex)) return this.host.drop('staleEpoch');
        this.fecRx.onParity(nowMs, f);
        return;
      }
    }
  }

  /** The window of the life whose session `receiverIndex` names (two restarts in a row: VOPR seed 104). */
  private dedupeFor(receiverIndex: number): DedupeWindow {
    if (!this.oldLife(receiverIndex)) return this.dedupe;
    const created = this.host.sessions!.sessionCreatedMs(receiverIndex)!;
    for (let i = this.prevWindows.length - 1; i > 0; i--) if (created >= this.prevWindows[i]!.sinceMs) return this.prevWindows[i]!.window;
    return this.prevWindows[0]!.window;
  }

  /** Opened under a session made before the one that brought the peer's current epoch. */
  private oldLife(receiverIndex: number): boolean {
    if (this.prevWindows.length === 0 || receiverIndex === 0) return false;
    const created = this.host.sessions?.sessionCreatedMs(receiverIndex);
    return created !== undefined && created < this.epochSessionSinceMs;
  }

  /**
   * A new peer epoch (the remote box restarted): its duplicate and FEC numbering start over. The
   * epoch arrives in a probe, and the new life's data can come before it: a first copy accepted by
   * the old window must still suppress its second copy after the reset (VOPR seed 58 delivered six
   * packets twice): what the new life's sessions accepted is carried into the new window, chosen
   * by session, not time (a late or replayed old-life copy opened after the new session came up
   * carried its number in; the new life's read as ancient: VOPR seed 540).
   */
  private onPeerEpoch(epoch: number, sessionSinceMs: number): void {
    if (epoch === this.peerEpoch) return;
    if (this.peerEpoch !== undefined) {
      this.prevWindows.push({ sinceMs: this.epochSessionSinceMs, window: this.dedupe });
      if (this.prevWindows.length > 3) this.prevWindows.shift();
      this.retiredEpochs.push(this.peerEpoch);
      if (this.retiredEpochs.length > 4) this.retiredEpochs.shift();
      this.dedupe = new DedupeWindow();
      this.recentDups.forEach((seq, index) => {
        if ((this.host.sessions?.sessionCreatedMs(index) ?? -Infinity) >= sessionSinceMs) this.dedupe.accept(seq);
      });
    }
    this.peerEpoch = epoch;
    this.epochSessionSinceMs = sessionSinceMs;
    this.fecRx.onPeerEpoch(epoch);
  }

  private onRemoteDrain(nowMs: number, remoteLink: number, drained: boolean): void {
    for (const target of this.paths) {
      if (target.remoteLink !== remoteLink || target.remoteDrained === drained) continue;
      target.remoteDrained = drained;
      const name = pathName(target);
      this.host.emit(nowMs, 'pathState', { peer: this.name, link: name, text: `${name}: ${drained ? 'drained' : 'undrained'} by the peer's operator` });
      this.steering.resteer(nowMs, (f) => f.path === target.id || f.path2 === target.id || !drained, `${name} drained by peer`);
    }
  }

  /**
   * A peer's report of what it received from us on this path. One claiming a sequence number we
   * have not sent yet describes our previous life (we restarted; the peer has not seen our epoch).
   */
  private takePeerReport(nowMs: number, path: PathRuntime, report: PathReport): void {
    if (((report.highestSeq - path.txSeq) | 0) > 0) return;
    path.stats.onPeerReport(nowMs, report.received, report.highestSeq);
    path.stats.onPeerJitter(nowMs, report.jitterUs);
  }

  // ---- timers -----------------------------------------------------------------------------

  nextDeadlineMs(): number {
    let t = this.bond.deadlineMs;
    const timers = this.timers;
    for (let i = 0; i < PeerTimer.Count; i++) if (timers[i]! < t) t = timers[i]!;
    return t;
  }

  onTimeout(nowMs: number): void {
    peerTimeout(this, nowMs);
  }

  /** Arms the path timers (dead, reuse) from the paths' state machines. */
  rearmPathTimers(nowMs: number): void {
    rearmPathTimers(this, nowMs);
  }

  /** The session came up or went: probes start or stop; staged packets are the Endpoint's to resend. */
  setSessionUp(nowMs: number, up: boolean): void {
    if (up === this.sessionUp) return;
    this.sessionUp = up;
    if (up) for (const p of this.paths) p.sm.resetSilenceClock(nowMs);
    this.rearmPathTimers(nowMs);
  }

  /** Spread the first probes of many peers over the probe interval (no thundering herd). */
  offsetFirstProbe(nowMs: number, fraction: number): void {
    this.timers[PeerTimer.Probe] = nowMs + Math.floor(fraction * this.host.probeIntervalMs);
  }
}
