import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mac1Key, writeMacs } from '../../../src/core/crypto/cookie.ts';
import { generateKeyPair, type X25519KeyPair } from '../../../src/core/crypto/keys.ts';
import {
  BRAID_PROLOGUE,
  compareTimestamps,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  INITIATION_LENGTH,
  peekMessageType,
  RESPONSE_LENGTH,
  tai64n,
  type CipherPolicy,
  type ConsumeInitiationResult,
  type HandshakeFailure,
  type ReceivedInitiation,
} from '../../../src/core/crypto/noise.ts';
import { AeadSession } from '../../../src/core/crypto/transport.ts';
import { CIPHER_FLAG_AES, CIPHER_FLAG_AUTO, CIPHER_FLAG_NEGOTIATES, chooseCipher, cipherPolicy } from '../../../src/core/crypto/cipher-choice.ts';
import { SeededRng, toHex } from './helpers.ts';

const BOTH: CipherPolicy = { preferred: 'chacha20-poly1305', accepted: ['chacha20-poly1305', 'aes-256-gcm'] };
const EPOCH_MS = 1_700_000_000_000;

interface Setup {
  rng: SeededRng;
  alice: X25519KeyPair; // initiator
  bob: X25519KeyPair; // responder
}

function setup(seed = 1): Setup {
  const rng = new SeededRng(seed);
  return { rng, alice: generateKeyPair(rng), bob: generateKeyPair(rng) };
}

function initiate(s: Setup, options: { ciphers?: CipherPolicy; remoteStatic?: Uint8Array; local?: X25519KeyPair; nowMs?: number } = {}) {
  const created = createInitiation({
    local: options.local ?? s.alice,
    remoteStatic: options.remoteStatic ?? s.bob.publicKey,
    prologue: BRAID_PROLOGUE,
    senderIndex: 0x1111,
    nowMs: options.nowMs ?? 0,
    wallClockEpochMs: EPOCH_MS,
    ciphers: options.ciphers ?? BOTH,
    cookie: null,
    rng: s.rng,
  });
  if (created === null) throw new Error('createInitiation failed');
  return created;
}

function respond(
  s: Setup,
  message: Uint8Array,
  options: { ciphers?: CipherPolicy; authorize?: (i: ReceivedInitiation) => HandshakeFailure | null; local?: X25519KeyPair; prologue?: Uint8Array } = {},
): ConsumeInitiationResult {
  return consumeInitiation({
    local: options.local ?? s.bob,
    prologue: options.prologue ?? BRAID_PROLOGUE,
    message,
    responderIndex: 0x2222,
    ciphers: options.ciphers ?? BOTH,
    rng: s.rng,
    authorize: options.authorize ?? ((i) => (toHex(i.remoteStatic) === toHex(s.alice.publicKey) ? null : 'unknownPeer')),
  });
}

describe('handshake messages', () => {
  it('complete a round trip with matching, crosswise transport keys and indices', () => {
    const s = setup();
    const { message, pending } = initiate(s);
    expect(message.length).toBe(INITIATION_LENGTH);
    expect(peekMessageType(message)).toBe(1);
    const responded = respond(s, message);
    if (!responded.ok) throw new Error(responded.reason);
    expect(responded.response.length).toBe(RESPONSE_LENGTH);
    expect(toHex(responded.initiation.remoteStatic)).toBe(toHex(s.alice.publicKey));
    const completed = consumeResponse(pending, responded.response);
    if (!completed.ok) throw new Error(completed.reason);
    const i = completed.keys;
    const r = responded.keys;
    expect(toHex(i.sendKey)).toBe(toHex(r.receiveKey));
    expect(toHex(i.receiveKey)).toBe(toHex(r.sendKey));
    expect(toHex(i.sendKey)).not.toBe(toHex(i.receiveKey));
    expect(toHex(i.handshakeHash)).toBe(toHex(r.handshakeHash));
    expect([i.localIndex, i.remoteIndex, r.localIndex, r.remoteIndex]).toEqual([0x1111, 0x2222, 0x2222, 0x1111]);
    expect([i.isInitiator, r.isInitiator]).toEqual([true, false]);
    expect(i.cipher).toBe('chacha20-poly1305');
    // And the keys actually carry data both ways.
    const aad = new Uint8Array(16);
    const data = new TextEncoder().encode('hello branch');
    const sealed = new AeadSession(i.sendKey, i.cipher).seal(0, data, aad);
    expect(toHex(new AeadSession(r.receiveKey, r.cipher).open(0, sealed, aad)!)).toBe(toHex(data));
  });

  it('gives different sessions for different ephemeral keys (forward secrecy per handshake)', () => {
    const s = setup();
    const first = respond(s, initiate(s).message);
    const second = respond(s, initiate(s).message);
    if (!first.ok || !second.ok) throw new Error('handshake failed');
    expect(toHex(first.keys.sendKey)).not.toBe(toHex(second.keys.sendKey));
  });

  it('negotiates the data cipher', () => {
    const s = setup();
    const aesFirst: CipherPolicy = { preferred: 'aes-256-gcm', accepted: ['aes-256-gcm', 'chacha20-poly1305'] };
    const chachaOnly: CipherPolicy = { preferred: 'chacha20-poly1305', accepted: ['chacha20-poly1305'] };
    const aesOnly: CipherPolicy = { preferred: 'aes-256-gcm', accepted: ['aes-256-gcm'] };
    const run = (initiator: CipherPolicy, responder: CipherPolicy) => {
      const { message, pending } = initiate(s, { ciphers: initiator });
      const r = respond(s, message, { ciphers: responder });
      if (!r.ok) return r.reason;
      const i = consumeResponse(pending, r.response);
      return i.ok ? i.keys.cipher : i.reason;
    };
    // Explicit settings on both ends (cipher-choice.ts): equal ones hold, different ones give
    // ChaCha20-Poly1305 whoever initiates (before, the initiator's preference won).
    expect(run(aesFirst, aesFirst)).toBe('aes-256-gcm');
    expect(run(aesFirst, BOTH)).toBe('chacha20-poly1305');
    expect(run(BOTH, aesFirst)).toBe('chacha20-poly1305');
    expect(run(aesFirst, chachaOnly)).toBe('chacha20-poly1305');
    expect(run(chachaOnly, aesOnly)).toBe('noCommonCipher');
  });

  it('cipher: auto takes AES-256-GCM only when both ends have AES instructions; an explicit setting wins over auto', () => {
    const s = setup();
    const run = (initiator: CipherPolicy, responder: CipherPolicy): string => {
      const { message, pending } = initiate(s, { ciphers: initiator });
      const r = respond(s, message, { ciphers: responder });
      if (!r.ok) return r.reason;
      const i = consumeResponse(pending, r.response);
      if (!i.ok) return i.reason;
      // Both ends agree, and each says why in its own words.
      expect(i.keys.cipher).toBe(r.keys.cipher);
      return `${i.keys.cipher} | ${i.keys.cipherWhy} | ${r.keys.cipherWhy}`;
    };
    const autoAes = cipherPolicy('auto', true);
    const autoNoAes = cipherPolicy('auto', false);
    expect(run(autoAes, autoAes)).toBe('aes-256-gcm | auto: both ends have AES instructions | auto: both ends have AES instructions');
    expect(run(autoAes, autoNoAes)).toBe('chacha20-poly1305 | auto: the peer has no AES instructions | auto: this machine has no AES instructions');
    expect(run(autoNoAes, autoAes)).toBe('chacha20-poly1305 | auto: this machine has no AES instructions | auto: the peer has no AES instructions');
    expect(run(autoNoAes, autoNoAes)).toBe('chacha20-poly1305 | auto: neither end has AES instructions | auto: neither end has AES instructions');
    // Explicit beats auto, on either end and whatever the AES instructions.
    expect(run(cipherPolicy('aes-256-gcm', false), autoNoAes)).toBe('aes-256-gcm | set here, the peer is auto | set by the peer, auto here');
    expect(run(autoAes, cipherPolicy('chacha20-poly1305', true))).toBe('chacha20-poly1305 | set by the peer, auto here | set here, the peer is auto');
    expect(run(cipherPolicy('aes-256-gcm', true), cipherPolicy('aes-256-gcm', false))).toBe('aes-256-gcm | set on both ends | set on both ends');
    expect(run(cipherPolicy('aes-256-gcm', true), cipherPolicy('chacha20-poly1305', true))).toBe(
      "chacha20-poly1305 | the ends' cipher settings differ (here aes-256-gcm, the peer chacha20-poly1305): set the same on both, or auto" +
        " | the ends' cipher settings differ (here chacha20-poly1305, the peer aes-256-gcm): set the same on both, or auto",
    );
  });

  it('towards a peer from before cipher: auto (flags byte zero) the old rule holds: the initiator\'s preference', () => {
    const old = 0; // what an old initiator puts in the flags byte (it was a zero pad)
    const mask = (1 << 1) | (1 << 2);
    expect(chooseCipher('aes-256-gcm', mask, old, cipherPolicy('auto', false))?.cipher).toBe('aes-256-gcm');
    expect(chooseCipher('chacha20-poly1305', mask, old, cipherPolicy('auto', true))?.cipher).toBe('chacha20-poly1305');
    expect(chooseCipher('chacha20-poly1305', mask, old, cipherPolicy('aes-256-gcm', true))?.cipher).toBe('chacha20-poly1305');
    // And an auto initiator offers ChaCha20-Poly1305 as its preference, which is what an old responder takes.
    const s = setup();
    const r = respond(s, initiate(s, { ciphers: cipherPolicy('auto', true) }).message);
    if (!r.ok) throw new Error(r.reason);
    expect(r.initiation.preferredCipher).toBe('chacha20-poly1305');
    expect(r.initiation.cipherFlags & (CIPHER_FLAG_NEGOTIATES | CIPHER_FLAG_AUTO | CIPHER_FLAG_AES)).toBe(CIPHER_FLAG_NEGOTIATES | CIPHER_FLAG_AUTO | CIPHER_FLAG_AES);
  });

  it('fails when the initiator uses the wrong responder static key', () => {
    const s = setup();
    const mallory = generateKeyPair(s.rng);
    // mac1 is keyed by the responder's public key, so this stops at the first, cheapest check.
    expect(respond(s, initiate(s, { remoteStatic: mallory.publicKey }).message)).toEqual({ ok: false, reason: 'badMac1' });
    // With mac1 recomputed for bob, the Noise layer itself refuses: es/ss used the wrong key.
    const forged = initiate(s, { remoteStatic: mallory.publicKey }).message;
    writeMacs(forged, mac1Key(s.bob.publicKey), null);
    expect(respond(s, forged)).toEqual({ ok: false, reason: 'decryptFailed' });
    // A responder holding the wrong private key cannot read a correct initiation either.
    const wrongResponder = respond(s, initiate(s).message, { local: { privateKey: mallory.privateKey, publicKey: s.bob.publicKey } });
    expect(wrongResponder).toEqual({ ok: false, reason: 'decryptFailed' });
  });

  it('refuses an initiator whose static key the responder does not know', () => {
    const s = setup();
    const stranger = generateKeyPair(s.rng);
    expect(respond(s, initiate(s, { local: stranger }).message)).toEqual({ ok: false, reason: 'unknownPeer' });
  });

  it('fails on a prologue mismatch (protocol/version binding)', () => {
    const s = setup();
    expect(respond(s, initiate(s).message, { prologue: new TextEncoder().encode('braid overlay v2') })).toEqual({
      ok: false,
      reason: 'decryptFailed',
    });
  });

  it('refuses any single-bit change to an initiation outside mac2, without throwing', () => {
    const s = setup();
    const { message } = initiate(s);
    fc.assert(
      fc.property(fc.nat({ max: INITIATION_LENGTH - 17 }), fc.integer({ min: 0, max: 7 }), (byte, bit) => {
        const tampered = message.slice();
        tampered[byte]! ^= 1 << bit;
        const result = respond(s, tampered);
        expect(result.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses any single-bit change even when the attacker recomputes mac1 (Noise catches it)', () => {
    const s = setup();
    const { message, pending } = initiate(s);
    fc.assert(
      fc.property(fc.nat({ max: INITIATION_LENGTH - 33 }), fc.integer({ min: 0, max: 7 }), (byte, bit) => {
        const tampered = message.slice();
        tampered[byte]! ^= 1 << bit;
        writeMacs(tampered, mac1Key(s.bob.publicKey), null);
        expect(respond(s, tampered).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    const responded = respond(s, message);
    if (!responded.ok) throw new Error(responded.reason);
    fc.assert(
      fc.property(fc.nat({ max: RESPONSE_LENGTH - 33 }), fc.integer({ min: 0, max: 7 }), (byte, bit) => {
        const tampered = responded.response.slice();
        tampered[byte]! ^= 1 << bit;
        writeMacs(tampered, mac1Key(s.alice.publicKey), null);
        expect(consumeResponse(pending, tampered).ok).toBe(false);
      }),
      { numRuns: 200 },
    );
    expect(consumeResponse(pending, responded.response).ok).toBe(true);
  });

  it('refuses tampered indices even with a recomputed mac1 (indices are authenticated)', () => {
    const s = setup();
    const { message } = initiate(s);
    message[4]! ^= 1;
    writeMacs(message, mac1Key(s.bob.publicKey), null);
    expect(respond(s, message)).toEqual({ ok: false, reason: 'indexMismatch' });
  });

  it('refuses a low-order ephemeral key without throwing', () => {
    const s = setup();
    const { message } = initiate(s);
    message.fill(0, 8, 40);
    writeMacs(message, mac1Key(s.bob.publicKey), null);
    expect(respond(s, message)).toEqual({ ok: false, reason: 'decryptFailed' });
  });

  it('survives forged responses: the pending handshake still completes with the genuine one', () => {
    const s = setup();
    const { message, pending } = initiate(s);
    const responded = respond(s, message);
    if (!responded.ok) throw new Error(responded.reason);
    fc.assert(
      fc.property(fc.nat({ max: RESPONSE_LENGTH - 17 }), fc.integer({ min: 0, max: 7 }), (byte, bit) => {
        const tampered = responded.response.slice();
        tampered[byte]! ^= 1 << bit;
        expect(consumeResponse(pending, tampered).ok).toBe(false);
      }),
      { numRuns: 200 },
    );
    // A forged response with a valid mac1 and a random ephemeral: decrypt fails, state untouched.
    const forged = responded.response.slice();
    s.rng.fillBytes(forged.subarray(8, 40));
    writeMacs(forged, mac1Key(s.alice.publicKey), null);
    expect(consumeResponse(pending, forged)).toEqual({ ok: false, reason: 'decryptFailed' });
    expect(consumeResponse(pending, responded.response).ok).toBe(true);
  });

  it('never throws on arbitrary bytes', () => {
    const s = setup();
    const { pending } = initiate(s);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, asType) => {
        if (asType && bytes.length > 0) bytes[0] = 1 + (bytes[0]! % 3);
        expect(respond(s, bytes).ok).toBe(false);
        expect(consumeResponse(pending, bytes).ok).toBe(false);
      }),
    );
  });
});

describe('TAI64N timestamps', () => {
  it('increase with wall-clock time at the whitened (~16.8 ms) granularity', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 42 }), fc.integer({ min: 17, max: 10 ** 9 }), (ms, delta) => {
        expect(compareTimestamps(tai64n(ms), tai64n(ms + delta))).toBeLessThan(0);
        expect(compareTimestamps(tai64n(ms + delta), tai64n(ms))).toBeGreaterThan(0);
      }),
    );
    expect(toHex(tai64n(0))).toBe('400000000000000a00000000');
    expect(toHex(tai64n(1_700_000_000_500))).toBe('400000006553f10a1d000000');
  });
});
