import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AWAIT_CONFIRMATION_MS,
  KEEPALIVE_TIMEOUT_MS,
  MAX_RESPONSE_RESENDS,
  NO_SESSION_RETRY_MS,
  REKEY_ATTEMPT_TIME_MS,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_TIME_MS,
  REKEY_TIMEOUT_JITTER_MAX_MS,
  REKEY_TIMEOUT_MS,
} from '../../../src/core/crypto/constants.ts';
import { SessionManager, type CryptoTransmit, type SealResult } from '../../../src/core/crypto/handshake-state.ts';
import { generateKeyPair } from '../../../src/core/crypto/keys.ts';
import { BRAID_PROLOGUE, createInitiation } from '../../../src/core/crypto/noise.ts';
import type { CipherPolicy } from '../../../src/core/crypto/noise.ts';
import { SeededRng, toHex } from './helpers.ts';
import { nodeCryptoAeadFactory, type AeadFactory } from '../../../src/core/crypto/transport.ts';
import { nativeAeadFactory } from '../../../src/io/native-aead.ts';

const EPOCH_MS = 1_700_000_000_000;
const EMPTY = new Uint8Array(0);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

type Name = 'a' | 'b';
interface Side {
  readonly name: Name;
  readonly mgr: SessionManager<Name>;
  readonly peer: Name; // peer id of the other side
}

interface Pair {
  a: Side;
  b: Side;
  rng: SeededRng;
  keys: { a: ReturnType<typeof generateKeyPair>; b: ReturnType<typeof generateKeyPair> };
  /** Everything either side transmitted, in order, as hex (for determinism checks). */
  wire: string[];
}

function makePair(seed: number, options: { bUnderLoadPerSecond?: number; ciphers?: CipherPolicy; bOpenInPlace?: boolean; aead?: AeadFactory } = {}): Pair {
  const rng = new SeededRng(seed);
  const keys = { a: generateKeyPair(rng), b: generateKeyPair(rng) };
  const a = new SessionManager<Name>({ local: keys.a, rng: rng.fork(), wallClockEpochMs: EPOCH_MS, ciphers: options.ciphers });
  const b = new SessionManager<Name>({
    local: keys.b,
    rng: rng.fork(),
    wallClockEpochMs: EPOCH_MS + 12_345,
    underLoadInitiationsPerSecond: options.bUnderLoadPerSecond,
    // A budget of 0 a second with no burst per peer: every initiation needs a cookie.
    ...(options.bUnderLoadPerSecond === 0 ? { handshakeBurstPerPeer: 0 } : {}),
    ciphers: options.ciphers,
    ...(options.bOpenInPlace ? { openInPlace: true } : {}),
    ...(options.aead ? { aead: options.aead } : {}),
  });
  a.addPeer('b', keys.b.publicKey);
  b.addPeer('a', keys.a.publicKey);
  return { a: { name: 'a', mgr: a, peer: 'b' }, b: { name: 'b', mgr: b, peer: 'a' }, rng, keys, wire: [] };
}

interface DrainOptions {
  /** Return false to lose the transmit on the way. */
  readonly deliver?: (from: Name, transmit: CryptoTransmit<Name>) => boolean;
}

/** Delivers everything both sides want to send until both are quiet. Keepalives become sealed empty packets. */
function pump(p: Pair, nowMs: number, options: DrainOptions = {}): void {
  for (let round = 0; round < 20; round++) {
    let moved = false;
    for (const [from, to] of [
      [p.a, p.b],
      [p.b, p.a],
    ] as const) {
      for (let t = from.mgr.pollTransmit(); t !== undefined; t = from.mgr.pollTransmit()) {
        moved = true;
        if (t.kind === 'keepalive') {
          const sealed = from.mgr.seal(nowMs, t.peerId, EMPTY);
          if (sealed.ok && (options.deliver?.(from.name, t) ?? true)) {
            p.wire.push(`${from.name}:data:${toHex(sealed.ciphertext)}`);
            to.mgr.open(nowMs, sealed.receiverIndex, sealed.counter, sealed.ciphertext);
          }
          continue;
        }
        p.wire.push(`${from.name}:${t.kind}:${toHex(t.bytes)}`);
        if (!(options.deliver?.(from.name, t) ?? true)) continue;
        // Replies go back to whoever we named as the source; here that is always the other side.
        if (t.kind === 'reply') expect(t.to).toBe(to.name);
        to.mgr.handleHandshake(nowMs, from.name, `${from.name}.example:51900`, t.bytes);
      }
    }
    if (!moved) return;
  }
  throw new Error('pump did not settle');
}

function sealOk(side: Side, nowMs: number, data: Uint8Array): Extract<SealResult, { ok: true }> {
  const sealed = side.mgr.seal(nowMs, side.peer, data);
  if (!sealed.ok) throw new Error(`seal failed: ${sealed.reason}`);
  return sealed;
}

function deliver(to: Side, nowMs: number, sealed: Extract<SealResult, { ok: true }>) {
  return to.mgr.open(nowMs, sealed.receiverIndex, sealed.counter, sealed.ciphertext);
}

function events(side: Side): string[] {
  const out: string[] = [];
  for (let e = side.mgr.pollEvent(); e !== undefined; e = side.mgr.pollEvent()) out.push(e.kind);
  return out;
}

function establish(p: Pair, nowMs: number): void {
  expect(p.a.mgr.seal(nowMs, 'b', text('first')).ok).toBe(false);
  pump(p, nowMs);
}

describe('SessionManager', () => {
  it('establishes a session on first use and carries data both ways', () => {
    const p = makePair(1);
    expect(p.a.mgr.seal(0, 'b', text('hello'))).toEqual({ ok: false, reason: 'noSession' });
    pump(p, 0);
    expect(events(p.a)).toEqual(['handshakeStarted', 'sessionEstablished']);
    // The initiator's keepalive confirmed the responder's `next` session.
    expect(events(p.b)).toEqual(['sessionEstablished', 'sessionConfirmed']);
    const ab = deliver(p.b, 1, sealOk(p.a, 1, text('to b')));
    expect(ab).toMatchObject({ ok: true, peerId: 'a' });
    expect(ab.ok && new TextDecoder().decode(ab.plaintext)).toBe('to b');
    const ba = deliver(p.a, 1, sealOk(p.b, 1, text('to a')));
    expect(ba.ok && new TextDecoder().decode(ba.plaintext)).toBe('to a');
    const snapshot = p.b.mgr.snapshot(1).peers[0]!;
    expect(snapshot).toMatchObject({ peerId: 'a', hasSession: true, isInitiator: false, awaitingConfirmation: false, cipher: 'chacha20-poly1305' });
  });

  it('does not let the responder send before the initiator confirmed the session', () => {
    const p = makePair(2);
    p.a.mgr.connect(0, 'b');
    // Lose the initiator's confirming keepalive.
    pump(p, 0, { deliver: (_from, t) => t.kind !== 'keepalive' });
    expect(p.b.mgr.snapshot(0).peers[0]).toMatchObject({ hasSession: false, awaitingConfirmation: true });
    // The first data packet from the initiator confirms it.
    expect(deliver(p.b, 10, sealOk(p.a, 10, text('data'))).ok).toBe(true);
    expect(p.b.mgr.snapshot(10).peers[0]).toMatchObject({ hasSession: true, awaitingConfirmation: false });
    expect(deliver(p.a, 11, sealOk(p.b, 11, text('reply'))).ok).toBe(true);
  });

  it('a responder with data waits AWAIT_CONFIRMATION_MS for the confirmation, then starts its own handshake (its response may be lost)', () => {
    const p = makePair(22);
    p.a.mgr.connect(0, 'b');
    // The responder's response is lost (VOPR seed 129: corrupted on the way to a NATed spoke).
    pump(p, 0, { deliver: (from) => from !== 'b' });
    expect(p.b.mgr.snapshot(0).peers[0]).toMatchObject({ hasSession: false, awaitingConfirmation: true });
    events(p.b);
    // Data for the initiator within a round trip: no crossing handshake.
    expect(p.b.mgr.seal(AWAIT_CONFIRMATION_MS - 1, 'a', text('early'))).toEqual({ ok: false, reason: 'noSession' });
    expect(p.b.mgr.pollTransmit()).toBeUndefined();
    // Later: the responder initiates, and both sides end with a session.
    expect(p.b.mgr.seal(AWAIT_CONFIRMATION_MS, 'a', text('late'))).toEqual({ ok: false, reason: 'noSession' });
    expect(events(p.b)).toEqual(['handshakeStarted']);
    pump(p, AWAIT_CONFIRMATION_MS);
    expect(deliver(p.a, AWAIT_CONFIRMATION_MS + 1, sealOk(p.b, AWAIT_CONFIRMATION_MS + 1, text('to a'))).ok).toBe(true);
    expect(deliver(p.b, AWAIT_CONFIRMATION_MS + 2, sealOk(p.a, AWAIT_CONFIRMATION_MS + 2, text('to b'))).ok).toBe(true);
  });

  it('a responder resends its response every AWAIT_CONFIRMATION_MS while unconfirmed, at most MAX_RESPONSE_RESENDS times (VOPR seed 425)', () => {
    const p = makePair(425);
    p.a.mgr.connect(0, 'b');
    // The response is lost; the initiator has nothing else to send.
    pump(p, 0, { deliver: (from) => from !== 'b' });
    const replies = (side: Side): number => {
      let n = 0;
      for (let t = side.mgr.pollTransmit(); t !== undefined; t = side.mgr.pollTransmit()) if (t.kind === 'reply') n++;
      return n;
    };
    expect(p.b.mgr.nextDeadlineMs()).toBe(AWAIT_CONFIRMATION_MS);
    // Lost again, and again: three resends, then the initiator's own retry is what is left.
    for (let k = 1; k <= MAX_RESPONSE_RESENDS; k++) {
      p.b.mgr.handleTimeout(k * AWAIT_CONFIRMATION_MS);
      expect(replies(p.b)).toBe(1);
    }
    p.b.mgr.handleTimeout((MAX_RESPONSE_RESENDS + 1) * AWAIT_CONFIRMATION_MS);
    expect(replies(p.b)).toBe(0);
    // A fresh handshake whose response is lost once: the resend completes it, before a's retry.
    const q = makePair(426);
    q.a.mgr.connect(0, 'b');
    pump(q, 0, { deliver: (from) => from !== 'b' });
    q.b.mgr.handleTimeout(AWAIT_CONFIRMATION_MS);
    pump(q, AWAIT_CONFIRMATION_MS);
    expect(q.a.mgr.snapshot(AWAIT_CONFIRMATION_MS).peers[0]).toMatchObject({ hasSession: true });
    expect(q.b.mgr.snapshot(AWAIT_CONFIRMATION_MS).peers[0]).toMatchObject({ hasSession: true, awaitingConfirmation: false });
    // Confirmed: nothing more is resent.
    q.b.mgr.handleTimeout(2 * AWAIT_CONFIRMATION_MS);
    expect(replies(q.b)).toBe(0);
  });

  it('rekeys after REKEY_AFTER_TIME without losing packets in flight on the old session', () => {
    const p = makePair(3);
    establish(p, 0);
    const t = REKEY_AFTER_TIME_MS + 1;
    const inFlightToA = [sealOk(p.b, t, text('old b 1')), sealOk(p.b, t, text('old b 2'))];
    const inFlightToB = sealOk(p.a, t, text('old a')); // this send also starts the rekey (a initiated the session)
    expect(p.a.mgr.snapshot(t).peers[0]!.handshakePending).toBe(true);
    pump(p, t + 5);
    // Both sides now send on the new session...
    const fresh = sealOk(p.a, t + 10, text('new a'));
    expect(fresh.receiverIndex).not.toBe(inFlightToB.receiverIndex);
    expect(p.a.mgr.snapshot(t + 10).peers[0]!.sessionAgeMs).toBe(5);
    // ...and the old session's packets still arrive (they sit in the `previous` slot).
    for (const sealed of inFlightToA) expect(deliver(p.a, t + 20, sealed).ok).toBe(true);
    expect(deliver(p.b, t + 20, inFlightToB).ok).toBe(true);
    expect(deliver(p.b, t + 20, fresh).ok).toBe(true);
    expect(deliver(p.a, t + 30, sealOk(p.b, t + 30, text('new b'))).ok).toBe(true);
  });

  it('only the session initiator rekeys on age', () => {
    const p = makePair(4);
    establish(p, 0);
    sealOk(p.b, REKEY_AFTER_TIME_MS + 1, text('from responder'));
    expect(p.b.mgr.pollTransmit()).toBeUndefined();
    expect(p.b.mgr.snapshot(REKEY_AFTER_TIME_MS + 1).peers[0]!.handshakePending).toBe(false);
  });

  it('neither sends nor accepts on a session older than REJECT_AFTER_TIME', () => {
    const p = makePair(5);
    establish(p, 0);
    const old = sealOk(p.b, 1_000, text('late'));
    expect(p.a.mgr.seal(REJECT_AFTER_TIME_MS, 'b', text('x'))).toEqual({ ok: false, reason: 'noSession' });
    expect(deliver(p.a, REJECT_AFTER_TIME_MS, old)).toEqual({ ok: false, reason: 'expiredSession' });
    expect(p.a.mgr.snapshot(REJECT_AFTER_TIME_MS).dataDrops.expiredSession).toBe(1);
  });

  /** Runs a's timers until it gives up (or `untilMs`); the times it sent initiations at, and their distinct bytes. */
  function retries(p: Pair, fromMs: number, untilMs = Infinity): { sentAtMs: number[]; distinct: number; gaveUpAtMs: number | undefined } {
    const sentAtMs: number[] = [];
    const messages = new Set<string>();
    let now = fromMs;
    for (let guard = 0; guard < 200; guard++) {
      for (let t = p.a.mgr.pollTransmit(); t !== undefined; t = p.a.mgr.pollTransmit()) {
        if (t.kind === 'initiation') {
          sentAtMs.push(now);
          messages.add(toHex(t.bytes));
        }
      }
      if (events(p.a).includes('handshakeFailed')) return { sentAtMs, distinct: messages.size, gaveUpAtMs: now };
      now = p.a.mgr.nextDeadlineMs()!;
      if (now > untilMs) break;
      p.a.mgr.handleTimeout(now);
    }
    return { sentAtMs, distinct: messages.size, gaveUpAtMs: undefined };
  }

  it('without a session, retransmits every NO_SESSION_RETRY plus jitter, with fresh ephemerals, for REKEY_ATTEMPT_TIME', () => {
    const p = makePair(6);
    p.a.mgr.connect(0, 'b');
    const { sentAtMs, distinct, gaveUpAtMs } = retries(p, 0);
    expect(distinct).toBe(sentAtMs.length);
    for (let i = 1; i < sentAtMs.length; i++) {
      const gap = sentAtMs[i]! - sentAtMs[i - 1]!;
      expect(gap).toBeGreaterThanOrEqual(NO_SESSION_RETRY_MS);
      expect(gap).toBeLessThanOrEqual(NO_SESSION_RETRY_MS + REKEY_TIMEOUT_JITTER_MAX_MS);
    }
    // Retries stop at the first timer REKEY_ATTEMPT_TIME after the first initiation, as WireGuard's.
    expect(sentAtMs.at(-1)!).toBeLessThan(REKEY_ATTEMPT_TIME_MS);
    expect(gaveUpAtMs!).toBeGreaterThanOrEqual(REKEY_ATTEMPT_TIME_MS);
    expect(gaveUpAtMs!).toBeLessThanOrEqual(REKEY_ATTEMPT_TIME_MS + NO_SESSION_RETRY_MS + REKEY_TIMEOUT_JITTER_MAX_MS);
    expect(p.a.mgr.snapshot(gaveUpAtMs!).peers[0]!.handshakePending).toBe(false);
    // After giving up, the only timer left erases keys later.
    expect(p.a.mgr.nextDeadlineMs()).toBe(gaveUpAtMs! + 3 * REJECT_AFTER_TIME_MS);
  });

  it('a rekey whose session still works retransmits every REKEY_TIMEOUT plus jitter; once the session expires, every NO_SESSION_RETRY', () => {
    const p = makePair(7);
    establish(p, 0);
    const t = REKEY_AFTER_TIME_MS + 1;
    sealOk(p.a, t, text('starts the rekey')); // a initiated the session: it rekeys on age; b never answers
    const { sentAtMs } = retries(p, t, REJECT_AFTER_TIME_MS + 20_000);
    const gaps = sentAtMs.slice(1).map((at, i) => ({ at, gap: at - sentAtMs[i]! }));
    const working = gaps.filter((g) => g.at < REJECT_AFTER_TIME_MS);
    const expired = gaps.filter((g) => g.at - g.gap >= REJECT_AFTER_TIME_MS);
    expect(working.length).toBeGreaterThanOrEqual(10);
    for (const g of working) expect(g.gap).toBeGreaterThanOrEqual(REKEY_TIMEOUT_MS);
    for (const g of working) expect(g.gap).toBeLessThanOrEqual(REKEY_TIMEOUT_MS + REKEY_TIMEOUT_JITTER_MAX_MS);
    expect(expired.length).toBeGreaterThanOrEqual(5);
    for (const g of expired) expect(g.gap).toBeLessThanOrEqual(NO_SESSION_RETRY_MS + REKEY_TIMEOUT_JITTER_MAX_MS);
  });

  it('a session the caller marks stalled retries every NO_SESSION_RETRY until a new one replaces it', () => {
    const p = makePair(8);
    establish(p, 0);
    p.a.mgr.connect(5_000, 'b', true); // every path DOWN: the peer restarted, or the network is out
    const lost = retries(p, 5_000, 14_000).sentAtMs;
    expect(lost.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < lost.length; i++) expect(lost[i]! - lost[i - 1]!).toBeLessThanOrEqual(NO_SESSION_RETRY_MS + REKEY_TIMEOUT_JITTER_MAX_MS);
    // The peer answers: a new session, and a plain rekey of it no longer hurries.
    p.a.mgr.connect(20_000, 'b');
    pump(p, 20_000);
    expect(p.a.mgr.snapshot(20_000).peers[0]!.sessionAgeMs).toBe(0);
    p.a.mgr.connect(30_000, 'b');
    const rekey = retries(p, 30_000, 50_000).sentAtMs;
    expect(rekey.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < rekey.length; i++) expect(rekey[i]! - rekey[i - 1]!).toBeGreaterThanOrEqual(REKEY_TIMEOUT_MS);
  });

  it('limits initiations to one per retry interval however much traffic wants one', () => {
    const p = makePair(7);
    const sentAtMs: number[] = [];
    for (let t = 0; t < 3 * NO_SESSION_RETRY_MS; t += 100) {
      p.a.mgr.seal(t, 'b', text('queued'));
      for (let x = p.a.mgr.pollTransmit(); x !== undefined; x = p.a.mgr.pollTransmit()) if (x.kind === 'initiation') sentAtMs.push(t);
    }
    expect(sentAtMs).toEqual([0, NO_SESSION_RETRY_MS, 2 * NO_SESSION_RETRY_MS]);
  });

  it('a copy of the initiation it answered last, from anywhere, gets the timed resends too (VOPR seed 94000463)', () => {
    const p = makePair(9);
    p.a.mgr.connect(0, 'b');
    const initiation = p.a.mgr.pollTransmit()!;
    if (initiation.kind !== 'initiation') throw new Error('expected an initiation');
    // An attacker on another path races a copy in first: the response goes there, not to a.
    const elsewhere = 'elsewhere' as unknown as Name;
    p.b.mgr.handleHandshake(0, elsewhere, '203.0.113.66:7023', initiation.bytes);
    const first = p.b.mgr.pollTransmit();
    if (first?.kind !== 'reply') throw new Error('expected a response');
    expect(first.to).toBe(elsewhere);
    // The real initiation, a moment later, is a replay to b: nothing now, no new state...
    p.b.mgr.handleHandshake(30, 'a', 'a:1', initiation.bytes);
    expect(p.b.mgr.pollTransmit()).toBeUndefined();
    expect(p.b.mgr.snapshot(30).handshakeDrops.replayedTimestamp).toBe(1);
    // ...and the response's timed resend, still unconfirmed, goes to both.
    p.b.mgr.handleTimeout(AWAIT_CONFIRMATION_MS);
    const resent: CryptoTransmit<Name>[] = [];
    for (let t = p.b.mgr.pollTransmit(); t !== undefined; t = p.b.mgr.pollTransmit()) resent.push(t);
    expect(resent.map((t) => (t.kind === 'reply' ? t.to : t.kind))).toEqual([elsewhere, 'a']);
    const toA = resent[1]!;
    if (toA.kind !== 'reply') throw new Error('expected a response');
    expect(toHex(toA.bytes)).toBe(toHex(first.bytes));
    // a completes the handshake with it, and b's session is confirmed by a's first packet.
    p.a.mgr.handleHandshake(AWAIT_CONFIRMATION_MS + 30, 'b', 'b:1', toA.bytes);
    const sealed = p.a.mgr.seal(AWAIT_CONFIRMATION_MS + 31, 'b', text('hello'));
    if (!sealed.ok) throw new Error('a has no session');
    expect(p.b.mgr.open(AWAIT_CONFIRMATION_MS + 60, sealed.receiverIndex, sealed.counter, sealed.ciphertext).ok).toBe(true);

    // A multipath initiator's copies on its other links, confirmed within an RTT: not one extra answer.
    const q = makePair(10);
    q.a.mgr.connect(0, 'b');
    const init2 = q.a.mgr.pollTransmit()!;
    if (init2.kind !== 'initiation') throw new Error('expected an initiation');
    q.b.mgr.handleHandshake(0, 'a', 'a:1', init2.bytes);
    const response = q.b.mgr.pollTransmit()!;
    for (let k = 0; k < 5; k++) q.b.mgr.handleHandshake(10 + k, elsewhere, 'x:1', init2.bytes);
    if (response.kind !== 'reply') throw new Error('expected a response');
    q.a.mgr.handleHandshake(20, 'b', 'b:1', response.bytes);
    const s2 = q.a.mgr.seal(21, 'b', text('hi'));
    if (!s2.ok) throw new Error('a has no session');
    expect(q.b.mgr.open(40, s2.receiverIndex, s2.counter, s2.ciphertext).ok).toBe(true);
    for (let t = 0; t <= 4 * AWAIT_CONFIRMATION_MS; t += 100) q.b.mgr.handleTimeout(t);
    expect(q.b.mgr.pollTransmit()).toBeUndefined();
  });

  it('refuses a replayed initiation and one arriving too soon after the last', () => {
    const p = makePair(8);
    p.a.mgr.connect(0, 'b');
    const initiation = p.a.mgr.pollTransmit()!;
    if (initiation.kind !== 'initiation') throw new Error('expected an initiation');
    p.b.mgr.handleHandshake(0, 'a', 'a:1', initiation.bytes);
    expect(p.b.mgr.pollTransmit()?.kind).toBe('reply');
    p.b.mgr.handleHandshake(60_000, 'a', 'a:1', initiation.bytes);
    expect(p.b.mgr.pollTransmit()).toBeUndefined();
    expect(p.b.mgr.snapshot(60_000).handshakeDrops.replayedTimestamp).toBe(1);

    const fresh = (nowMs: number) =>
      createInitiation({
        local: p.keys.a,
        remoteStatic: p.keys.b.publicKey,
        prologue: BRAID_PROLOGUE,
        senderIndex: 77,
        nowMs,
        wallClockEpochMs: EPOCH_MS,
        ciphers: { preferred: 'chacha20-poly1305', accepted: ['chacha20-poly1305'] },
        cookie: null,
        rng: p.rng,
      })!.message;
    p.b.mgr.handleHandshake(100_000, 'a', 'a:1', fresh(100_000));
    p.b.mgr.handleHandshake(100_010, 'a', 'a:1', fresh(100_100)); // newer timestamp, but 10 ms later
    expect(p.b.mgr.snapshot(100_010).handshakeDrops.initiationFlood).toBe(1);
  });

  it('under load answers with a cookie first, and accepts the retry that carries mac2', () => {
    const p = makePair(9, { bUnderLoadPerSecond: 0 });
    p.a.mgr.connect(0, 'b');
    pump(p, 0);
    expect(p.b.mgr.snapshot(0).handshakeDrops.cookieRequired).toBe(1);
    expect(events(p.b)).toEqual(['underLoad']);
    expect(p.a.mgr.snapshot(0).peers[0]!.hasSession).toBe(false);
    const retryAt = p.a.mgr.nextDeadlineMs()!;
    expect(retryAt).toBeLessThanOrEqual(REKEY_TIMEOUT_MS + REKEY_TIMEOUT_JITTER_MAX_MS);
    p.a.mgr.handleTimeout(retryAt);
    pump(p, retryAt);
    expect(p.a.mgr.snapshot(retryAt).peers[0]!.hasSession).toBe(true);
    expect(p.b.mgr.snapshot(retryAt).peers[0]!.hasSession).toBe(true);
    expect(p.b.mgr.snapshot(retryAt).handshakeDrops.cookieRequired).toBe(1);
  });

  it('spends no state and sends nothing on garbage handshakes, and never throws', () => {
    const p = makePair(10);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.nat({ max: 2 }), (bytes, type) => {
        if (bytes.length >= 4) {
          bytes[0] = type + 1;
          bytes[1] = bytes[2] = bytes[3] = 0;
        }
        p.b.mgr.handleHandshake(0, 'a', 'x:1', bytes);
        expect(p.b.mgr.pollTransmit()).toBeUndefined();
      }),
    );
    const garbage = new Uint8Array(156);
    p.rng.fillBytes(garbage);
    garbage.set([1, 0, 0, 0]);
    p.b.mgr.handleHandshake(0, 'a', 'x:1', garbage);
    expect(p.b.mgr.snapshot(0).handshakeDrops.badMac1).toBeGreaterThan(0);
    expect(p.b.mgr.nextDeadlineMs()).toBeUndefined();
  });

  it('drops tampered, replayed, unknown and malformed data without throwing', () => {
    const p = makePair(11);
    establish(p, 0);
    const sealed = sealOk(p.a, 1, text('payload'));
    const tampered = sealed.ciphertext.slice();
    tampered[0]! ^= 1;
    expect(p.b.mgr.open(1, sealed.receiverIndex, sealed.counter, tampered)).toEqual({ ok: false, reason: 'authFailed' });
    expect(p.b.mgr.open(1, sealed.receiverIndex, sealed.counter + 1, sealed.ciphertext)).toEqual({ ok: false, reason: 'authFailed' });
    expect(deliver(p.b, 1, sealed).ok).toBe(true); // a forgery did not burn the genuine counter
    expect(deliver(p.b, 1, sealed)).toEqual({ ok: false, reason: 'replayed' });
    expect(p.b.mgr.open(1, (sealed.receiverIndex + 1) >>> 0, 0, sealed.ciphertext)).toEqual({ ok: false, reason: 'unknownIndex' });
    expect(p.b.mgr.open(1, 0, 0, sealed.ciphertext)).toEqual({ ok: false, reason: 'unknownIndex' });
    expect(p.b.mgr.open(1, sealed.receiverIndex, 2 ** 60, sealed.ciphertext)).toEqual({ ok: false, reason: 'badCounter' });
    expect(p.b.mgr.snapshot(1).dataDrops).toEqual({ badCounter: 1, unknownIndex: 2, expiredSession: 0, replayed: 1, authFailed: 2 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.double(), (bytes, counter) => {
        expect(p.b.mgr.open(1, sealed.receiverIndex, counter, bytes).ok).toBe(false);
      }),
    );
  });

  // The shell's receive slabs are scratch, so `braid up` opens over the ciphertext (no allocation).
  const inPlaceBackends: [string, AeadFactory | undefined][] = [['node:crypto', nodeCryptoAeadFactory], ['native', nativeAeadFactory()?.factory]];
  for (const [backend, aead] of inPlaceBackends) {
    it(`openInPlace (${backend}): the plaintext is the datagram's own bytes, and forgeries still fail`, () => {
      if (aead === undefined) {
        console.log('native addon not built: the node:crypto case covers openInPlace');
        return;
      }
      const p = makePair(12, { bOpenInPlace: true, aead });
      establish(p, 0);
      // A datagram in a bigger receive slab: the ciphertext is a view at an offset, as from the shell.
      const sealed = sealOk(p.a, 1, text('payload in place'));
      const slab = new Uint8Array(256).fill(0xee);
      slab.set(sealed.ciphertext, 40);
      const datagram = slab.subarray(40, 40 + sealed.ciphertext.length);
      const tampered = slab.slice(40, 40 + sealed.ciphertext.length);
      tampered[3]! ^= 1;
      expect(p.b.mgr.open(1, sealed.receiverIndex, sealed.counter, tampered)).toEqual({ ok: false, reason: 'authFailed' });
      const opened = p.b.mgr.open(1, sealed.receiverIndex, sealed.counter, datagram);
      if (!opened.ok) throw new Error(`open failed: ${opened.reason}`);
      expect(new TextDecoder().decode(opened.plaintext)).toBe('payload in place');
      expect(opened.plaintext.buffer).toBe(slab.buffer);
      expect(opened.plaintext.byteOffset).toBe(40);
      expect(slab[39]).toBe(0xee); // nothing outside the datagram was written
      expect(slab[40 + sealed.ciphertext.length]).toBe(0xee);
      // Without the option the plaintext is memory of its own (the World and tests reuse datagrams).
      const q = makePair(13, { aead });
      establish(q, 0);
      const s2 = sealOk(q.a, 1, text('copy'));
      const o2 = deliver(q.b, 1, s2);
      expect(o2.ok && o2.plaintext.buffer !== s2.ciphertext.buffer).toBe(true);
      expect(o2.ok && new TextDecoder().decode(o2.plaintext)).toBe('copy');
    });
  }

  it('accepts reordered packets across a wide window (multipath)', () => {
    const p = makePair(12);
    establish(p, 0);
    const packets = Array.from({ length: 3000 }, (_, i) => sealOk(p.a, 1, text(`p${i}`)));
    const order = packets.map((_, i) => i).sort((x, y) => ((x * 7919) % 3001) - ((y * 7919) % 3001));
    for (const i of order) expect(deliver(p.b, 2, packets[i]!).ok).toBe(true);
  });

  it('both sides initiating at once still ends with working sessions', () => {
    const p = makePair(13);
    p.a.mgr.connect(0, 'b');
    p.b.mgr.connect(0, 'a');
    pump(p, 0);
    for (let t = 1; t < 4; t++) {
      expect(deliver(p.b, t, sealOk(p.a, t, text('ab'))).ok).toBe(true);
      expect(deliver(p.a, t, sealOk(p.b, t, text('ba'))).ok).toBe(true);
    }
  });

  it('asks for a keepalive when data arrived and nothing went back for KEEPALIVE_TIMEOUT', () => {
    const p = makePair(14);
    establish(p, 0);
    expect(deliver(p.b, 100, sealOk(p.a, 100, text('one-way'))).ok).toBe(true);
    expect(p.b.mgr.nextDeadlineMs()).toBe(100 + KEEPALIVE_TIMEOUT_MS);
    p.b.mgr.handleTimeout(100 + KEEPALIVE_TIMEOUT_MS);
    expect(p.b.mgr.pollTransmit()).toEqual({ kind: 'keepalive', peerId: 'a' });
  });

  it('starts a new handshake when data sent gets no answer for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT', () => {
    const p = makePair(15);
    establish(p, 0);
    sealOk(p.a, 1_000, text('anyone there?'));
    const deadline = p.a.mgr.nextDeadlineMs()!;
    expect(deadline).toBeGreaterThanOrEqual(1_000 + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS);
    expect(deadline).toBeLessThanOrEqual(1_000 + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS + REKEY_TIMEOUT_JITTER_MAX_MS);
    p.a.mgr.handleTimeout(deadline);
    expect(p.a.mgr.pollTransmit()?.kind).toBe('initiation');
  });

  it('erases keys after 3 x REJECT_AFTER_TIME without a new session', () => {
    const p = makePair(16);
    establish(p, 0);
    const sealed = sealOk(p.a, 1, text('x'));
    expect(p.b.mgr.nextDeadlineMs()).toBe(3 * REJECT_AFTER_TIME_MS);
    p.b.mgr.handleTimeout(3 * REJECT_AFTER_TIME_MS);
    expect(events(p.b)).toContain('keysZeroed');
    expect(deliver(p.b, 3 * REJECT_AFTER_TIME_MS, sealed)).toEqual({ ok: false, reason: 'unknownIndex' });
  });

  it('negotiates AES-256-GCM when both sides prefer it', () => {
    const p = makePair(17, { ciphers: { preferred: 'aes-256-gcm', accepted: ['aes-256-gcm', 'chacha20-poly1305'] } });
    establish(p, 0);
    expect(p.a.mgr.snapshot(0).peers[0]!.cipher).toBe('aes-256-gcm');
    expect(deliver(p.b, 1, sealOk(p.a, 1, text('gcm'))).ok).toBe(true);
  });

  it('is deterministic for a seed (same bytes on the wire), and differs across seeds', () => {
    const run = (seed: number): string => {
      const p = makePair(seed);
      establish(p, 0);
      deliver(p.b, 1, sealOk(p.a, 1, text('x')));
      p.a.mgr.seal(REKEY_AFTER_TIME_MS + 5, 'b', text('y'));
      pump(p, REKEY_AFTER_TIME_MS + 5);
      return p.wire.join('\n');
    };
    expect(run(99)).toBe(run(99));
    expect(run(99)).not.toBe(run(100));
  });

  it('removes a peer with all its sessions', () => {
    const p = makePair(18);
    establish(p, 0);
    const sealed = sealOk(p.a, 1, text('x'));
    p.b.mgr.removePeer('a');
    expect(deliver(p.b, 1, sealed)).toEqual({ ok: false, reason: 'unknownIndex' });
    expect(p.b.mgr.snapshot(1).peers).toEqual([]);
    expect(p.b.mgr.seal(1, 'a', text('x'))).toEqual({ ok: false, reason: 'unknownPeer' });
  });

  it('rejects bad peer configuration with typed errors', () => {
    const p = makePair(19);
    expect(() => p.a.mgr.addPeer('b', p.keys.b.publicKey)).toThrow(/configured twice/);
    expect(() => p.a.mgr.addPeer('c', p.keys.b.publicKey)).toThrow(/same public key/);
    expect(() => p.a.mgr.addPeer('d', new Uint8Array(31))).toThrow(/32 bytes/);
  });
});
