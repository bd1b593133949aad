/**
 * SessionManager's public data shapes: drop reasons (each a counter), seal/open results, the
 * outputs it queues (transmits, events), snapshots, options and the default cipher policy.
 *
 * Contract: types and constants only, no state; handshake-state.ts re-exports all of it, so
 * importers keep using './crypto/handshake-state.ts' (or the crypto index).
 */
import type { X25519KeyPair } from './keys.ts';
import { HANDSHAKE_FAILURES, type CipherPolicy } from './noise.ts';
import type { AeadFactory } from './transport.ts';
import type { DataCipher, Rng } from './types.ts';

export const DATA_DROP_REASONS = [
  'badCounter', // not an integer in [0, REJECT_AFTER_MESSAGES)
  'unknownIndex', // no session with that receiver index (stale, forged, or after zeroing)
  'expiredSession', // session older than REJECT_AFTER_TIME
  'replayed', // counter seen before or older than the replay window
  'authFailed', // AEAD tag did not verify
] as const;
export type DataDropReason = (typeof DATA_DROP_REASONS)[number];

/** Handshake drops: the handshake failures plus the flood defences. */
export const HANDSHAKE_DROP_REASONS = [
  ...HANDSHAKE_FAILURES,
  'cookieRequired', // under load without a valid mac2: answered with a cookie reply
  'rateLimited', // under load, source over its token bucket
  'badCookieReply', // cookie reply that did not decrypt for a pending initiation
] as const;
export type HandshakeDropReason = (typeof HANDSHAKE_DROP_REASONS)[number];

export type SealResult =
  | { readonly ok: true; readonly receiverIndex: number; readonly counter: number; readonly ciphertext: Uint8Array }
  | { readonly ok: false; readonly reason: 'unknownPeer' | 'noSession' };

/** SessionManager.sealAt's result: the sealed bytes are the caller's own buffer. */
export type SealAtResult =
  | { readonly ok: true; readonly receiverIndex: number; readonly counter: number }
  | { readonly ok: false; readonly reason: 'unknownPeer' | 'noSession' };

export type OpenResult =
  | { readonly ok: true; readonly peerId: string; readonly plaintext: Uint8Array }
  | { readonly ok: false; readonly reason: DataDropReason };

/**
 * What the shell must send. Initiations go to the peer by whatever paths the edge chooses; replies
 * (responses, cookie replies) go back to the source they answer; a keepalive asks the edge to
 * seal an empty plaintext to the peer now.
 */
export type CryptoTransmit<Source> =
  | { readonly kind: 'initiation'; readonly peerId: string; readonly bytes: Uint8Array }
  | { readonly kind: 'reply'; readonly to: Source; readonly bytes: Uint8Array }
  | { readonly kind: 'keepalive'; readonly peerId: string };

export type CryptoEventKind =
  | 'handshakeStarted'
  | 'sessionEstablished'
  | 'sessionConfirmed'
  | 'handshakeFailed'
  | 'keysZeroed'
  | 'underLoad';

export interface CryptoEvent {
  readonly atMs: number;
  readonly kind: CryptoEventKind;
  readonly peerId?: string;
  readonly message: string;
}

export interface PeerSessionSnapshot {
  readonly peerId: string;
  readonly hasSession: boolean;
  readonly sessionAgeMs: number | undefined;
  readonly cipher: DataCipher | undefined;
  readonly isInitiator: boolean | undefined;
  readonly handshakePending: boolean;
  readonly handshakeAttempts: number;
  readonly awaitingConfirmation: boolean;
}

export interface SessionManagerSnapshot {
  readonly peers: PeerSessionSnapshot[];
  readonly underLoad: boolean;
  readonly handshakeDrops: Readonly<Record<HandshakeDropReason, number>>;
  readonly dataDrops: Readonly<Record<DataDropReason, number>>;
  readonly outputsDropped: number;
}

export interface SessionManagerOptions {
  readonly local: X25519KeyPair;
  readonly rng: Rng;
  /** Wall-clock ms since the Unix epoch at nowMs = 0 (only for initiation timestamps). */
  readonly wallClockEpochMs: number;
  readonly prologue?: Uint8Array;
  readonly ciphers?: CipherPolicy;
  /** Envelope version bound into the data AAD. */
  readonly wireVersion?: number;
  /** The global budget's rate (UNDER_LOAD_INITIATIONS_PER_SECOND; 0 with handshakeBurstPerPeer 0: always under load). */
  readonly underLoadInitiationsPerSecond?: number;
  /** The global budget's burst per configured peer (HANDSHAKE_BURST_PER_PEER). */
  readonly handshakeBurstPerPeer?: number;
  /**
   * Builds each session's data AEADs. Default: `nodeCryptoAeadFactory` (node:crypto); the Edge
   * passes EdgeCryptoConfig.aead (the shell gives it the native addon's).
   */
  readonly aead?: AeadFactory;
  /**
   * Decrypt data packets over their own ciphertext (the datagram's bytes) instead of into fresh
   * memory. Only for a caller whose datagram buffers are scratch that nothing reads after `open`
   * (the I/O shell's receive slabs): the plaintext is then a view into the datagram, and a failed
   * open leaves the body zeroed. Default false.
   */
  readonly openInPlace?: boolean;
}

export const DEFAULT_CIPHER_POLICY: CipherPolicy = {
  preferred: 'chacha20-poly1305',
  accepted: ['chacha20-poly1305', 'aes-256-gcm'],
};
