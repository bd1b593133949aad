/**
 * Per-peer session state for SessionManager: the Keypair (one established session), PeerState
 * (the current/previous/next/retired slots, pending initiation, timers as absolute deadlines,
 * flood and cookie state) and the slot operations that must keep the receiver-index table in step.
 *
 * Contract: every Keypair reachable from a PeerState slot is in `indices` under its localIndex, and
 * a pending initiation's senderIndex maps to { peer, keypair: null }; the functions here keep that
 * true when they drop, retire or zero keys. A dropped Keypair's AEADs are disposed at once. No
 * timers, no clock: deadlines are numbers the manager compares with its `nowMs`.
 */
import { AWAIT_CONFIRMATION_MS, MAX_RESPONSE_RESENDS, NO_SESSION_RETRY_MS, REJECT_AFTER_TIME_MS, REKEY_TIMEOUT_MS } from './constants.ts';
import type { PendingInitiation, TransportKeys } from './noise.ts';
import { ReplayWindow } from './replay.ts';
import { isValidSendCounter, nodeCryptoAeadFactory, type Aead, type AeadFactory } from './transport.ts';
import type { PeerSessionSnapshot } from './session-types.ts';
import type { DataCipher } from './types.ts';

/** Sources of copies of the answered initiation that also get the timed resends (noteDuplicateSource). */
export const MAX_DUPLICATE_SOURCES = 3;

/** The response to resend now (PeerState.response), to `to` and `alsoTo`, if one is due; rearms the timer. */
export function dueResponse(peer: PeerState, nowMs: number): { to: unknown; alsoTo: unknown[]; bytes: Uint8Array } | undefined {
  if (peer.responseResendAtMs > nowMs) return undefined;
  const r = peer.response;
  peer.responseResendAtMs = Infinity;
  if (r === null || peer.next !== r.forKeypair || r.resends >= MAX_RESPONSE_RESENDS) return undefined;
  r.resends++;
  peer.responseResendAtMs = nowMs + AWAIT_CONFIRMATION_MS;
  return r;
}

/**
 * A copy of the initiation we answered last (the same timestamp) came in again, maybe by another
 * link or address: its source gets our timed resends too (dueResponse), the same bytes, no new
 * state. An attacker on one link's path who raced a copy of a spoke's initiation to us from
 * elsewhere made us answer only there; the real initiation, a moment later, read as a replay, and
 * the spoke waited REKEY_TIMEOUT for its retry (VOPR seed 94000463: a spoke cut off 4 s past the
 * heal). Now it has the response after AWAIT_CONFIRMATION_MS. Nothing is sent at once: the copies
 * a multipath initiator sends on every link get no extra answers once it confirms, within an RTT.
 * Only while the initiator may still wait (REKEY_TIMEOUT_MS), MAX_DUPLICATE_SOURCES sources.
 */
export function noteDuplicateSource(peer: PeerState | null, source: unknown, nowMs: number): void {
  const r = peer?.response;
  if (peer == null || r == null || peer.next !== r.forKeypair || nowMs - r.sentAtMs > REKEY_TIMEOUT_MS || r.alsoTo.length >= MAX_DUPLICATE_SOURCES) return;
  r.alsoTo.push(source);
}

/**
 * How long after an initiation the next may go: REKEY_TIMEOUT while the current session can still
 * send (a rekey: traffic flows meanwhile), NO_SESSION_RETRY_MS while none can (constants.ts) or the
 * caller said the current one carries nothing (markStalled).
 */
export function retryIntervalMs(peer: PeerState, nowMs: number): number {
  const c = peer.current;
  if (peer.stalledSession !== c) peer.stalledSession = null; // replaced: the stall is over (and its keys not held)
  const works = c !== null && c !== peer.stalledSession && nowMs - c.createdMs < REJECT_AFTER_TIME_MS && isValidSendCounter(c.sendCounter);
  return works ? REKEY_TIMEOUT_MS : NO_SESSION_RETRY_MS;
}

/**
 * `stalled`: the caller knows the current session carries nothing though it has not expired (every
 * path to the peer is DOWN: the peer restarted, or the network is out; peer-timers.ts
 * handshakeIfAllDead), so its handshakes retry as without one until a new session replaces it.
 * Also a session made while the paths earn their hold-down: the caller asks again each probe
 * interval, so such a peer handshakes every 2 s until a path is UP (5 s before). A version that
 * spared sessions younger than REKEY_TIMEOUT failed VOPR long seed 91000240: spoke c's paths to
 * the hub were still DOWN at the end of the run, where with this one they came UP 0.9 s after the
 * session (why, not traced: the seed's realizations differ from the first handshake on).
 */
export function markStalled(peer: PeerState, stalled: boolean): PeerState {
  if (stalled && peer.current !== null) peer.stalledSession = peer.current;
  return peer;
}

/** A peer's earliest armed timer (Infinity: none, or no such peer). */
export function deadlineOf(peer: PeerState | undefined): number {
  return peer === undefined ? Infinity : Math.min(peer.responseResendAtMs, peer.retransmitAtMs, peer.keepaliveAtMs, peer.newHandshakeAtMs, peer.zeroKeysAtMs);
}

/** Counters per reason, all at zero. */
export function zeroRecord<K extends string>(keys: readonly K[]): Record<K, number> {
  const record = {} as Record<K, number>;
  for (const key of keys) record[key] = 0;
  return record;
}

/** Rotated-out sessions kept per peer for receiving in-flight packets. */
const RETIRED_KEYPAIRS = 3;

/** One established session: keys for both directions, replay window, send counter. */
export class Keypair {
  readonly localIndex: number;
  readonly remoteIndex: number;
  readonly cipher: DataCipher;
  /** The cipher and why, for session events: "aes-256-gcm; auto: both ends have AES instructions". */
  readonly cipherText: string;
  readonly isInitiator: boolean;
  readonly createdMs: number;
  readonly sender: Aead;
  readonly receiver: Aead;
  readonly replay = new ReplayWindow();
  sendCounter = 0;

  /** `aead` builds the two directions' AEADs (default: node:crypto). */
  constructor(keys: TransportKeys, createdMs: number, aead: AeadFactory = nodeCryptoAeadFactory) {
    this.localIndex = keys.localIndex;
    this.remoteIndex = keys.remoteIndex;
    this.cipher = keys.cipher;
    this.cipherText = keys.cipherWhy === undefined ? keys.cipher : `${keys.cipher}; ${keys.cipherWhy}`;
    this.isInitiator = keys.isInitiator;
    this.createdMs = createdMs;
    this.sender = aead(keys.sendKey, keys.cipher);
    this.receiver = aead(keys.receiveKey, keys.cipher);
    // The AEAD objects hold their own copies; wipe the raw bytes we were handed (best effort: JS
    // gives no guarantee that no other copy exists).
    keys.sendKey.fill(0);
    keys.receiveKey.fill(0);
  }
}

/** One configured peer: its keypair slots (see handshake-state.ts), handshake, timers, flood state. */
export class PeerState {
  current: Keypair | null = null;
  previous: Keypair | null = null;
  /**
   * Receive-only sessions pushed out of the slots by rotation, newest last. Multipath reorders
   * by tens of ms, and a rekey racing a simultaneous initiation rotates twice in one RTT: packets
   * sealed on a session two rotations old must still open (each still expires at REJECT_AFTER_TIME).
   */
  retired: Keypair[] = [];
  next: Keypair | null = null;
  pending: PendingInitiation | null = null;
  lastInitiationSentMs = Number.NEGATIVE_INFINITY;
  handshakeAttempts = 0;
  /** When this round of initiations began: retries stop REKEY_ATTEMPT_TIME after it. */
  roundStartedMs = Number.NEGATIVE_INFINITY;
  /** A session the caller found carrying nothing (markStalled); dropped once another is current (retryIntervalMs). */
  stalledSession: Keypair | null = null;
  sentLastMinuteHandshake = false;
  /**
   * Responder: our response for `next`, resent to where the initiation came from every
   * AWAIT_CONFIRMATION_MS (at most MAX_RESPONSE_RESENDS times) while `next` waits for its
   * confirmation: a lost response otherwise costs the initiator's 5 s retry (VOPR seed 425). The
   * same bytes anyone on the path could replay; the initiator takes one and drops the others.
   */
  /** Our last response while unconfirmed: timed resends go to `to` and to where copies of its initiation came from. */
  response: { bytes: Uint8Array; to: unknown; alsoTo: unknown[]; forKeypair: Keypair; resends: number; sentAtMs: number } | null = null;
  // Timers are data (absolute deadlines per peer, Infinity = unarmed), WireGuard's five minus the
  // persistent keepalive (path probes already keep NAT state warm):
  //   retransmit    retryIntervalMs (REKEY_TIMEOUT, or NO_SESSION_RETRY without a working session) +
  //                 jitter after an initiation; resend with a fresh ephemeral, give up REKEY_ATTEMPT_TIME
  //                 after the round began
  //   keepalive     KEEPALIVE_TIMEOUT after receiving data if we sent nothing since: ask for an empty
  //                 authenticated packet so the peer knows its packets arrive
  //   newHandshake  KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter after sending data if nothing came back
  //   zeroKeys      3 x REJECT_AFTER_TIME after the last session was made: forget every key
  // Rekeying is driven by use, not timers: the initiator of the current session starts a handshake
  // when sending on a session older than REKEY_AFTER_TIME (or REKEY_AFTER_MESSAGES packets), or when
  // receiving on one close to REJECT_AFTER_TIME; nobody sends or accepts on a session older than
  // REJECT_AFTER_TIME. Only the session's initiator rekeys on age, so the two sides do not both start.
  responseResendAtMs = Infinity;
  retransmitAtMs = Infinity;
  keepaliveAtMs = Infinity;
  needAnotherKeepalive = false;
  newHandshakeAtMs = Infinity;
  zeroKeysAtMs = Infinity;
  // Responder-side replay and flood state for initiations from this peer.
  lastTimestamp: Uint8Array | null = null;
  lastInitiationConsumedMs = Number.NEGATIVE_INFINITY;
  // Initiator-side cookie from this peer's cookie reply.
  cookie: Uint8Array | null = null;
  cookieReceivedMs = Number.NEGATIVE_INFINITY;
  /** The pending initiation (sender index) already resent at once on a cookie reply. */
  cookieRetryFor = -1;

  constructor(
    readonly id: string,
    readonly remoteStatic: Uint8Array,
  ) {}
}

export interface IndexEntry {
  readonly peer: PeerState;
  /** null while the index names a pending initiation rather than a session. */
  readonly keypair: Keypair | null;
}

/** Forgets a session for good: no index finds it again, and its AEADs release their keys now. */
export function dropKeypair(indices: Map<number, IndexEntry>, keypair: Keypair | null): void {
  if (keypair === null) return;
  indices.delete(keypair.localIndex);
  // The native AEAD frees its OpenSSL contexts (which cleanse the key schedule) at once instead
  // of whenever the GC finalizes the handle; node:crypto's has nothing to release.
  keypair.sender.dispose?.();
  keypair.receiver.dispose?.();
}

/** Keeps a rotated-out session for receiving only, at most RETIRED_KEYPAIRS per peer. */
export function retireKeypair(indices: Map<number, IndexEntry>, peer: PeerState, keypair: Keypair | null): void {
  if (keypair === null) return;
  peer.retired.push(keypair);
  while (peer.retired.length > RETIRED_KEYPAIRS) dropKeypair(indices, peer.retired.shift()!);
}

/** Drops every key and the pending initiation of `peer` and disarms its timers. */
export function zeroPeerKeys(indices: Map<number, IndexEntry>, peer: PeerState): void {
  dropKeypair(indices, peer.current);
  dropKeypair(indices, peer.previous);
  dropKeypair(indices, peer.next);
  for (const k of peer.retired) dropKeypair(indices, k);
  peer.retired = [];
  if (peer.pending !== null) indices.delete(peer.pending.senderIndex);
  peer.current = peer.previous = peer.next = peer.stalledSession = null;
  peer.pending = null;
  peer.cookie = null;
  peer.retransmitAtMs = peer.keepaliveAtMs = peer.newHandshakeAtMs = peer.zeroKeysAtMs = Infinity;
}

/** What snapshot()/peerSnapshot() report for one peer at `nowMs`. */
export function peerSessionSnapshot(peer: PeerState, nowMs: number): PeerSessionSnapshot {
  const current = peer.current;
  return {
    peerId: peer.id,
    hasSession: current !== null && nowMs - current.createdMs < REJECT_AFTER_TIME_MS,
    sessionAgeMs: current === null ? undefined : nowMs - current.createdMs,
    cipher: current?.cipher,
    isInitiator: current?.isInitiator,
    handshakePending: peer.pending !== null,
    handshakeAttempts: peer.handshakeAttempts,
    awaitingConfirmation: peer.next !== null,
  };
}
