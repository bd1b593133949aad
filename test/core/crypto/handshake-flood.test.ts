/**
 * Issue 14 finding 2: a handshake flood from one IP cycling source ports, each initiation with a
 * valid mac2 (the attacker does the cookie round trip for every port it uses), while the real peer
 * handshakes. World-free: two SessionManagers and a scripted attacker, virtual time.
 */
import { describe, expect, it } from 'vitest';
import { consumeCookieReply, mac1Key, rateLimitKey, TokenBucketLimiter, writeMacs } from '../../../src/core/crypto/cookie.ts';
import { SessionManager } from '../../../src/core/crypto/handshake-state.ts';
import { generateKeyPair } from '../../../src/core/crypto/keys.ts';
import { BRAID_PROLOGUE, createInitiation } from '../../../src/core/crypto/noise.ts';
import { SeededRng } from './helpers.ts';

const EPOCH_MS = 1_700_000_000_000;
const ATTACKER_IP = '198.51.100.7';
const PEER_ADDRESS = '192.0.2.10:51820';
const PORTS = 4_096;
const FLOOD_INITIATIONS = 50_000;
const FLOOD_DURATION_MS = 8_000;

describe('handshake flood from one IP over many ports (issue 14, finding 2)', () => {
  it('lets at most one bucket of initiations per IP reach Diffie-Hellman, and the real peer through', () => {
    const rng = new SeededRng(1402);
    const keys = { a: generateKeyPair(rng), b: generateKeyPair(rng), attacker: generateKeyPair(rng) };
    const a = new SessionManager<string>({ local: keys.a, rng: rng.fork(), wallClockEpochMs: EPOCH_MS });
    const b = new SessionManager<string>({ local: keys.b, rng: rng.fork(), wallClockEpochMs: EPOCH_MS + 777 });
    a.addPeer('b', keys.b.publicKey);
    b.addPeer('a', keys.a.publicKey);

    // One well-formed initiation from a key B does not know: every one that passes the limiter
    // costs B the initiation's Diffie-Hellman before it finds out.
    const base = createInitiation({
      local: keys.attacker,
      remoteStatic: keys.b.publicKey,
      prologue: BRAID_PROLOGUE,
      senderIndex: 4242,
      nowMs: 0,
      wallClockEpochMs: EPOCH_MS,
      ciphers: { preferred: 'chacha20-poly1305', accepted: ['chacha20-poly1305'] },
      cookie: null,
      rng,
    })!.message;
    const key1 = mac1Key(keys.b.publicKey);

    /** Delivers B's replies: to the attacker (returned) or to the real peer A. */
    const attackerReplies: Uint8Array[] = [];
    const drainB = (nowMs: number): void => {
      for (let t = b.pollTransmit(); t !== undefined; t = b.pollTransmit()) {
        if (t.kind !== 'reply') continue;
        if (t.to === 'a') a.handleHandshake(nowMs, 'b', 'b.example:51820', t.bytes);
        else attackerReplies.push(t.bytes);
      }
    };
    const drainA = (nowMs: number): void => {
      for (let t = a.pollTransmit(); t !== undefined; t = a.pollTransmit()) {
        if (t.kind === 'keepalive') {
          const sealed = a.seal(nowMs, 'b', new Uint8Array(0));
          if (sealed.ok) b.open(nowMs, sealed.receiverIndex, sealed.counter, sealed.ciphertext);
          continue;
        }
        b.handleHandshake(nowMs, 'a', PEER_ADDRESS, t.bytes);
        drainB(nowMs);
      }
    };

    // Warm-up: the attacker fetches a cookie for each of its 4,096 ports (this also puts B under
    // load; the first few ports ask before it is, so they ask again).
    const withMac2: (Uint8Array | null)[] = new Array<Uint8Array | null>(PORTS).fill(null);
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < PORTS; i++) {
        if (withMac2[i] !== null) continue;
        const address = `${ATTACKER_IP}:${20_000 + i}`;
        const probe = base.slice();
        const sentMac1 = writeMacs(probe, key1, null);
        b.handleHandshake(0, address, address, probe);
        drainB(0);
        const reply = attackerReplies.pop();
        const cookie = reply === undefined ? null : consumeCookieReply(reply, keys.b.publicKey, sentMac1);
        if (cookie === null) continue;
        const message = base.slice();
        writeMacs(message, key1, cookie);
        withMac2[i] = message;
      }
    }
    expect(withMac2.every((m) => m !== null)).toBe(true);
    const beforeFlood = b.snapshot(0).handshakeDrops;
    const dhBefore = beforeFlood.unknownPeer;
    const limitedBefore = beforeFlood.rateLimited;

    // The flood, with the real peer starting a handshake one second in.
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    let peerStarted = false;
    for (let i = 0; i < FLOOD_INITIATIONS; i++) {
      const nowMs = 1 + Math.floor((i * FLOOD_DURATION_MS) / FLOOD_INITIATIONS);
      const port = i % PORTS;
      const address = `${ATTACKER_IP}:${20_000 + port}`;
      b.handleHandshake(nowMs, address, address, withMac2[port]!);
      drainB(nowMs);
      attackerReplies.length = 0;
      if (!peerStarted && nowMs >= 1_000) {
        peerStarted = true;
        a.connect(nowMs, 'b');
        drainA(nowMs);
      }
      const due = a.nextDeadlineMs();
      if (due !== undefined && due <= nowMs) {
        a.handleTimeout(nowMs);
        drainA(nowMs);
      }
    }
    const cpu = process.cpuUsage(cpuStart);
    const wallMs = performance.now() - wallStart;
    const after = b.snapshot(FLOOD_DURATION_MS);
    const reachedDh = after.handshakeDrops.unknownPeer - dhBefore;
    // Informational (not asserted: no timed assertions in tests).
    console.log(
      `handshake flood: ${FLOOD_INITIATIONS} initiations with valid mac2 from ${ATTACKER_IP} over ${PORTS} ports in ` +
        `${FLOOD_DURATION_MS / 1000} s virtual: ${reachedDh} reached Diffie-Hellman, ${after.handshakeDrops.rateLimited - limitedBefore} rate-limited; ` +
        `CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (wall ${wallMs.toFixed(0)} ms, includes the attacker's side of this test)`,
    );

    // WireGuard's limiter for one IP: a burst of 5, then 20/s.
    expect(reachedDh).toBeLessThanOrEqual(5 + 20 * (FLOOD_DURATION_MS / 1000) + 1);
    expect(after.handshakeDrops.rateLimited - limitedBefore).toBeGreaterThanOrEqual(FLOOD_INITIATIONS - 200);
    // The real peer: cookie reply first (B is under load), then its retry with mac2 gets through.
    expect(peerStarted).toBe(true);
    expect(a.snapshot(FLOOD_DURATION_MS).peers[0]!.hasSession).toBe(true);
    expect(b.snapshot(FLOOD_DURATION_MS).peers[0]!.hasSession).toBe(true);
  });

  it('keys the limiter by IPv4 address and IPv6 /64, never by port', () => {
    expect(rateLimitKey('203.0.113.7:51900')).toBe('203.0.113.7');
    expect(rateLimitKey('203.0.113.7:1')).toBe(rateLimitKey('203.0.113.7:65535'));
    expect(rateLimitKey('[2001:db8:1:2:aaaa::1]:51900')).toBe('2001:db8:1:2::/64');
    expect(rateLimitKey('[2001:db8:1:2:ffff:ffff:ffff:ffff]:1')).toBe(rateLimitKey('[2001:db8:1:2::]:2'));
    expect(rateLimitKey('[2001:db8:1:3::1]:1')).not.toBe(rateLimitKey('[2001:db8:1:2::1]:1'));
    expect(rateLimitKey('[::ffff:203.0.113.7]:9')).toBe('203.0.113.7');
    expect(rateLimitKey('[fe80::1%eth0]:9')).toBe('fe80:0:0:0::/64');
    expect(rateLimitKey('[::1]:9')).toBe('0:0:0:0::/64');
    expect(rateLimitKey('a.example:51900')).toBe('a.example');
    expect(rateLimitKey('[not-an-address]:1')).toBe('not-an-address');
  });

  it('never refuses a new source for want of room: a full table forgets its least recently used source', () => {
    const limiter = new TokenBucketLimiter(20, 5, 3);
    expect(limiter.allow(0, 'a') && limiter.allow(0, 'b') && limiter.allow(0, 'c')).toBe(true);
    expect(limiter.allow(1, 'a')).toBe(true); // a is now the most recently used
    expect(limiter.allow(10, 'peer')).toBe(true); // table full of busy sources: b (LRU) goes
    expect(limiter.trackedSources).toBe(3);
    expect(limiter.evictedSources).toBe(1);
    for (let i = 0; i < 3; i++) limiter.allow(11, 'a');
    expect(limiter.allow(11, 'a')).toBe(false); // a kept its (empty) bucket
    expect(limiter.allow(300, 'd')).toBe(true); // everyone idle for the 250 ms refill time: no eviction counted
    expect(limiter.evictedSources).toBe(1);
  });
});
