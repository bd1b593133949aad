import { describe, expect, it } from 'vitest';
import { COOKIE_REFRESH_TIME_MS } from '../../../src/core/crypto/constants.ts';
import {
  consumeCookieReply,
  CookieChecker,
  mac1Key,
  TokenBucketLimiter,
  verifyMac1,
  writeMacs,
} from '../../../src/core/crypto/cookie.ts';
import { generateKeyPair } from '../../../src/core/crypto/keys.ts';
import { SeededRng, toHex } from './helpers.ts';

function message(rng: SeededRng, length = 156): Uint8Array {
  const m = new Uint8Array(length);
  rng.fillBytes(m);
  return m;
}

describe('mac1', () => {
  it('verifies only for the key it was made for and only for the exact bytes', () => {
    const rng = new SeededRng(3);
    const responder = generateKeyPair(rng);
    const other = generateKeyPair(rng);
    const m = message(rng);
    writeMacs(m, mac1Key(responder.publicKey), null);
    expect(verifyMac1(m, mac1Key(responder.publicKey))).toBe(true);
    expect(verifyMac1(m, mac1Key(other.publicKey))).toBe(false);
    m[10]! ^= 1;
    expect(verifyMac1(m, mac1Key(responder.publicKey))).toBe(false);
    expect(verifyMac1(new Uint8Array(10), mac1Key(responder.publicKey))).toBe(false);
  });
});

describe('cookies', () => {
  const rng = new SeededRng(4);
  const responder = generateKeyPair(rng);
  const checker = new CookieChecker(responder.publicKey, rng);
  const key1 = mac1Key(responder.publicKey);

  it('round-trip: cookie reply -> mac2 accepted from the same address only', () => {
    const first = message(rng);
    const sentMac1 = writeMacs(first, key1, null);
    expect(checker.verifyMac2(0, first, '198.51.100.1:4000')).toBe(false);
    const reply = checker.createReply(0, first, '198.51.100.1:4000', 0xabcd);
    expect(reply.length).toBe(64);
    expect(reply[0]).toBe(3);
    const cookie = consumeCookieReply(reply, responder.publicKey, sentMac1);
    expect(cookie).not.toBeNull();

    const second = message(rng);
    writeMacs(second, key1, cookie);
    expect(checker.verifyMac2(1000, second, '198.51.100.1:4000')).toBe(true);
    expect(checker.verifyMac2(1000, second, '198.51.100.2:4000')).toBe(false);
    expect(checker.verifyMac2(1000, second, '198.51.100.1:4001')).toBe(false);
  });

  it('binds the reply to the mac1 it answers and to the responder key', () => {
    const m = message(rng);
    const sentMac1 = writeMacs(m, key1, null);
    const reply = checker.createReply(0, m, '192.0.2.9:1', 1);
    const otherMac1 = sentMac1.slice();
    otherMac1[0]! ^= 1;
    expect(consumeCookieReply(reply, responder.publicKey, otherMac1)).toBeNull();
    expect(consumeCookieReply(reply, generateKeyPair(rng).publicKey, sentMac1)).toBeNull();
    for (let i = 8; i < 64; i += 7) {
      const tampered = reply.slice();
      tampered[i]! ^= 0x80;
      expect(consumeCookieReply(tampered, responder.publicKey, sentMac1)).toBeNull();
    }
    expect(consumeCookieReply(reply.subarray(0, 63), responder.publicKey, sentMac1)).toBeNull();
  });

  it('expires cookies when the secret rotates', () => {
    const local = new CookieChecker(responder.publicKey, new SeededRng(9));
    const m = message(rng);
    const sentMac1 = writeMacs(m, key1, null);
    const cookie = consumeCookieReply(local.createReply(0, m, 'a', 1), responder.publicKey, sentMac1)!;
    const next = message(rng);
    writeMacs(next, key1, cookie);
    expect(local.verifyMac2(COOKIE_REFRESH_TIME_MS - 1, next, 'a')).toBe(true);
    expect(local.verifyMac2(COOKIE_REFRESH_TIME_MS, next, 'a')).toBe(false);
  });

  it('uses fresh random nonces per reply', () => {
    const m = message(rng);
    writeMacs(m, key1, null);
    const a = checker.createReply(0, m, 'x', 1);
    const b = checker.createReply(0, m, 'x', 1);
    expect(toHex(a.subarray(8, 32))).not.toBe(toHex(b.subarray(8, 32)));
  });
});

describe('TokenBucketLimiter', () => {
  it('allows a burst, then the steady rate, per source', () => {
    const limiter = new TokenBucketLimiter(20, 5, 100);
    let allowed = 0;
    for (let i = 0; i < 10; i++) if (limiter.allow(0, 'a')) allowed++;
    expect(allowed).toBe(5);
    expect(limiter.allow(0, 'b')).toBe(true); // other sources unaffected
    expect(limiter.allow(49, 'a')).toBe(false);
    expect(limiter.allow(50, 'a')).toBe(true); // one token per 50 ms at 20/s
    // Over one second at a steady hammering, about 20 get through.
    allowed = 0;
    for (let t = 1000; t < 2000; t += 5) if (limiter.allow(t, 'a')) allowed++;
    expect(allowed).toBeGreaterThanOrEqual(19);
    expect(allowed).toBeLessThanOrEqual(25);
  });

  it('is bounded: forgets idle sources first when full, then the least recently used', () => {
    const limiter = new TokenBucketLimiter(20, 5, 3);
    expect(limiter.allow(0, 'a') && limiter.allow(0, 'b') && limiter.allow(0, 'c')).toBe(true);
    expect(limiter.allow(10, 'd')).toBe(true); // a new source is never refused for want of room
    expect(limiter.trackedSources).toBe(3);
    expect(limiter.evictedSources).toBe(1);
    expect(limiter.allow(300, 'e')).toBe(true); // b, c, d idle for the 250 ms refill time
    expect(limiter.trackedSources).toBe(1);
    expect(limiter.evictedSources).toBe(1);
  });
});
