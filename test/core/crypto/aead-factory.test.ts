// The injectable data AEAD: SessionManager builds every session's AEADs through an AeadFactory
// (options.aead, which the Edge fills from EdgeCryptoConfig.aead; node:crypto otherwise), and
// AeadSession's optional `out` buffer.
import { describe, expect, it } from 'vitest';
import { World } from '../../../sim/world.ts';
import { flowSpec, makePacket } from '../../../sim/packets.ts';
import { Keypair, SessionManager } from '../../../src/core/crypto/handshake-state.ts';
import { generateKeyPair } from '../../../src/core/crypto/keys.ts';
import {
  AEAD_TAG_LENGTH,
  AeadSession,
  nodeCryptoAeadFactory,
  type Aead,
  type AeadFactory,
} from '../../../src/core/crypto/transport.ts';
import type { DataCipher } from '../../../src/core/crypto/types.ts';
import { SeededRng, toHex } from './helpers.ts';

/** A factory that counts what it builds and delegates to node:crypto. */
function countingFactory(): { factory: AeadFactory; built: DataCipher[]; seals: number; disposed: number } {
  const state = { built: [] as DataCipher[], seals: 0, disposed: 0, factory: undefined as unknown as AeadFactory };
  state.factory = (key, cipher) => {
    state.built.push(cipher);
    const inner = new AeadSession(key, cipher);
    const aead: Aead = {
      cipher,
      seal: (counter, plaintext, aad, out) => {
        state.seals++;
        return inner.seal(counter, plaintext, aad, out);
      },
      sealAt: (counter, buf, offset, length, aad) => {
        state.seals++;
        inner.sealAt(counter, buf, offset, length, aad);
      },
      open: (counter, ciphertext, aad, out) => inner.open(counter, ciphertext, aad, out),
      dispose: () => void state.disposed++,
    };
    return aead;
  };
  return state;
}

function connectedPair(options: { aead?: AeadFactory } = {}): { a: SessionManager<string>; b: SessionManager<string> } {
  const rng = new SeededRng(11);
  const keys = { a: generateKeyPair(rng), b: generateKeyPair(rng) };
  const a = new SessionManager<string>({ local: keys.a, rng: rng.fork(), wallClockEpochMs: 1_700_000_000_000, ...options });
  const b = new SessionManager<string>({ local: keys.b, rng: rng.fork(), wallClockEpochMs: 1_700_000_000_000 });
  a.addPeer('b', keys.b.publicKey);
  b.addPeer('a', keys.a.publicKey);
  a.seal(0, 'b', new Uint8Array(0));
  const init = a.pollTransmit() as { bytes: Uint8Array };
  b.handleHandshake(0, 'a', 'a:1', init.bytes);
  const reply = b.pollTransmit() as { bytes: Uint8Array };
  a.handleHandshake(0, 'b', 'b:1', reply.bytes);
  return { a, b };
}

describe('AeadFactory injection', () => {
  it('nodeCryptoAeadFactory builds AeadSessions', () => {
    expect(nodeCryptoAeadFactory(new Uint8Array(32), 'aes-256-gcm')).toBeInstanceOf(AeadSession);
  });

  it('SessionManager builds its sessions with options.aead', () => {
    const counting = countingFactory();
    const { a, b } = connectedPair({ aead: counting.factory });
    expect(counting.built).toEqual(['chacha20-poly1305', 'chacha20-poly1305']); // send + receive
    const sealed = a.seal(1, 'b', new Uint8Array([1, 2, 3]));
    expect(sealed.ok).toBe(true);
    expect(counting.seals).toBe(1);
    if (!sealed.ok) return;
    const opened = b.open(1, sealed.receiverIndex, sealed.counter, sealed.ciphertext);
    expect(opened.ok && toHex(opened.plaintext)).toBe('010203');
  });

  it('each Edge uses the factory in its own crypto config (no process-wide choice)', () => {
    const counting = countingFactory();
    // Two Worlds in one process: one given the counting factory, one not.
    const withFactory = new World({ seed: 3, links: [{ name: 'l0', delayMs: 5 }], aead: counting.factory });
    const without = new World({ seed: 3, links: [{ name: 'l0', delayMs: 5 }] });
    const run = (w: World): void => {
      w.every(20, { startMs: 100, untilMs: 1000 }, (i) => w.a.sendTun(makePacket({ ...flowSpec(1, 200, 46), seq: i })));
      w.run(1500);
    };
    run(withFactory);
    const built = counting.built.length;
    const seals = counting.seals;
    expect(built).toBeGreaterThanOrEqual(4); // both Edges, send + receive each (a crossed handshake makes more)
    expect(seals).toBeGreaterThan(40); // its data packets (and probes) went through it
    run(without);
    expect(counting.built.length).toBe(built); // the other World's Edges never touched it
    expect(counting.seals).toBe(seals);
    expect(withFactory.b.deliveredCount).toBe(without.b.deliveredCount);
    expect(without.b.deliveredCount).toBeGreaterThan(40);
  });

  it('a session forgotten for good disposes its AEADs (native keys freed now, not at GC)', () => {
    const counting = countingFactory();
    const { a } = connectedPair({ aead: counting.factory });
    expect(counting.built.length).toBe(2);
    expect(counting.disposed).toBe(0);
    a.removePeer('b');
    expect(counting.disposed).toBe(2); // send + receive of the one session
  });

  it('Keypair wipes the raw keys once the factory has made its AEADs', () => {
    const counting = countingFactory();
    const sendKey = new Uint8Array(32).fill(1);
    const receiveKey = new Uint8Array(32).fill(2);
    const kp = new Keypair(
      { localIndex: 1, remoteIndex: 2, cipher: 'aes-256-gcm', isInitiator: true, sendKey, receiveKey, remoteStatic: new Uint8Array(32), handshakeHash: new Uint8Array(32) },
      0,
      counting.factory,
    );
    expect(kp.sender.cipher).toBe('aes-256-gcm');
    expect(sendKey.every((b) => b === 0) && receiveKey.every((b) => b === 0)).toBe(true);
  });
});

describe('AeadSession out buffer', () => {
  const key = new Uint8Array(32).fill(9);
  const aad = new Uint8Array(16);

  it('seals into out (also in place) and opens into out, byte-identical to the allocating calls', () => {
    const s = new AeadSession(key, 'chacha20-poly1305');
    const plaintext = new Uint8Array(100).map((_, i) => i);
    const expected = toHex(s.seal(4, plaintext, aad));
    const out = new Uint8Array(200);
    const sealed = s.seal(4, plaintext, aad, out);
    expect(sealed.buffer).toBe(out.buffer);
    expect(toHex(sealed)).toBe(expected);
    const inPlace = new Uint8Array(100 + AEAD_TAG_LENGTH);
    inPlace.set(plaintext);
    expect(toHex(s.seal(4, inPlace.subarray(0, 100), aad, inPlace))).toBe(expected);
    const opened = s.open(4, sealed, aad, new Uint8Array(100));
    expect(toHex(opened!)).toBe(toHex(plaintext));
    expect(() => s.seal(5, plaintext, aad, new Uint8Array(115))).toThrow(RangeError);
    expect(() => s.open(4, sealed, aad, new Uint8Array(99))).toThrow(RangeError);
  });
});
