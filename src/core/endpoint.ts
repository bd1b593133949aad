/**
 * Endpoint: the whole overlay protocol of one box as a deterministic state machine (quinn-proto's design): its local links,
 * the session manager, the routing table and the shared egress, with a Peer (peer.ts) per remote site. It owns no
 * socket, file or timer and never reads the clock: time arrives as `nowMs` (monotonic ms), randomness from an injected Rng.
 *
 * Call order (the shell's loop, src/io/driver.ts; the simulator's World does the same in virtual time):
 *   inputs   handleTunPacket(now, packet)          an inner IP packet from the site
 *            handleDatagram(now, linkId, from, b)  an overlay datagram from a WAN link
 *            handleTimeout(now)                    when now >= pollTimeout()
 *            setLinkAdmin / setClassPolicies / setPeers   operator commands and reloads
 *            noteLinkRxDropped(now, linkId, n)     the link socket's own drops (every ~100 ms)
 *   outputs  pollTransmit()  -> Transmit | undefined   datagrams to send, in order
 *            pollDelivery()  -> Uint8Array | undefined inner packets for the TUN, in order
 *            pollTimeout()   -> number | undefined     the next deadline (absolute ms)
 *            pollEvent()     -> EdgeEvent | undefined  typed state changes (core/events.ts)
 *            snapshot(now)   -> EdgeSnapshot           counters, paths, classes, peers
 * After any input, the shell drains the poll* outputs and re-arms its one timer to pollTimeout().
 *
 * Buffer contract: `handleDatagram` may hand out views into `datagram` through pollDelivery, so the shell must not
 * reuse that buffer until it has drained pollDelivery. `handleTunPacket` copies what it needs: the packet buffer may be
 * reused as soon as the call returns.
 *
 * Send path, in stages: parse (inner.ts) -> route (routing/prefix-table.ts: destination -> peer,
 * `noRoute` drop) -> classify (steer/classes.ts: DSCP) -> [peer.ts] flow -> path -> FEC ->
 * [peer-tx.ts] queue (qos: shared shaper per link, DRR across peers) -> seal -> transmit.
 * Receive path: envelope -> handshake (crypto) or open (receiver index -> peer) -> frame -> [peer.ts] path by
 * (arrival link, sender link) -> statistics / dedupe / FEC -> deliverFrom: the inner source must lie in the sender's
 * prefixes (`sourceNotAllowed`), then the TUN, or, when the destination belongs to another peer (a hub between
 * spokes), that peer's send path: forwarded inside the core with the class and DSCP kept, no trip through the kernel.
 *
 * Per-packet problems never throw: they are counted in snapshot().drops. Timers: the session manager's and the shapers'
 * here, each peer's in its own table (peer.ts PeerTimer) with the earliest kept in a heap across peers.
 */
import { MAX_DELIVERY_QUEUE, MAX_INNER_PACKET_BYTES, MAX_LINKS, MAX_TRANSMIT_QUEUE } from './constants.ts';
import { SessionManager, type CryptoEvent } from './crypto/handshake-state.ts';
import { keyPairFromPrivate } from './crypto/keys.ts';
import { cipherPolicy } from './crypto/cipher-choice.ts';
import type { AeadFactory } from './crypto/transport.ts';
import { BraidError, ErrorCode } from './errors.ts';
import { EventLog, type EventFields } from './events.ts';
import type { ErasureCodec } from './fec/codec.ts';
import { createGf256Codec } from './fec/gf256.ts';
import type { ClassFecPolicy } from './fec/policy.ts';
import { newInnerInfo, parseInner, type InnerInfo } from './inner.ts';
import { DEAD_AFTER_PROBES, DEFAULT_PROBE_INTERVAL_MS, HOLD_DOWN_PROBES, type PathStateConfig } from './pathmon/path-state.ts';
import { Peer, type HandshakeSource, type PeerHost } from './peer.ts';
import { callAgain, learnFromInitiation, plaintextPeer } from './peer-roam.ts';
import type { EndpointConfig } from './endpoint-config.ts';
import { buildSnapshot } from './snapshot.ts';
import { createLink, PendingTx, releaseLink, TxKind, type LinkRuntime } from './qos/egress.ts';
import { checkQueuePolicy, DEFAULT_QUEUE_POLICIES, type ClassQueuePolicy } from './qos/policy.ts';
import type { Rng } from './rng.ts';
import { NO_PEER, PrefixTable } from './routing/prefix-table.ts';
import { CLASS_NAMES, classOfDscp, DEFAULT_POLICIES, type ClassName, type ClassPolicy } from './steer/classes.ts';
import { TimerHeap } from './timer-heap.ts';
import { Fifo } from './fifo.ts';
import { applyLinkHealth } from './pathmon/health.ts';
import { notePathTx } from './pathmon/path.ts';
import { shareLocalDrops } from './pathmon/local-drops.ts';
import { epochForRole, PEER_IDLE_AFTER_MS } from './peer-idle.ts';
import { checkPeerSet, mergeFec, publicFacts, sameKey, stripUndefined } from './peer-config.ts';
import { DEFAULT_DSCP_TRUST, DscpTrust, type DscpTrustPolicy } from './steer/dscp-trust.ts';
import { remarkDscp, RuleSet, type RuleSpec } from './steer/rules.ts';
import { InnerMtuStage } from './inner/fit.ts';
import { DROP_REASONS, formatEndpoint, type DropReason, type EdgeEvent, type EdgeEventKind, type EdgeSnapshot, type Endpoint as UdpEndpoint, type LinkConfig, type PeerConfig, type Transmit } from './types.ts';
import { decodeEnvelopeStrict, decodeFrameStrict, encodeEnvelope, encodeFrame, receiveCapBytes } from './wire/codec.ts';

export type { EndpointConfig, EndpointCryptoConfig } from './endpoint-config.ts';

const DEFAULT_MAX_DATAGRAM_BYTES = 1472;
const enum Timer {
  Crypto = 0,
  Shaper = 1,
  Count = 2,
}

export class Endpoint implements PeerHost {
  readonly site: string;
  readonly epoch: number;
  readonly links: LinkRuntime[];
  readonly sessions: SessionManager<HandshakeSource> | undefined;
  nowMs: number;
  readonly probeIntervalMs: number;
  readonly idleProbeAfterMs: number;
  readonly pathConfig: PathStateConfig;
  readonly maxDatagramBytes: number;
  readonly fecCodec: ErasureCodec;
  readonly maxFlows: number | undefined;
  readonly flowIdleTimeoutMs: number | undefined;
  private classPolicies: readonly ClassPolicy[];
  private classFec: readonly ClassFecPolicy[];
  readonly queuePolicies: readonly ClassQueuePolicy[];
  /** Peers by slot (the routing table's value); a removed peer leaves a hole, reused later. */
  readonly peerSlots: (Peer | undefined)[] = [];
  readonly peersByName = new Map<string, Peer>();
  readonly router = new PrefixTable();
  private readonly heap = new TimerHeap<Peer>();
  private readonly dirty: Peer[] = [];
  private readonly timers = new Float64Array(Timer.Count).fill(Infinity);
  private cryptoWalkAtMs = -Infinity; // next walk of every peer's session timers (drainCrypto)
  private readonly transmits = new Fifo<Transmit>();
  private readonly deliveries = new Fifo<Uint8Array>();
  readonly events = new EventLog();
  readonly drops: Record<DropReason, number>;
  private readonly inner = newInnerInfo();
  private readonly rxInner = newInnerInfo();
  readonly rng: Rng;
  tunPacketsIn = 0;
  deliveredPackets = 0;
  rules: RuleSet;
  readonly dscpTrust: DscpTrust;
  /** Inner packets vs the path's MTU: MSS clamp, inner fragments, ICMP too-big (inner/fit.ts). */
  readonly innerMtu = new InnerMtuStage();
  private readonly receiveCapBytes: number;

  constructor(config: EndpointConfig, nowMs: number, rng: Rng) {
    if (config.links.length > MAX_LINKS) throw new BraidError(ErrorCode.CONFIG_INVALID, `at most ${MAX_LINKS} links`, { field: 'links' });
    this.site = config.site;
    this.rng = rng;
    this.nowMs = nowMs;
    this.epoch = epochForRole(rng.nextU32(), config.role);
    if (config.crypto) {
      const c = config.crypto;
      this.sessions = new SessionManager<HandshakeSource>({
        local: keyPairFromPrivate(c.privateKey),
        rng,
        wallClockEpochMs: c.wallClockEpochMs,
        ciphers: cipherPolicy(c.cipher ?? 'auto', c.aesAccelerated ?? false),
        ...(c.aead ? { aead: c.aead } : {}),
        ...(c.openInPlace ? { openInPlace: true } : {}),
      });
    }
    this.probeIntervalMs = config.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.idleProbeAfterMs = config.idleProbeAfterMs === 0 ? Infinity : (config.idleProbeAfterMs ?? PEER_IDLE_AFTER_MS);
    this.pathConfig = {
      deadAfterMs: config.deadAfterMs ?? DEAD_AFTER_PROBES * this.probeIntervalMs,
      holdDownProbes: config.holdDownProbes ?? HOLD_DOWN_PROBES,
      flapDamping: config.flapDamping ?? true,
    };
    this.maxFlows = config.maxFlows;
    this.flowIdleTimeoutMs = config.flowIdleTimeoutMs;
    this.classPolicies = config.policies ?? DEFAULT_POLICIES;
    if (this.classPolicies.length !== CLASS_NAMES.length) throw new RangeError(`policies: expected ${CLASS_NAMES.length} classes`);
    this.fecCodec = config.fecCodec ?? createGf256Codec();
    this.maxDatagramBytes = config.maxDatagramBytes ?? DEFAULT_MAX_DATAGRAM_BYTES;
    this.classFec = mergeFec(config.fec ?? {});
    this.queuePolicies = CLASS_NAMES.map((name, i) => {
      const p: ClassQueuePolicy = { ...DEFAULT_QUEUE_POLICIES[i]!, ...stripUndefined(config.queues?.[name]) };
      checkQueuePolicy(p, `class ${name}`);
      return p;
    });
    this.links = config.links.map((l, id) => createLink(id, l, this.queuePolicies, nowMs));
    this.rules = new RuleSet(config.rules ?? []);
    this.receiveCapBytes = receiveCapBytes(config.linkMtuBytes ?? Math.max(1500, this.maxDatagramBytes + 28));
    this.dscpTrust = new DscpTrust(config.dscpTrust ?? DEFAULT_DSCP_TRUST);
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
    this.events.namePeers = config.peers.length !== 1;
    checkPeerSet(config.peers, this.sessions !== undefined);
    for (const pc of config.peers) this.addPeer(nowMs, pc, config.peers.length, false);
    this.flush();
  }

  // ---- PeerHost ----------------------------------------------------------------------------

  policies(): readonly ClassPolicy[] {
    return this.classPolicies;
  }

  fecPolicies(): readonly ClassFecPolicy[] {
    return this.classFec;
  }

  drop(reason: DropReason, n = 1): void {
    this.drops[reason] += n;
  }

  emit(atMs: number, kind: EdgeEventKind, fields: EventFields): void {
    this.events.emit(atMs, kind, fields);
  }

  transmit(link: LinkRuntime, peerSlot: number, pathId: number, to: UdpEndpoint, bytes: Uint8Array, dscp: number, classId: number): void {
    const sched = link.sched;
    if (sched === undefined) {
      if (this.transmits.length >= MAX_TRANSMIT_QUEUE) return this.drop('transmitQueueFull');
      link.txPackets++;
      link.txBytes += bytes.length;
      this.transmits.push({ linkId: link.id, to, dscp, bytes });
      return;
    }
    const owner = peerSlot >= 0 ? (this.peerSlots[peerSlot] ?? null) : null;
    if (!sched.enqueue(this.nowMs, classId, new PendingTx(TxKind.Sealed, bytes.length, owner, peerSlot, pathId, to, dscp, classId, bytes), Math.max(0, peerSlot))) return this.drop('queueFull');
    this.releaseLink(this.nowMs, link);
  }

  enqueue(link: LinkRuntime, item: PendingTx): void {
    link.sched!.enqueue(this.nowMs, item.classId, item, item.peerSlot);
    this.releaseLink(this.nowMs, link);
  }

  deliverFrom(peer: Peer, packet: Uint8Array): void {
    const info = parseInner(packet, this.rxInner);
    if (!info) return this.drop('badInner');
    if (!this.router.sourceAllowed(packet, peer.slot)) {
      peer.sourceNotAllowed++;
      return this.drop('sourceNotAllowed');
    }
    const dst = this.router.lookup(packet, info.ipVersion, info.dstAt);
    if (dst !== NO_PEER && dst !== peer.slot) {
      // A hub between spokes: straight into the other peer's send path, class and DSCP kept.
      const to = this.peerSlots[dst];
      if (to !== undefined) {
        peer.forwardedPackets++;
        to.sendInner(this.nowMs, packet, info, classOfDscp(info.dscp));
        this.touch(to);
        return;
      }
    }
    // SYN-ACKs (and SYNs) coming in get their MSS clamped too: the far host sends into our paths.
    if (info.protocol === 6) this.innerMtu.clampMss(packet, info, peer.smallestUsableMtu());
    peer.rxInnerPackets++;
    peer.rxInnerBytes += packet.length;
    if (this.deliveries.length >= MAX_DELIVERY_QUEUE) return this.drop('deliveryQueueFull');
    this.deliveredPackets++;
    this.deliveries.push(packet);
  }

  resendStaged(peer: Peer): void {
    for (const pkt of peer.takeStaged()) this.route(this.nowMs, pkt);
  }

  /** Moves handshake messages onto the wire and session events into ours. */
  drainCrypto(onePeer?: string): void {
    const sessions = this.sessions;
    if (!sessions) return;
    const nowMs = this.nowMs;
    for (let t = sessions.pollTransmit(); t; t = sessions.pollTransmit()) {
      if (t.kind === 'initiation') {
        const peer = this.peersByName.get(t.peerId);
        if (peer) peer.sendInitiation(encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: new Uint8Array(0), handshake: t.bytes }));
      } else if (t.kind === 'reply') {
        const link = this.links[t.to.linkId];
        if (link) this.transmit(link, -1, -1, t.to.from, encodeEnvelope({ version: 1, receiver: 0, counter: 0, sealed: new Uint8Array(0), handshake: t.bytes }), link.dscp, 0);
      } else {
        const peer = this.peersByName.get(t.peerId);
        const p = peer?.bestUsablePath();
        if (peer && p) {
          peer.tx.sendKeepalive(p);
          this.touch(peer);
        }
      }
    }
    for (let e = sessions.pollEvent(); e; e = sessions.pollEvent()) this.onCryptoEvent(nowMs, e);
    // An opened data packet arms only its peer's timers: fold those in (O(1)); walk all peers at most every 100 ms (issue 12).
    if (onePeer !== undefined && nowMs < this.cryptoWalkAtMs) this.timers[Timer.Crypto] = Math.min(this.timers[Timer.Crypto]!, sessions.nextDeadlineMs(onePeer) ?? Infinity);
    else [this.timers[Timer.Crypto], this.cryptoWalkAtMs] = [sessions.nextDeadlineMs() ?? Infinity, nowMs + 100];
  }

  private onCryptoEvent(nowMs: number, e: CryptoEvent): void {
    const peer = e.peerId !== undefined ? this.peersByName.get(e.peerId) : undefined;
    this.emit(nowMs, 'session', { ...(peer ? { peer: peer.name } : {}), text: `session: ${e.message}` });
    if (!peer) return;
    peer.setSessionUp(nowMs, this.sessions!.hasSession(nowMs, peer.name));
    this.touch(peer);
    if (e.kind === 'sessionEstablished' || e.kind === 'sessionConfirmed') peer.tx.onSessionChange();
    if ((e.kind === 'sessionEstablished' || e.kind === 'sessionConfirmed') && peer.sessionUp && peer.stagedCount > 0) this.resendStaged(peer);
    if (e.kind === 'handshakeFailed' && callAgain(peer, nowMs)) this.drainCrypto(); // a peer we must reach: a new round at once (peer-roam.ts)
  }

  // ---- inputs ------------------------------------------------------------------------------

  handleTunPacket(nowMs: number, packet: Uint8Array): void {
    this.nowMs = nowMs;
    this.tunPacketsIn++;
    this.route(nowMs, packet);
    this.flush();
  }

  /** Parse, route, classify, and hand to the peer's send path. */
  private route(nowMs: number, packet: Uint8Array): void {
    if (packet.length > MAX_INNER_PACKET_BYTES) return this.drop('tooLarge');
    const info = parseInner(packet, this.inner);
    if (!info) return this.drop('badInner');
    if (this.links.length === 0) return this.drop('noLink');
    const slot = this.router.lookup(packet, info.ipVersion, info.dstAt);
    const peer = slot === NO_PEER ? undefined : this.peerSlots[slot];
    if (peer === undefined) return this.drop('noRoute');
    peer.sendInner(nowMs, packet, info, this.classify(nowMs, packet, info), this.rules.lastMatch);
    this.touch(peer);
  }

  /**
   * The class of a LAN packet: the trust boundary first (LAN-marked DSCP over its class's cap, or
   * any marking when the LAN is untrusted, becomes best effort, re-marked in the packet as CPE
   * routers do), then the application rules, then the DSCP (RFC 4594 defaults).
   */
  private classify(nowMs: number, packet: Uint8Array, info: InnerInfo): number {
    const trusted = this.dscpTrust.admit(nowMs, info.dscp, packet.length);
    if (trusted !== info.dscp) remarkDscp(packet, info, trusted);
    const v = this.rules.classifyInner(packet, info);
    if (v.remark) remarkDscp(packet, info, v.dscp);
    return v.classId;
  }

  /** New application rules (reload); per-rule counters carry over by rule name. */
  setRules(specs: readonly RuleSpec[]): void {
    const next = new RuleSet(specs);
    next.carryCountersFrom(this.rules);
    this.rules = next;
  }

  /** An ICMP error we made (too big) goes straight back into the TUN. */
  deliverLocal(packet: Uint8Array): void {
    if (this.deliveries.length >= MAX_DELIVERY_QUEUE) return this.drop('deliveryQueueFull');
    this.deliveries.push(packet);
  }

  /** Drops of the link's receive socket since the last call (the shell's, every ~100 ms): this box's loss, not the paths' (pathmon/local-drops.ts). */
  noteLinkRxDropped(nowMs: number, linkId: number, count: number): number {
    return shareLocalDrops((this.nowMs = nowMs), this.peersByName, linkId, count);
  }

  handleDatagram(nowMs: number, linkId: number, from: UdpEndpoint, datagram: Uint8Array): void {
    this.nowMs = nowMs;
    this.receive(nowMs, linkId, from, datagram);
    this.flush();
  }

  private receive(nowMs: number, linkId: number, from: UdpEndpoint, datagram: Uint8Array): void {
    const link = this.links[linkId];
    if (!link) return this.drop('unknownLink');
    link.rxPackets++;
    link.rxBytes += datagram.length;
    // Before authentication only the fast decoders run, under a cap near the link MTU: a crafted
    // 64 KB envelope costs 20 ns here instead of ~1 ms in protobufjs' generic reader (bench/codec.ts).
    const env = decodeEnvelopeStrict(datagram, this.receiveCapBytes);
    if (!env.ok) return this.drop(env.reason);
    const e = env.value;
    const sessions = this.sessions;
    if (!sessions) {
      if (e.receiver !== 0 || (e.handshake && e.handshake.length > 0)) return this.drop('unauthenticated');
      const peer = plaintextPeer(this.peersByName, linkId, from);
      if (!peer) return this.drop('unknownPeer');
      const frame = decodeFrameStrict(e.sealed);
      if (!frame.ok) return this.drop(frame.reason);
      peer.onFrame(nowMs, linkId, from, frame.value, datagram.length);
      return this.touch(peer);
    }
    if (e.handshake && e.handshake.length > 0) {
      // Unauthenticated until the handshake code says otherwise: only an initiation it authenticated
      // teaches a path (peer-roam.ts), and only on a link where we had none to that peer.
      const initiator = sessions.handleHandshake(nowMs, { linkId, from }, formatEndpoint(from), e.handshake);
      if (initiator !== undefined) learnFromInitiation(this.peersByName.get(initiator), nowMs, linkId, from);
      this.drainCrypto();
      return;
    }
    if (e.receiver === 0) return this.drop('unauthenticated');
    const opened = sessions.open(nowMs, e.receiver, e.counter, e.sealed);
    if (!opened.ok) return this.drop(opened.reason);
    const peer = this.peersByName.get(opened.peerId);
    if (!peer) return this.drop('unknownPeer');
    this.drainCrypto(opened.peerId);
    if (opened.plaintext.length === 0) {
      peer.onKeepalive(nowMs, linkId, from);
      return this.touch(peer);
    }
    const frame = decodeFrameStrict(opened.plaintext);
    if (!frame.ok) return this.drop(frame.reason);
    peer.onFrame(nowMs, linkId, from, frame.value, datagram.length, e.receiver);
    this.touch(peer);
  }

  handleTimeout(nowMs: number): void {
    this.nowMs = nowMs;
    if (this.sessions && nowMs >= this.timers[Timer.Crypto]!) {
      this.sessions.handleTimeout(nowMs);
      this.drainCrypto();
    }
    if (nowMs >= this.timers[Timer.Shaper]!) this.releaseShaped(nowMs);
    // Take every due peer first: a peer's handler may leave a deadline at `nowMs` again.
    const due: Peer[] = [];
    for (let top = this.heap.peek(); top !== undefined && top.heapDeadlineMs <= nowMs; top = this.heap.peek()) {
      this.heap.remove(top);
      due.push(top);
    }
    for (const peer of due) {
      peer.onTimeout(nowMs);
      this.touch(peer);
    }
    this.flush();
  }

  /**
   * Operator drain: a drained link carries no data (probes continue so its state stays known).
   * Without `peerName` the whole link (every peer); with it, only that peer's paths on the link.
   */
  setLinkAdmin(nowMs: number, linkId: number, drained: boolean, peerName?: string): void {
    this.nowMs = nowMs;
    const link = this.links[linkId];
    if (!link) return;
    if (peerName === undefined) link.drained = drained;
    const frame = encodeFrame({ kind: 'control', control: { drain: { link: linkId, drained } } });
    for (const peer of this.peersByName.values()) {
      if (peerName !== undefined && peer.name !== peerName) continue;
      for (const p of peer.paths) if (p.linkId === linkId) peer.steering.onTransition(nowMs, p, p.sm.setDrained(drained));
      // Tell the peer so it stops sending on this link too.
      for (const p of peer.paths) if (p.hasEndpoint) peer.tx.sendFrame(p, p.remote, frame, p.dscp);
      peer.rearmPathTimers(nowMs);
      this.touch(peer);
    }
    this.flush();
  }

  /**
   * The link's external health target (an ISP gateway pinged through the link, io/health.ts):
   * unreachable means the ISP is down, so every path on the link goes DOWN at once with that reason,
   * sooner than probes would say when some still trickle through; reachable again, the paths are
   * back to what their probes say (a path that is down by its probes still earns UP by hold-down).
   */
  setLinkHealth(nowMs: number, linkId: number, reachable: boolean, detail: string): void {
    this.nowMs = nowMs;
    for (const peer of this.peersByName.values()) if (applyLinkHealth(nowMs, peer, linkId, reachable, detail, (at, k, f) => this.emit(at, k, f))) this.touch(peer);
    this.flush();
  }

  /**
   * Live class changes (config reload): SLA, strategy and outer DSCP from `policies` (all seven, in
   * CLASS_NAMES order), FEC from `fec`. Validates everything before changing anything. A class whose
   * SLA changed is judged afresh; one whose strategy changed has its flows re-steered now; one whose
   * FEC changed gets a new encoder (group ids continue). Returns what changed, e.g. ["voice: sla"].
   */
  setClassPolicies(nowMs: number, policies: readonly ClassPolicy[], fec: Partial<Record<ClassName, Partial<ClassFecPolicy>>> = {}): string[] {
    this.nowMs = nowMs;
    if (policies.length !== CLASS_NAMES.length) throw new RangeError(`policies: expected ${CLASS_NAMES.length} classes, got ${policies.length}`);
    const nextFec = mergeFec(fec);
    const changed: string[] = [];
    const old = this.classPolicies;
    this.classPolicies = policies.map((p) => ({ ...p, sla: { ...p.sla } }));
    for (let c = 0; c < CLASS_NAMES.length; c++) {
      const name = CLASS_NAMES[c]!;
      const was = old[c]!;
      const now = this.classPolicies[c]!;
      const slaChanged = JSON.stringify(was.sla) !== JSON.stringify(now.sla);
      const fecChanged = JSON.stringify(this.classFec[c]) !== JSON.stringify(nextFec[c]);
      if (slaChanged) changed.push(`${name}: sla`);
      if (was.outerDscp !== now.outerDscp) changed.push(`${name}: outerDscp`);
      if (was.strategy !== now.strategy) changed.push(`${name}: strategy`);
      if (fecChanged) changed.push(`${name}: fec`);
      for (const peer of this.peersByName.values()) {
        if (slaChanged) peer.steering.resetSla(c);
        if (was.strategy !== now.strategy) peer.steering.resteer(nowMs, (f) => f.classId === c, `${name} strategy now ${now.strategy}`, c);
        if (fecChanged) {
          const before = peer.fecTx[c];
          // +1: the old encoder's open group already went out under nextGroupId.
          const next = peer.makeFecTx(c, nextFec[c]!, before ? before.encoder.nextGroupId + 1 : undefined);
          if (next && before) next.inherit(before);
          peer.fecTx[c] = next;
          peer.fecTxList = peer.fecTx.filter((f) => f !== undefined);
        }
      }
    }
    this.classFec = nextFec;
    if (changed.length > 0) this.emit(nowMs, 'config', { text: `classes changed live: ${changed.join(', ')}` });
    this.flush();
    return changed;
  }

  /**
   * Live peer changes (reload, fleet registry): adds, removes and edits peers; peers whose key is
   * unchanged keep their session, flows and counters. Validates the whole set first (a BraidError
   * naming the peer and field), so a bad set changes nothing.
   */
  setPeers(nowMs: number, peers: readonly PeerConfig[]): { added: string[]; removed: string[]; changed: string[] } {
    this.nowMs = nowMs;
    checkPeerSet(peers, this.sessions !== undefined);
    const wanted = new Map(peers.map((p) => [p.name, p]));
    const added: string[] = [];
    const removed: string[] = [];
    const changed: string[] = [];
    for (const peer of [...this.peersByName.values()]) {
      const next = wanted.get(peer.name);
      if (next === undefined || !sameKey(next.publicKey, peer.config.publicKey)) {
        this.removePeer(nowMs, peer, next === undefined ? 'removed from the configuration' : 'public key changed');
        removed.push(peer.name);
      }
    }
    for (const pc of peers) {
      const peer = this.peersByName.get(pc.name);
      if (peer === undefined) {
        this.addPeer(nowMs, pc, peers.length, true);
        added.push(pc.name);
        continue;
      }
      if (JSON.stringify(publicFacts(pc)) === JSON.stringify(publicFacts(peer.config))) continue;
      changed.push(pc.name);
      peer.config = pc;
      this.router.removePeer(peer.slot);
      for (const prefix of pc.prefixes) this.router.insert(prefix, peer.slot);
      peer.addConfiguredPaths(nowMs);
      peer.retireUnwantedPaths(nowMs);
      peer.rearmPathTimers(nowMs);
      this.touch(peer);
    }
    this.events.namePeers = this.peersByName.size !== 1;
    this.flush();
    return { added, removed, changed };
  }

  private addPeer(nowMs: number, pc: PeerConfig, peerCount: number, announce: boolean): void {
    let slot = this.peerSlots.indexOf(undefined);
    if (slot < 0) slot = this.peerSlots.length;
    const peer = new Peer(this, slot, pc, nowMs);
    this.peerSlots[slot] = peer;
    this.peersByName.set(pc.name, peer);
    for (const prefix of pc.prefixes) this.router.insert(prefix, slot);
    // Spread the first probes: over 10 ms for one peer, the whole interval for many (no herd).
    const f = this.rng.nextFloat();
    peer.offsetFirstProbe(nowMs, peerCount > 1 ? f : (f * Math.min(this.probeIntervalMs, 10)) / this.probeIntervalMs);
    if (this.sessions && pc.publicKey) {
      this.sessions.addPeer(pc.name, pc.publicKey);
      // Handshake at once where we know an endpoint: the first packet of the site should not wait.
      if (peer.paths.some((p) => p.hasEndpoint)) this.sessions.connect(nowMs, pc.name);
      this.drainCrypto();
    }
    if (announce) this.emit(nowMs, 'peerAdded', { peer: pc.name });
    this.touch(peer);
  }

  private removePeer(nowMs: number, peer: Peer, reason: string): void {
    this.sessions?.removePeer(peer.name);
    this.router.removePeer(peer.slot);
    this.heap.remove(peer);
    this.peerSlots[peer.slot] = undefined;
    this.peersByName.delete(peer.name);
    this.emit(nowMs, 'peerRemoved', { peer: peer.name, reason });
  }

  // ---- outputs -----------------------------------------------------------------------------

  pollTransmit(): Transmit | undefined {
    return this.transmits.shift();
  }

  pollDelivery(): Uint8Array | undefined {
    return this.deliveries.shift();
  }

  pollTimeout(): number | undefined {
    let t = Math.min(this.timers[Timer.Crypto]!, this.timers[Timer.Shaper]!);
    const top = this.heap.peek();
    if (top !== undefined && top.heapDeadlineMs < t) t = top.heapDeadlineMs;
    return t === Infinity ? undefined : t;
  }

  pollEvent(): EdgeEvent | undefined {
    return this.events.poll();
  }

  snapshot(nowMs: number): EdgeSnapshot {
    return buildSnapshot(this, nowMs);
  }

  // ---- internals ---------------------------------------------------------------------------

  private touch(peer: Peer): void {
    this.dirty.push(peer);
  }

  /** After every input: the peers it touched get their place in the timer heap back. */
  private flush(): void {
    const dirty = this.dirty;
    for (let i = 0; i < dirty.length; i++) {
      const peer = dirty[i]!;
      if (this.peerSlots[peer.slot] === peer) this.heap.update(peer, peer.nextDeadlineMs());
    }
    dirty.length = 0;
  }

  /** A shaped link releases what its bucket allows; queued frames are built as they leave. */
  private releaseLink(nowMs: number, link: LinkRuntime): void {
    const next = releaseLink(nowMs, link, this.transmits, MAX_TRANSMIT_QUEUE, (item) => this.buildQueued(nowMs, item), () => this.drop('noSession'));
    if (next < this.timers[Timer.Shaper]!) this.timers[Timer.Shaper] = next;
  }

  private buildQueued(nowMs: number, item: PendingTx): Uint8Array | undefined {
    if (item.kind === TxKind.Sealed) return item.bytes;
    const peer = item.owner as Peer | null;
    // The peer may have been removed (reload) while its frame waited: then it is lost, counted.
    if (peer === null || this.peerSlots[peer.slot] !== peer) return undefined;
    const bytes = peer.tx.buildQueued(nowMs, item);
    const p = peer.paths[item.pathId];
    if (bytes !== undefined && p !== undefined) notePathTx(p, bytes.length, nowMs);
    return bytes;
  }

  private releaseShaped(nowMs: number): void {
    this.timers[Timer.Shaper] = Infinity;
    for (const l of this.links) if (l.sched !== undefined) this.releaseLink(nowMs, l);
  }
}
