/**
 * Per-peer sessions and handshakes, WireGuard's model (whitepaper section 6, wireguard-go
 * device/timers.go and keypair handling), as a sans-I/O state machine.
 *
 * Call order (state machine surface, same shape as core/Edge):
 *   inputs   addPeer / removePeer                        configuration
 *            seal(now, peerId, plaintext)                 outbound data; may start a handshake
 *            open(now, receiverIndex, counter, sealed)    inbound data
 *            handleHandshake(now, source, address, bytes) initiation / response / cookie reply
 *            handleTimeout(now)                           when now >= nextDeadlineMs()
 *   outputs  pollTransmit() -> CryptoTransmit | undefined handshake bytes to send, keepalive requests
 *            pollEvent()    -> CryptoEvent | undefined    session changes, for logs and the dashboard
 *            nextDeadlineMs() -> number | undefined       earliest armed timer (absolute ms)
 *            snapshot()                                   per-peer state and drop counters
 *
 * Keypair slots per peer (so no in-flight packet is lost across a rekey):
 *   current   used to send; also accepted on receive
 *   previous  the session before current, still accepted on receive until it expires, so packets
 *             sent on it just before the rekey (and still in flight on a slow path) are delivered
 *   next      responder only: keys from a handshake we answered but the initiator has not used yet.
 *             We must not send on it (the initiator may never have got our response); the first
 *             authenticated packet on it proves it works and rotates it into current.
 * The initiator installs its new session straight into current (it has the response in hand) and
 * sends a keepalive at once so the responder can confirm `next` without waiting for data.
 *
 * Timers are data: absolute deadlines per peer (PeerState in peer-session.ts says which and when).
 *
 * Handshake floods (see cookie.ts): mac1 first (one MAC, no state), then mac2 with a cookie reply
 * and a per-source token bucket from a source past its cookie-free allowance, and from everyone
 * once the global budget is spent (handshake-load.ts); initiations are also refused from a peer more often than every
 * MIN_INITIATION_INTERVAL_MS and when their TAI64N timestamp is not newer than the last one (a copy of
 * the last one gets our timed resends, wherever it came from: noteDuplicateSource in peer-session.ts).
 *
 * Data packets: the AAD is (wire version, receiver index, counter); an empty plaintext is a keepalive
 * and must not be decoded as a frame. Index 0 is never allocated (the envelope: receiver 0 is "no session").
 *
 * Layout: Keypair, PeerState and the slot operations (drop, retire, zero) live in peer-session.ts; the result,
 * event, snapshot and option types in session-types.ts (re-exported here). This module is the SessionManager:
 * configuration, seal/open, handshake messages, timers and outputs.
 */
import { BraidError, ErrorCode } from '../errors.ts';
import type { KeyedBlake2s } from './blake2s.ts';
import { WIRE_VERSION } from '../constants.ts';
import { consumeCookieReply, CookieChecker, mac1Key, rateLimitKey, TokenBucketLimiter, verifyMac1 } from './cookie.ts';
import { CookieDemand, HandshakeLoad } from './handshake-load.ts';
import {
  AWAIT_CONFIRMATION_MS,
  COOKIE_REFRESH_TIME_MS,
  KEEPALIVE_TIMEOUT_MS,
  MAX_PEERS,
  MAX_QUEUED_OUTPUTS,
  REKEY_ATTEMPT_TIME_MS,
  MIN_INITIATION_INTERVAL_MS,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME_MS,
  REKEY_TIMEOUT_JITTER_MAX_MS,
  REKEY_TIMEOUT_MS,
  HANDSHAKE_BURST_PER_PEER,
  UNDER_LOAD_INITIATIONS_PER_SECOND,
} from './constants.ts';
import { encodeKey, KEY_LENGTH, type X25519KeyPair } from './keys.ts';
import {
  BRAID_PROLOGUE,
  compareTimestamps,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  peekMessageType,
  readHeaderIndex,
  type CipherPolicy,
} from './noise.ts';
import { deadlineOf, dueResponse, Keypair, peerSessionSnapshot, PeerState, noteDuplicateSource, markStalled, retireKeypair, retryIntervalMs, zeroPeerKeys, zeroRecord, type IndexEntry } from './peer-session.ts';
import {
  DATA_DROP_REASONS,
  DEFAULT_CIPHER_POLICY,
  HANDSHAKE_DROP_REASONS,
  type CryptoEvent,
  type CryptoEventKind,
  type CryptoTransmit,
  type DataDropReason,
  type OpenResult,
  type PeerSessionSnapshot,
  type SealAtResult,
  type SealResult,
  type SessionManagerOptions,
  type SessionManagerSnapshot,
} from './session-types.ts';
import { DATA_AAD_LENGTH, nodeCryptoAeadFactory, isValidCounter, isValidSendCounter, writeDataAad, type AeadFactory } from './transport.ts';
import type { Rng } from './types.ts';

export { Keypair } from './peer-session.ts';
export * from './session-types.ts';

export class SessionManager<Source = string> {
  private readonly local: X25519KeyPair;
  private readonly rng: Rng;
  private readonly wallClockEpochMs: number;
  private readonly prologue: Uint8Array;
  private readonly ciphers: CipherPolicy;
  private readonly wireVersion: number;
  private readonly aeadFactory: AeadFactory;
  private readonly openInPlace: boolean;
  private readonly localMac1Key: KeyedBlake2s;
  private readonly cookieChecker: CookieChecker;
  private readonly limiter = new TokenBucketLimiter();
  private readonly peers = new Map<string, PeerState>();
  private readonly peersByStatic = new Map<string, PeerState>();
  private readonly indices = new Map<number, IndexEntry>();
  private readonly transmits: CryptoTransmit<Source>[] = [];
  private readonly events: CryptoEvent[] = [];
  private readonly aad = new Uint8Array(DATA_AAD_LENGTH);
  private readonly handshakeDrops = zeroRecord(HANDSHAKE_DROP_REASONS);
  private readonly dataDrops = zeroRecord(DATA_DROP_REASONS);
  private outputsDropped = 0;
  /** Who must show a cookie (handshake-load.ts): per source, within a global budget. */
  private readonly load: HandshakeLoad;

  constructor(options: SessionManagerOptions) {
    if (options.local.privateKey.length !== KEY_LENGTH || options.local.publicKey.length !== KEY_LENGTH) {
      throw new BraidError(ErrorCode.KEY_INVALID, 'local static key pair must be two 32-byte X25519 keys');
    }
    this.local = options.local;
    this.rng = options.rng;
    this.wallClockEpochMs = options.wallClockEpochMs;
    this.prologue = options.prologue ?? BRAID_PROLOGUE;
    this.ciphers = options.ciphers ?? DEFAULT_CIPHER_POLICY;
    this.wireVersion = options.wireVersion ?? WIRE_VERSION;
    this.load = new HandshakeLoad(options.underLoadInitiationsPerSecond ?? UNDER_LOAD_INITIATIONS_PER_SECOND, options.handshakeBurstPerPeer ?? HANDSHAKE_BURST_PER_PEER);
    this.aeadFactory = options.aead ?? nodeCryptoAeadFactory;
    this.openInPlace = options.openInPlace === true;
    this.localMac1Key = mac1Key(options.local.publicKey);
    this.cookieChecker = new CookieChecker(options.local.publicKey, options.rng);
  }

  // ---- configuration ----

  addPeer(peerId: string, remoteStatic: Uint8Array): void {
    if (remoteStatic.length !== KEY_LENGTH) {
      throw new BraidError(ErrorCode.KEY_INVALID, `peer ${peerId}: public key must be 32 bytes`, { field: 'peers' });
    }
    const staticKey = encodeKey(remoteStatic);
    if (this.peers.has(peerId)) throw new BraidError(ErrorCode.CONFIG_INVALID, `peer ${peerId} is configured twice`);
    if (this.peersByStatic.has(staticKey)) {
      throw new BraidError(ErrorCode.CONFIG_INVALID, `peer ${peerId} has the same public key as another peer`);
    }
    if (this.peers.size >= MAX_PEERS) throw new BraidError(ErrorCode.CONFIG_INVALID, `more than ${MAX_PEERS} peers`);
    const peer = new PeerState(peerId, new Uint8Array(remoteStatic));
    this.peers.set(peerId, peer);
    this.peersByStatic.set(staticKey, peer);
  }

  removePeer(peerId: string): void {
    const peer = this.peers.get(peerId);
    if (peer === undefined) return;
    zeroPeerKeys(this.indices, peer);
    this.peers.delete(peerId);
    this.peersByStatic.delete(encodeKey(peer.remoteStatic));
  }

  // ---- data ----

  /**
   * Seals `plaintext` for `peerId` on its current session. Without a usable session it starts a handshake and
   * returns noSession: the caller drops or stages the packet (and resends after the sessionEstablished event).
   */
  seal(nowMs: number, peerId: string, plaintext: Uint8Array, out?: Uint8Array): SealResult {
    const peer = this.peers.get(peerId);
    const keypair = peer === undefined ? undefined : this.sendKeypair(peer, nowMs);
    if (peer === undefined || keypair === undefined) return { ok: false, reason: peer === undefined ? 'unknownPeer' : 'noSession' };
    const counter = keypair.sendCounter++;
    // `out` may overlap `plaintext` at the same offset (sealing in place): both AEAD backends allow it.
    const ciphertext = keypair.sender.seal(counter, plaintext, writeDataAad(this.aad, this.wireVersion, keypair.remoteIndex, counter), out);
    this.afterSeal(peer, keypair, nowMs, plaintext.length);
    return { ok: true, receiverIndex: keypair.remoteIndex, counter, ciphertext };
  }

  /** seal() in place on buf[offset, offset + length), the tag after it: no views per packet (the data path). */
  sealAt(nowMs: number, peerId: string, buf: Uint8Array, offset: number, length: number): SealAtResult {
    const peer = this.peers.get(peerId);
    const keypair = peer === undefined ? undefined : this.sendKeypair(peer, nowMs);
    if (peer === undefined || keypair === undefined) return { ok: false, reason: peer === undefined ? 'unknownPeer' : 'noSession' };
    const counter = keypair.sendCounter++;
    keypair.sender.sealAt(counter, buf, offset, length, writeDataAad(this.aad, this.wireVersion, keypair.remoteIndex, counter));
    this.afterSeal(peer, keypair, nowMs, length);
    return { ok: true, receiverIndex: keypair.remoteIndex, counter };
  }

  /** The keypair to seal with now, or undefined (a handshake started or under way). */
  private sendKeypair(peer: PeerState, nowMs: number): Keypair | undefined {
    const keypair = peer.current;
    if (keypair !== null && this.usableForSend(keypair, nowMs)) return keypair;
    // A session we just answered is confirmed by the initiator's first packet within a round trip:
    // no crossing handshake for that (one after AWAIT_CONFIRMATION_MS: our response may be lost).
    if (peer.next === null || nowMs - peer.next.createdMs >= AWAIT_CONFIRMATION_MS) this.initiate(peer, nowMs, false);
    return undefined;
  }

  /** Keepalive and rekey bookkeeping after a packet of `length` bytes was sealed. */
  private afterSeal(peer: PeerState, keypair: Keypair, nowMs: number, length: number): void {
    peer.keepaliveAtMs = Infinity; // any authenticated packet sent answers the peer
    if (length > 0 && peer.newHandshakeAtMs === Infinity) {
      peer.newHandshakeAtMs = nowMs + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS + this.jitterMs();
    }
    // Keep the key fresh: only the session's initiator rekeys on age, so both sides do not race.
    if (keypair.sendCounter >= REKEY_AFTER_MESSAGES || (keypair.isInitiator && nowMs - keypair.createdMs >= REKEY_AFTER_TIME_MS)) {
      this.initiate(peer, nowMs, false);
    }
  }

  /** Authenticates and decrypts a data packet. Never throws; every failure is a counted drop. */
  open(nowMs: number, receiverIndex: number, counter: number, ciphertext: Uint8Array): OpenResult {
    const entry = this.indices.get(receiverIndex);
    const keypair = entry?.keypair;
    if (entry === undefined || keypair === null || keypair === undefined) return this.dropData('unknownIndex');
    if (nowMs - keypair.createdMs >= REJECT_AFTER_TIME_MS) return this.dropData('expiredSession');
    if (!isValidCounter(counter)) return this.dropData('badCounter');
    // Replay check before decrypting so replays cost no AEAD work; record only after authentication.
    if (!keypair.replay.check(counter)) return this.dropData('replayed');
    // openInPlace: no allocation per packet (a fresh view was ~4% of a receiving edge's CPU: BENCHMARKS.md, session 10).
    const aad = writeDataAad(this.aad, this.wireVersion, receiverIndex, counter);
    const plaintext = keypair.receiver.open(counter, ciphertext, aad, this.openInPlace ? ciphertext : undefined);
    if (plaintext === null) return this.dropData('authFailed');
    if (!keypair.replay.update(counter)) return this.dropData('replayed');

    const peer = entry.peer;
    if (peer.next === keypair) this.confirmNext(peer, nowMs);
    peer.newHandshakeAtMs = Infinity; // the peer is alive
    if (plaintext.length > 0) {
      if (peer.keepaliveAtMs === Infinity) peer.keepaliveAtMs = nowMs + KEEPALIVE_TIMEOUT_MS;
      else peer.needAnotherKeepalive = true;
    }
    const current = peer.current;
    if (
      current !== null &&
      current.isInitiator &&
      !peer.sentLastMinuteHandshake &&
      nowMs - current.createdMs >= REJECT_AFTER_TIME_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS
    ) {
      peer.sentLastMinuteHandshake = true;
      this.initiate(peer, nowMs, false);
    }
    return { ok: true, peerId: peer.id, plaintext };
  }

  // ---- handshakes ----

  /**
   * Consumes a handshake message from `source`. `sourceAddress` is the source's address as text
   * (e.g. "203.0.113.7:51900", "[2001:db8::1]:51900"): cookies are bound to all of it (WireGuard: IP and
   * port), the per-source rate limit under load to its IP (/64 for IPv6, see rateLimitKey). Replies
   * are queued for `source`. Returns the peer whose initiation was authenticated and answered (its
   * source is where that peer can be reached: WireGuard roams on it too), else undefined.
   */
  handleHandshake(nowMs: number, source: Source, sourceAddress: string, message: Uint8Array): string | undefined {
    switch (peekMessageType(message)) {
      case MESSAGE_INITIATION:
        return this.handleInitiation(nowMs, source, sourceAddress, message);
      case MESSAGE_RESPONSE:
        this.handleResponse(nowMs, message);
        return undefined;
      case MESSAGE_COOKIE_REPLY:
        this.handleCookieReply(nowMs, message);
        return undefined;
      default:
        this.handshakeDrops.malformed++;
        return undefined;
    }
  }

  /** Starts a handshake with `peerId` now (e.g. at startup); `stalled`: its current session carries nothing (markStalled). */
  connect(nowMs: number, peerId: string, stalled = false): void {
    const peer = this.peers.get(peerId);
    if (peer !== undefined) this.initiate(markStalled(peer, stalled), nowMs, false);
  }

  private handleInitiation(nowMs: number, source: Source, sourceAddress: string, message: Uint8Array): string | undefined {
    // Cheapest check first: garbage costs one MAC and leaves no state.
    if (!verifyMac1(message, this.localMac1Key)) {
      this.handshakeDrops.badMac1++;
      return;
    }
    const sourceKey = rateLimitKey(sourceAddress);
    const demand = this.load.demand(nowMs, sourceKey, this.peers.size);
    if (demand === CookieDemand.GlobalStarts) this.pushEvent(nowMs, 'underLoad', undefined, `handshake budget spent (${this.load.ratePerSecond}/s, burst ${this.load.ratePerSecond} + ${this.load.burstPerPeer} per peer): requiring cookies`);
    if (demand !== CookieDemand.None) {
      if (!this.cookieChecker.verifyMac2(nowMs, message, sourceAddress)) {
        this.handshakeDrops.cookieRequired++;
        this.pushTransmit({
          kind: 'reply',
          to: source,
          bytes: this.cookieChecker.createReply(nowMs, message, sourceAddress, readHeaderIndex(message)),
        });
        return;
      }
      if (!this.limiter.allow(nowMs, sourceKey)) {
        this.handshakeDrops.rateLimited++;
        return;
      }
    } else {
      this.limiter.charge(nowMs, sourceKey);
    }
    const responderIndex = this.allocateIndex();
    let authorizedPeer: PeerState | null = null, duplicateFor: PeerState | null = null; // set inside authorize
    const result = consumeInitiation({
      local: this.local,
      prologue: this.prologue,
      message,
      responderIndex,
      ciphers: this.ciphers,
      rng: this.rng,
      localMac1Key: this.localMac1Key,
      authorize: (initiation) => {
        const peer = this.peersByStatic.get(encodeKey(initiation.remoteStatic));
        if (peer === undefined) return 'unknownPeer';
        const order = peer.lastTimestamp === null ? 1 : compareTimestamps(initiation.timestamp, peer.lastTimestamp);
        if (order === 0) duplicateFor = peer; // the initiation we answered last, again: noteDuplicateSource
        if (order <= 0) return 'replayedTimestamp';
        if (nowMs - peer.lastInitiationConsumedMs < MIN_INITIATION_INTERVAL_MS) return 'initiationFlood';
        authorizedPeer = peer;
        return null;
      },
    });
    const peer = authorizedPeer as PeerState | null; // assigned inside the callback
    if (!result.ok || peer === null) {
      this.handshakeDrops[result.ok ? 'unknownPeer' : result.reason]++;
      noteDuplicateSource(duplicateFor as PeerState | null, source, nowMs);
      return;
    }
    peer.lastTimestamp = result.initiation.timestamp;
    peer.lastInitiationConsumedMs = nowMs;
    const keypair = new Keypair(result.keys, nowMs, this.aeadFactory);
    // Responder: the new session waits in `next` until the initiator uses it. An older unconfirmed
    // `next` is superseded, and `previous` is dropped as WireGuard does: current stays usable.
    retireKeypair(this.indices, peer, peer.next);
    retireKeypair(this.indices, peer, peer.previous);
    peer.previous = null;
    peer.next = keypair;
    this.indices.set(keypair.localIndex, { peer, keypair });
    peer.zeroKeysAtMs = nowMs + 3 * REJECT_AFTER_TIME_MS;
    peer.keepaliveAtMs = Infinity;
    this.pushTransmit({ kind: 'reply', to: source, bytes: result.response });
    peer.response = { bytes: result.response, to: source, forKeypair: keypair, alsoTo: [], resends: 0, sentAtMs: nowMs };
    peer.responseResendAtMs = nowMs + AWAIT_CONFIRMATION_MS;
    this.pushEvent(nowMs, 'sessionEstablished', peer.id, `responded to handshake from ${peer.id} (${keypair.cipherText}), awaiting confirmation`);
    return peer.id;
  }

  private handleResponse(nowMs: number, message: Uint8Array): void {
    const entry = this.indices.get(readHeaderIndex(message));
    const peer = entry?.peer;
    const pending = peer?.pending;
    if (entry === undefined || entry.keypair !== null || peer === undefined || pending === null || pending === undefined) {
      this.handshakeDrops.unknownIndex++;
      return;
    }
    const result = consumeResponse(pending, message);
    if (!result.ok) {
      this.handshakeDrops[result.reason]++;
      return;
    }
    const keypair = new Keypair(result.keys, nowMs, this.aeadFactory);
    // Initiator: the new session is current at once. The old current (or an unconfirmed next,
    // which the peer may already be using) becomes previous so in-flight packets still open.
    retireKeypair(this.indices, peer, peer.previous);
    if (peer.next !== null) {
      retireKeypair(this.indices, peer, peer.current);
      peer.previous = peer.next;
      peer.next = null;
    } else {
      peer.previous = peer.current;
    }
    peer.current = keypair;
    peer.pending = null;
    this.indices.set(keypair.localIndex, { peer, keypair });
    peer.retransmitAtMs = Infinity;
    peer.handshakeAttempts = 0;
    peer.sentLastMinuteHandshake = false;
    peer.newHandshakeAtMs = Infinity;
    peer.zeroKeysAtMs = nowMs + 3 * REJECT_AFTER_TIME_MS;
    // Confirm the session to the responder now rather than with the next data packet.
    this.pushTransmit({ kind: 'keepalive', peerId: peer.id });
    this.pushEvent(nowMs, 'sessionEstablished', peer.id, `session with ${peer.id} established (${keypair.cipherText}; initiator)`);
  }

  private handleCookieReply(nowMs: number, message: Uint8Array): void {
    const entry = this.indices.get(readHeaderIndex(message));
    const pending = entry?.peer.pending;
    if (entry === undefined || entry.keypair !== null || pending === null || pending === undefined) {
      this.handshakeDrops.unknownIndex++;
      return;
    }
    const cookie = consumeCookieReply(message, entry.peer.remoteStatic, pending.mac1);
    if (cookie === null) {
      this.handshakeDrops.badCookieReply++;
      return;
    }
    entry.peer.cookie = cookie;
    entry.peer.cookieReceivedMs = nowMs;
    // Resend at once with the cookie, once per pending initiation. WireGuard waits for the 5 s
    // retransmit, so under a flood the real peer's rekey took 5.2 s (World, 50,000 forged
    // initiations) against 50 ms with this retry; once per initiation bounds what a forged
    // cookie reply can make us send.
    const peer = entry.peer;
    if (peer.cookieRetryFor !== pending.senderIndex) {
      peer.cookieRetryFor = pending.senderIndex;
      peer.lastInitiationSentMs = Number.NEGATIVE_INFINITY;
      peer.retransmitAtMs = nowMs;
    }
  }

  // ---- timers ----

  handleTimeout(nowMs: number): void {
    for (const peer of this.peers.values()) {
      const resend = dueResponse(peer, nowMs);
      if (resend !== undefined) for (const to of [resend.to, ...resend.alsoTo]) this.pushTransmit({ kind: 'reply', to: to as Source, bytes: resend.bytes });
      if (peer.retransmitAtMs <= nowMs) {
        peer.retransmitAtMs = Infinity;
        if (nowMs - peer.roundStartedMs >= REKEY_ATTEMPT_TIME_MS) {
          this.giveUp(peer, nowMs);
        } else {
          peer.handshakeAttempts++;
          this.initiate(peer, nowMs, true);
        }
      }
      if (peer.keepaliveAtMs <= nowMs) {
        peer.keepaliveAtMs = Infinity;
        this.pushTransmit({ kind: 'keepalive', peerId: peer.id });
        if (peer.needAnotherKeepalive) {
          peer.needAnotherKeepalive = false;
          peer.keepaliveAtMs = nowMs + KEEPALIVE_TIMEOUT_MS;
        }
      }
      if (peer.newHandshakeAtMs <= nowMs) {
        peer.newHandshakeAtMs = Infinity;
        // We sent data and heard nothing back: the peer may have lost our session (restart).
        this.initiate(peer, nowMs, false);
      }
      if (peer.zeroKeysAtMs <= nowMs) {
        peer.zeroKeysAtMs = Infinity;
        zeroPeerKeys(this.indices, peer);
        this.pushEvent(nowMs, 'keysZeroed', peer.id, `no session with ${peer.id} for ${(3 * REJECT_AFTER_TIME_MS) / 1000} s: keys erased`);
      }
    }
  }

  /** Earliest armed timer across peers (O(peers)), or of one peer (O(1)); undefined when none is armed. */
  nextDeadlineMs(peerId?: string): number | undefined {
    // One peer per opened datagram: no array and iterator for it (9% of a busy fleet's allocations).
    let earliest = peerId === undefined ? Infinity : deadlineOf(this.peers.get(peerId));
    if (peerId === undefined) for (const peer of this.peers.values()) earliest = Math.min(earliest, deadlineOf(peer));
    return earliest === Infinity ? undefined : earliest;
  }


  /** When the session a receiver index names was made (undefined: no such session). */
  sessionCreatedMs(receiverIndex: number): number | undefined {
    return this.indices.get(receiverIndex)?.keypair?.createdMs;
  }

  /** Whether `peerId` has a session to send on now (cheap: one peer, no snapshot of all). */
  hasSession(nowMs: number, peerId: string): boolean {
    const current = this.peers.get(peerId)?.current;
    return current !== null && current !== undefined && nowMs - current.createdMs < REJECT_AFTER_TIME_MS;
  }

  /** One peer's session state (an edge with a thousand peers asks for one at a time). */
  peerSnapshot(nowMs: number, peerId: string): PeerSessionSnapshot | undefined {
    const peer = this.peers.get(peerId);
    return peer === undefined ? undefined : peerSessionSnapshot(peer, nowMs);
  }

  /** Handshake drop counters and load state, without walking the peers. */
  counters(nowMs: number): Pick<SessionManagerSnapshot, 'underLoad' | 'handshakeDrops' | 'dataDrops' | 'outputsDropped'> {
    return { underLoad: nowMs < this.load.underLoadUntilMs, handshakeDrops: { ...this.handshakeDrops }, dataDrops: { ...this.dataDrops }, outputsDropped: this.outputsDropped };
  }

  // ---- outputs ----

  pollTransmit(): CryptoTransmit<Source> | undefined {
    return this.transmits.shift();
  }

  pollEvent(): CryptoEvent | undefined {
    return this.events.shift();
  }

  snapshot(nowMs: number): SessionManagerSnapshot {
    const peers: PeerSessionSnapshot[] = [];
    for (const peer of this.peers.values()) peers.push(peerSessionSnapshot(peer, nowMs));
    return {
      peers,
      underLoad: nowMs < this.load.underLoadUntilMs,
      handshakeDrops: { ...this.handshakeDrops },
      dataDrops: { ...this.dataDrops },
      outputsDropped: this.outputsDropped,
    };
  }

  // ---- internals ----

  private usableForSend(keypair: Keypair, nowMs: number): boolean {
    return nowMs - keypair.createdMs < REJECT_AFTER_TIME_MS && isValidSendCounter(keypair.sendCounter);
  }

  private initiate(peer: PeerState, nowMs: number, isRetry: boolean): void {
    if (!isRetry) [peer.handshakeAttempts, peer.roundStartedMs] = [0, nowMs];
    // At most one initiation per retry interval (REKEY_TIMEOUT, 2 s without a session), however much traffic asks.
    if (nowMs - peer.lastInitiationSentMs < retryIntervalMs(peer, nowMs)) return;
    if (peer.pending !== null) this.indices.delete(peer.pending.senderIndex);
    peer.pending = null;
    const senderIndex = this.allocateIndex();
    const cookieFresh = peer.cookie !== null && nowMs - peer.cookieReceivedMs < COOKIE_REFRESH_TIME_MS;
    const created = createInitiation({
      local: this.local,
      remoteStatic: peer.remoteStatic,
      prologue: this.prologue,
      senderIndex,
      nowMs,
      wallClockEpochMs: this.wallClockEpochMs,
      ciphers: this.ciphers,
      cookie: cookieFresh ? peer.cookie : null,
      rng: this.rng,
    });
    peer.lastInitiationSentMs = nowMs;
    if (created === null) {
      // Only a low-order configured public key gets here; config validation should have caught it.
      this.giveUp(peer, nowMs);
      return;
    }
    peer.pending = created.pending;
    this.indices.set(senderIndex, { peer, keypair: null });
    peer.keepaliveAtMs = Infinity;
    peer.retransmitAtMs = nowMs + retryIntervalMs(peer, nowMs) + this.jitterMs();
    this.pushTransmit({ kind: 'initiation', peerId: peer.id, bytes: created.message });
    this.pushEvent(
      nowMs,
      'handshakeStarted',
      peer.id,
      isRetry ? `handshake with ${peer.id}: no response, retry ${peer.handshakeAttempts}` : `handshake with ${peer.id} started`,
    );
  }

  private giveUp(peer: PeerState, nowMs: number): void {
    if (peer.pending !== null) this.indices.delete(peer.pending.senderIndex);
    peer.pending = null;
    peer.retransmitAtMs = Infinity;
    peer.keepaliveAtMs = Infinity;
    if (peer.zeroKeysAtMs === Infinity) peer.zeroKeysAtMs = nowMs + 3 * REJECT_AFTER_TIME_MS;
    this.pushEvent(nowMs, 'handshakeFailed', peer.id, `handshake with ${peer.id} failed after ${peer.handshakeAttempts + 1} attempts`);
  }

  private confirmNext(peer: PeerState, nowMs: number): void {
    retireKeypair(this.indices, peer, peer.previous);
    peer.previous = peer.current;
    peer.current = peer.next;
    peer.next = null;
    peer.responseResendAtMs = Infinity;
    this.pushEvent(nowMs, 'sessionConfirmed', peer.id, `session with ${peer.id} confirmed (${peer.current?.cipherText}; responder)`);
  }

  private allocateIndex(): number {
    // Random indices (as WireGuard) so they reveal nothing about how many sessions we hold.
    for (let attempt = 0; attempt < 64; attempt++) {
      const index = this.rng.nextU32() >>> 0;
      if (index !== 0 && !this.indices.has(index)) return index;
    }
    throw new Error('assertion: could not find a free session index in 64 draws');
  }

  private jitterMs(): number {
    return this.rng.nextU32() % (REKEY_TIMEOUT_JITTER_MAX_MS + 1);
  }

  private dropData(reason: DataDropReason): OpenResult {
    this.dataDrops[reason]++;
    return { ok: false, reason };
  }

  private pushTransmit(transmit: CryptoTransmit<Source>): void {
    if (this.transmits.length >= MAX_QUEUED_OUTPUTS) {
      this.transmits.shift();
      this.outputsDropped++;
    }
    this.transmits.push(transmit);
  }

  private pushEvent(atMs: number, kind: CryptoEventKind, peerId: string | undefined, message: string): void {
    if (this.events.length >= MAX_QUEUED_OUTPUTS) {
      this.events.shift();
      this.outputsDropped++;
    }
    this.events.push(peerId === undefined ? { atMs, kind, message } : { atMs, kind, peerId, message });
  }
}
