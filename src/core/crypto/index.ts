/**
 * Braid's crypto layer: Noise IK handshake (WireGuard's model), data AEAD, replay window, per-peer
 * sessions with rekey timers, and handshake flood defences. Everything is sans-I/O: time is a
 * `nowMs` argument and randomness an injected Rng.
 */
export * from './types.ts';
export * from './constants.ts';
export * from './keys.ts';
export * from './transport.ts';
export * from './replay.ts';
export {
  BRAID_PROLOGUE,
  COOKIE_REPLY_LENGTH,
  INITIATION_LENGTH,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  NOISE_PROTOCOL_NAME,
  RESPONSE_LENGTH,
  HANDSHAKE_FAILURES,
  NoiseIkHandshake,
  PendingInitiation,
  compareTimestamps,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  peekMessageType,
  readHeaderIndex,
  tai64n,
  type ConsumeInitiationParams,
  type ConsumeInitiationResult,
  type ConsumeResponseResult,
  type CreateInitiationParams,
  type HandshakeFailure,
  type HandshakeMessageType,
  type NoiseRole,
  type ReceivedInitiation,
  type SplitKeys,
  type TransportKeys,
} from './noise.ts';
export { blake2s, KeyedBlake2s } from './blake2s.ts';
export { CookieChecker, TokenBucketLimiter, consumeCookieReply, cookieKey, mac1Key, verifyMac1, writeMacs } from './cookie.ts';
export * from './handshake-state.ts';
export * from './cipher-choice.ts';
