import { describe, expect, it } from 'vitest';
import { keyPairFromPrivate } from '../../../src/core/crypto/keys.ts';
import { NOISE_PROTOCOL_NAME, NoiseIkHandshake } from '../../../src/core/crypto/noise.ts';
import { AeadSession } from '../../../src/core/crypto/transport.ts';
import { hex, ScriptedRng, toHex } from './helpers.ts';
import { CACOPHONY_IK_25519_CHACHAPOLY_BLAKE2S as V } from './vectors.ts';

const EMPTY = new Uint8Array(0);

describe('Noise_IK_25519_ChaChaPoly_BLAKE2s against the cacophony test vector', () => {
  it('is the protocol the vector names', () => {
    expect(V.protocolName).toBe(NOISE_PROTOCOL_NAME);
  });

  it('derives the responder public key the vector lists as the initiator pre-message', () => {
    expect(toHex(keyPairFromPrivate(hex(V.respStatic)).publicKey)).toBe(V.initRemoteStatic);
  });

  it('produces every handshake and transport ciphertext byte for byte, and reads them back', () => {
    const initiatorStatic = keyPairFromPrivate(hex(V.initStatic));
    const responderStatic = keyPairFromPrivate(hex(V.respStatic));
    const initiator = NoiseIkHandshake.initiator(initiatorStatic, hex(V.initRemoteStatic), hex(V.initPrologue));
    const responder = NoiseIkHandshake.responder(responderStatic, hex(V.respPrologue));
    const [m0, m1, m2, m3, m4, m5] = V.messages;

    const c0 = initiator.writeMessage(hex(m0!.payload), new ScriptedRng(hex(V.initEphemeral)));
    expect(c0 && toHex(c0)).toBe(m0!.ciphertext);
    const p0 = responder.readMessage(hex(m0!.ciphertext));
    expect(p0 && toHex(p0)).toBe(m0!.payload);
    expect(toHex(responder.remoteStatic!)).toBe(toHex(initiatorStatic.publicKey));

    const c1 = responder.writeMessage(hex(m1!.payload), new ScriptedRng(hex(V.respEphemeral)));
    expect(c1 && toHex(c1)).toBe(m1!.ciphertext);
    const p1 = initiator.readMessage(hex(m1!.ciphertext));
    expect(p1 && toHex(p1)).toBe(m1!.payload);
    expect(toHex(initiator.handshakeHash)).toBe(toHex(responder.handshakeHash));

    const initiatorKeys = initiator.split()!;
    const responderKeys = responder.split()!;
    const iSend = new AeadSession(initiatorKeys.sendKey, 'chacha20-poly1305');
    const iRecv = new AeadSession(initiatorKeys.receiveKey, 'chacha20-poly1305');
    const rSend = new AeadSession(responderKeys.sendKey, 'chacha20-poly1305');
    const rRecv = new AeadSession(responderKeys.receiveKey, 'chacha20-poly1305');
    // Transport messages alternate directions; each direction counts its own nonces from 0.
    const transport: [AeadSession, AeadSession, number, typeof m2][] = [
      [iSend, rRecv, 0, m2],
      [rSend, iRecv, 0, m3],
      [iSend, rRecv, 1, m4],
      [rSend, iRecv, 1, m5],
    ];
    for (const [sender, receiver, nonce, m] of transport) {
      expect(toHex(sender.seal(nonce, hex(m!.payload), EMPTY))).toBe(m!.ciphertext);
      const opened = receiver.open(nonce, hex(m!.ciphertext), EMPTY);
      expect(opened && toHex(opened)).toBe(m!.payload);
    }
  });
});
