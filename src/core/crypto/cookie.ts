/**
 * Handshake flood defence, WireGuard's design (whitepaper section 5.4.4-5.4.7), with WireGuard's
 * MAC (keyed BLAKE2s-128):
 *
 * 1. mac1 = MAC(HASH("mac1----" || responder static public), message up to mac1). Anyone who knows
 *    the responder's public key can make it, so it is no authentication; it makes a responder
 *    check garbage (port scans, wrong protocol, stale peers) with one MAC and no state before any
 *    Diffie-Hellman, and keeps the responder silent to anyone who does not know its public key.
 * 2. Under load (many valid-mac1 initiations per second) the responder also demands
 *    mac2 = MAC(cookie, message up to mac2), where cookie = MAC(secret, source address) and the
 *    secret rotates every 2 minutes. An initiator without a valid mac2 gets a cookie reply instead
 *    of a handshake: one MAC and one small AEAD, still no state and no DH. A spoofed source never
 *    sees its cookie, so floods from forged addresses stop at this step.
 * 3. Sources with a valid cookie are then rate-limited per address by a token bucket, so one real
 *    address cannot monopolise the responder's handshake CPU either.
 *
 * The cookie reply is encrypted to the initiator with a key derived from the responder's public key
 * and bound (AAD) to the mac1 of the initiation it answers, so an off-path attacker cannot forge
 * cookies into an initiator. WireGuard uses XChaCha20-Poly1305 for that; node:crypto has no
 * XChaCha, so we derive a one-time subkey = keyed-BLAKE2s-256(key, 24-byte random nonce) and use
 * ChaCha20-Poly1305 with a zero nonce under it: the property XChaCha's HChaCha20 step gives (random
 * nonces long enough that they never repeat under the long-lived cookie key).
 */
import { Buffer } from 'node:buffer';
import {
  RATE_LIMIT_BURST,
  RATE_LIMIT_INITIATIONS_PER_SECOND,
  RATE_LIMIT_MAX_SOURCES,
  COOKIE_REFRESH_TIME_MS,
} from './constants.ts';
import { blake2s, KeyedBlake2s } from './blake2s.ts';
import { chachaOpen, chachaSeal, equalBytes, hash, mac, MAC_LENGTH } from './primitives.ts';
import type { Rng } from './types.ts';

const LABEL_MAC1 = new TextEncoder().encode('mac1----');
const LABEL_COOKIE = new TextEncoder().encode('cookie--');
const COOKIE_NONCE_LENGTH = 24;
const COOKIE_REPLY_TYPE = 3;
const COOKIE_REPLY_LENGTH = 64;
const ZERO_MAC = new Uint8Array(MAC_LENGTH);

/** mac1 of messages sent *to* the holder of `publicKey` (key block precomputed: make once, reuse). */
export function mac1Key(publicKey: Uint8Array): KeyedBlake2s {
  return new KeyedBlake2s(hash(LABEL_MAC1, publicKey), MAC_LENGTH);
}

/** Key that cookie replies *from* the holder of `publicKey` are encrypted under. */
export function cookieKey(publicKey: Uint8Array): Uint8Array {
  return hash(LABEL_COOKIE, publicKey);
}

/**
 * Fills the last 32 bytes of `message` with mac1 and mac2 (zeros without a cookie) and returns a
 * copy of mac1 (a cookie reply to this message will be bound to it).
 */
export function writeMacs(message: Uint8Array, key1: KeyedBlake2s, cookie: Uint8Array | null): Uint8Array {
  const mac1Offset = message.length - 2 * MAC_LENGTH;
  const mac2Offset = message.length - MAC_LENGTH;
  const mac1 = key1.digest(message.subarray(0, mac1Offset));
  message.set(mac1, mac1Offset);
  message.set(cookie === null ? ZERO_MAC : mac(cookie, message.subarray(0, mac2Offset)), mac2Offset);
  return new Uint8Array(mac1);
}

export function verifyMac1(message: Uint8Array, key1: KeyedBlake2s): boolean {
  if (message.length < 2 * MAC_LENGTH) return false;
  const mac1Offset = message.length - 2 * MAC_LENGTH;
  return equalBytes(key1.digest(message.subarray(0, mac1Offset)), message.subarray(mac1Offset, mac1Offset + MAC_LENGTH));
}

function readMac1(message: Uint8Array): Uint8Array {
  const mac1Offset = message.length - 2 * MAC_LENGTH;
  return message.subarray(mac1Offset, mac1Offset + MAC_LENGTH);
}

/** Responder side: mac2 verification and cookie replies. One per local static key. */
export class CookieChecker {
  private readonly encryptionKey: Uint8Array;
  private readonly secret = new Uint8Array(32);
  private secretBornMs = Number.NEGATIVE_INFINITY;

  constructor(
    localPublicKey: Uint8Array,
    private readonly rng: Rng,
  ) {
    this.encryptionKey = cookieKey(localPublicKey);
  }

  private cookieFor(nowMs: number, sourceAddress: string): Uint8Array {
    if (nowMs - this.secretBornMs >= COOKIE_REFRESH_TIME_MS) {
      this.rng.fillBytes(this.secret);
      this.secretBornMs = nowMs;
    }
    return mac(this.secret, Buffer.from(sourceAddress, 'utf8'));
  }

  /** Whether `message` (with mac1 already verified) carries a mac2 made with this source's current cookie. */
  verifyMac2(nowMs: number, message: Uint8Array, sourceAddress: string): boolean {
    if (message.length < 2 * MAC_LENGTH) return false;
    const mac2Offset = message.length - MAC_LENGTH;
    const expected = mac(this.cookieFor(nowMs, sourceAddress), message.subarray(0, mac2Offset));
    return equalBytes(expected, message.subarray(mac2Offset));
  }

  /**
   * Cookie reply to `message` (an initiation with valid mac1), addressed to `receiverIndex`:
   * type=3 u8 | 3 zero | receiver u32 LE | nonce 24 | enc(cookie) 32.
   */
  createReply(nowMs: number, message: Uint8Array, sourceAddress: string, receiverIndex: number): Uint8Array {
    const reply = new Uint8Array(COOKIE_REPLY_LENGTH);
    reply[0] = COOKIE_REPLY_TYPE;
    reply[4] = receiverIndex & 0xff;
    reply[5] = (receiverIndex >>> 8) & 0xff;
    reply[6] = (receiverIndex >>> 16) & 0xff;
    reply[7] = receiverIndex >>> 24;
    const nonce = reply.subarray(8, 8 + COOKIE_NONCE_LENGTH);
    this.rng.fillBytes(nonce);
    const sealed = chachaSeal(blake2s(32, this.encryptionKey, nonce), 0, readMac1(message), this.cookieFor(nowMs, sourceAddress));
    reply.set(sealed, 8 + COOKIE_NONCE_LENGTH);
    return reply;
  }
}

/**
 * Initiator side: the cookie inside `reply`, or null if it does not decrypt for a responder with
 * static key `remoteStatic` answering the message whose mac1 was `sentMac1`.
 */
export function consumeCookieReply(reply: Uint8Array, remoteStatic: Uint8Array, sentMac1: Uint8Array): Uint8Array | null {
  if (reply.length !== COOKIE_REPLY_LENGTH || reply[0] !== COOKIE_REPLY_TYPE) return null;
  const nonce = reply.subarray(8, 8 + COOKIE_NONCE_LENGTH);
  const cookie = chachaOpen(blake2s(32, cookieKey(remoteStatic), nonce), 0, sentMac1, reply.subarray(8 + COOKIE_NONCE_LENGTH));
  return cookie !== null && cookie.length === MAC_LENGTH ? new Uint8Array(cookie) : null;
}

interface Bucket {
  tokens: number;
  lastMs: number;
}

/**
 * The rate limiter's key for a source written as `formatEndpoint` does ("203.0.113.7:51900",
 * "[2001:db8::1]:51900"): the IPv4 address, or the /64 of an IPv6 address (WireGuard's ratelimiter:
 * one host owns a whole /64, so per-address buckets in IPv6 are no limit at all). The port is never
 * part of it: one host cycling source ports is still one host. IPv4-mapped IPv6 counts as IPv4.
 * Anything that does not parse is keyed by its text without a trailing ":port".
 */
export function rateLimitKey(sourceAddress: string): string {
  let host = sourceAddress;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    host = close > 0 ? host.slice(1, close) : host.slice(1);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0 && host.indexOf(':') === colon) host = host.slice(0, colon); // "v4:port"
  }
  const zone = host.indexOf('%');
  if (zone >= 0) host = host.slice(0, zone);
  if (!host.includes(':')) return host;
  const groups = expandIpv6(host);
  if (groups === null) return host;
  // ::ffff:a.b.c.d and ::ffff:xxxx:xxxx are IPv4 (dual-stack sockets report them so).
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `${groups[6]! >>> 8}.${groups[6]! & 0xff}.${groups[7]! >>> 8}.${groups[7]! & 0xff}`;
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (with an optional dotted IPv4 tail), or null. */
function expandIpv6(text: string): number[] | null {
  let tail: number[] = [];
  let body = text;
  const lastColon = body.lastIndexOf(':');
  const last = body.slice(lastColon + 1);
  if (last.includes('.')) {
    const octets = last.split('.').map((o) => (/^\d{1,3}$/.test(o) ? Number(o) : -1));
    if (octets.length !== 4 || octets.some((o) => o < 0 || o > 255)) return null;
    tail = [(octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!];
    body = body.slice(0, lastColon + 1) + '0';
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === null || rest === null) return null;
  if (tail.length > 0) (rest.length > 0 ? rest : head).pop(); // the '0' placeholder
  const fixed = head.length + rest.length + tail.length;
  if (halves.length === 1 ? fixed !== 8 : fixed > 7) return null;
  return [...head, ...new Array<number>(8 - fixed).fill(0), ...rest, ...tail];
}

/**
 * Per-source token bucket (WireGuard's ratelimiter: 20/s, burst 5, keyed by `rateLimitKey`). The
 * table is bounded and kept in least-recently-used order: when it is full, sources idle for the
 * refill time go first (their bucket is full again, forgetting them loses nothing), then the least
 * recently used one. Never refusing a *new* source for want of room matters: a flood that filled
 * the table must not lock out a real peer that has a valid cookie (that is what cookies are for).
 */
export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly refillMs: number;
  private evicted = 0;

  constructor(
    private readonly ratePerSecond: number = RATE_LIMIT_INITIATIONS_PER_SECOND,
    private readonly burst: number = RATE_LIMIT_BURST,
    private readonly maxSources: number = RATE_LIMIT_MAX_SOURCES,
  ) {
    this.refillMs = (burst * 1000) / ratePerSecond;
  }

  get trackedSources(): number {
    return this.buckets.size;
  }

  /** Sources forgotten while not yet refilled because the table was full. */
  get evictedSources(): number {
    return this.evicted;
  }

  allow(nowMs: number, source: string): boolean {
    let bucket = this.buckets.get(source);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxSources) this.makeRoom(nowMs);
      bucket = { tokens: this.burst, lastMs: nowMs };
    } else {
      this.buckets.delete(source); // re-inserted below: Map order is recency order
      bucket.tokens = Math.min(this.burst, bucket.tokens + (Math.max(0, nowMs - bucket.lastMs) * this.ratePerSecond) / 1000);
      bucket.lastMs = nowMs;
    }
    this.buckets.set(source, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /**
   * Takes a token whatever the bucket holds (it may go below zero and refills from there): for
   * what reached the handshake another way (handshake-load.ts: a source's cookie-free allowance),
   * so that per source the two together stay within this bucket's rate.
   */
  charge(nowMs: number, source: string): void {
    if (this.allow(nowMs, source)) return;
    this.buckets.get(source)!.tokens -= 1;
  }

  private makeRoom(nowMs: number): void {
    for (const [source, bucket] of this.buckets) {
      if (nowMs - bucket.lastMs < this.refillMs) break; // recency order: the rest are younger
      this.buckets.delete(source);
    }
    if (this.buckets.size < this.maxSources) return;
    const oldest = this.buckets.keys().next();
    if (!oldest.done) {
      this.buckets.delete(oldest.value);
      this.evicted++;
    }
  }
}
