// The native AEAD (src/io/native-aead.ts on the addon's OpenSSL contexts) against node:crypto's
// AeadSession, byte for byte, and against RFC 8439's published ChaCha20-Poly1305 vector.
import { Buffer } from 'node:buffer';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SessionManager } from '../../src/core/crypto/handshake-state.ts';
import { generateKeyPair } from '../../src/core/crypto/keys.ts';
import { AEAD_TAG_LENGTH, AeadSession, DATA_AAD_LENGTH, writeDataAad } from '../../src/core/crypto/transport.ts';
import type { DataCipher } from '../../src/core/crypto/types.ts';
import { SeededRng } from '../../src/core/rng.ts';
import { NativeAead, nativeAeadFactory } from '../../src/io/native-aead.ts';
import { World } from '../../sim/world.ts';
import { flowSpec, makePacket } from '../../sim/packets.ts';
import { nativeLoadError, tryLoadNative } from '../../src/io/native.ts';

const native = tryLoadNative();
const available = native?.aeadAvailable === true;
if (!available) console.warn(`skipping native AEAD tests: ${nativeLoadError()?.message ?? 'this Node exports no EVP symbols'}`);

const CIPHERS: DataCipher[] = ['chacha20-poly1305', 'aes-256-gcm'];
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));

/**
 * RFC 8439 appendix A.5 (ChaCha20-Poly1305 AEAD decryption), copied from the RFC. Its nonce,
 * 00000000 0102030405060708, has our layout (4 zero bytes, 64-bit little-endian counter), so it
 * is counter 0x0807060504030201. (Section 2.8.2's nonce starts 07000000: not expressible.)
 */
const RFC8439_A5 = {
  key: unhex('1c9240a5eb55d38af333888604f6b5f0 473917c1402b80099dca5cbc207075c0'),
  counter: 0x0807060504030201n,
  aad: unhex('f33388860000000000004e91'),
  ciphertext: unhex(`
    64a0861575861af460f062c79be643bd 5e805cfd345cf389f108670ac76c8cb2 4c6cfc18755d43eea09ee94e382d26b0
    bdb7b73c321b0100d4f03b7f355894cf 332f830e710b97ce98c8a84abd0b9481 14ad176e008d33bd60f982b1ff37c855
    9797a06ef4f0ef61c186324e2b350638 3606907b6a7c02b0f9f6157b53c867e4 b9166c767b804d46a59b5216cde7a4e9
    9040c5a40433225ee282a1b0a06c523e af4534d7f83fa1155b0047718cbc546a 0d072b04b3564eea1b422273f548271a
    0bb2316053fa76991955ebd63159434e cebb4e466dae5a1073a6727627097a10 49e617d91d361094fa68f0ff77987130
    305beaba2eda04df997b714d6c6f2c29 a6ad5cb4022b02709b`),
  tag: unhex('eead9d67890cbb22392336fea1851f38'),
  plaintext:
    'Internet-Drafts are draft documents valid for a maximum of six months and may be updated, replaced, or ' +
    'obsoleted by other documents at any time. It is inappropriate to use Internet-Drafts as reference material ' +
    'or to cite them other than as /\u201cwork in progress./\u201d',
};

describe.skipIf(!available)('native AEAD', () => {
  const factory = nativeAeadFactory(native)!.factory;

  it('is offered by nativeAeadFactory with the OpenSSL it runs on', () => {
    expect(nativeAeadFactory(native)?.openssl).toMatch(/^OpenSSL 3\./);
    expect(nativeAeadFactory({ ...native!, aeadAvailable: false })).toBeUndefined();
  });

  it('matches RFC 8439 A.5 both ways (raw addon, bigint counter)', () => {
    const v = RFC8439_A5;
    const handle = native!.aeadCreate(v.key, 'chacha20-poly1305');
    const sealed = new Uint8Array(v.ciphertext.length + AEAD_TAG_LENGTH);
    sealed.set(v.ciphertext);
    sealed.set(v.tag, v.ciphertext.length);
    const out = new Uint8Array(v.ciphertext.length);
    expect(native!.aeadOpen(handle, v.counter, sealed, v.aad, out)).toBe(v.ciphertext.length);
    expect(Buffer.from(out).toString('utf8')).toBe(v.plaintext);
    const resealed = new Uint8Array(sealed.length);
    expect(native!.aeadSeal(handle, v.counter, Buffer.from(v.plaintext, 'utf8'), v.aad, resealed)).toBe(sealed.length);
    expect(hex(resealed)).toBe(hex(sealed));
    // One bit off anywhere in the tag: refused, and the output is wiped.
    sealed[sealed.length - 1]! ^= 1;
    expect(native!.aeadOpen(handle, v.counter, sealed, v.aad, out)).toBe(-1);
    expect(out.every((b) => b === 0)).toBe(true);
  });

  describe.each(CIPHERS)('%s', (cipher) => {
    it('is byte-identical to node:crypto AeadSession on random keys, counters, payloads and AADs', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
          fc.uint8Array({ maxLength: 1600 }),
          fc.uint8Array({ maxLength: 64 }),
          (key, counter, plaintext, aad) => {
            const reference = new AeadSession(key, cipher);
            const fast = factory(key, cipher);
            const sealed = fast.seal(counter, plaintext, aad);
            expect(hex(sealed)).toBe(hex(reference.seal(counter, plaintext, aad)));
            expect(hex(reference.open(counter, sealed, aad)!)).toBe(hex(plaintext));
            expect(hex(fast.open(counter, sealed, aad)!)).toBe(hex(plaintext));
          },
        ),
        { numRuns: 300 },
      );
    });

    it('keeps one context per direction correct across many packets and failed opens', () => {
      const key = randomBytes(32);
      const reference = new AeadSession(key, cipher);
      const sender = factory(key, cipher);
      const receiver = factory(key, cipher);
      const aad = new Uint8Array(DATA_AAD_LENGTH);
      for (let counter = 0; counter < 600; counter++) {
        writeDataAad(aad, 1, 0x01020304, counter);
        const plaintext = randomBytes(counter % 1500);
        const sealed = sender.seal(counter, plaintext, aad);
        expect(hex(sealed)).toBe(hex(reference.seal(counter, plaintext, aad)));
        if (counter % 7 === 0) {
          // A forgery in between must not disturb the context for the next, genuine packet.
          const forged = sealed.slice();
          forged[counter % forged.length]! ^= 0x80;
          expect(receiver.open(counter, forged, aad)).toBeNull();
          expect(receiver.open(counter + 1, sealed, aad)).toBeNull(); // wrong nonce
        }
        expect(hex(receiver.open(counter, sealed, aad)!)).toBe(hex(plaintext));
      }
    });

    it('refuses any single-bit change of ciphertext, tag or AAD', () => {
      const key = randomBytes(32);
      const aead = factory(key, cipher);
      const aad = writeDataAad(new Uint8Array(DATA_AAD_LENGTH), 1, 7, 9);
      const sealed = aead.seal(9, randomBytes(40), aad);
      for (let i = 0; i < sealed.length * 8; i++) {
        const bad = sealed.slice();
        bad[i >> 3]! ^= 1 << (i & 7);
        expect(aead.open(9, bad, aad)).toBeNull();
      }
      for (let i = 0; i < aad.length * 8; i++) {
        const badAad = aad.slice();
        badAad[i >> 3]! ^= 1 << (i & 7);
        expect(aead.open(9, sealed, badAad)).toBeNull();
      }
      expect(aead.open(9, sealed.subarray(0, AEAD_TAG_LENGTH - 1), aad)).toBeNull();
      expect(hex(aead.open(9, sealed, aad)!)).toHaveLength(80);
    });

    it('checks counters like AeadSession: throws on a bad send counter, returns null on a bad receive one', () => {
      const aead = factory(randomBytes(32), cipher);
      const aad = new Uint8Array(DATA_AAD_LENGTH);
      for (const bad of [-1, 0.5, Number.NaN, Infinity, 2 ** 53]) {
        expect(() => aead.seal(bad, new Uint8Array(1), aad)).toThrow(/invalid AEAD send counter/);
      }
      const sealed = aead.seal(3, new Uint8Array(1), aad);
      for (const bad of [-1, 0.5, Number.NaN, 2 ** 64]) expect(aead.open(bad, sealed, aad)).toBeNull();
    });

    it('hands out plain Uint8Arrays that never share memory, or views of a given out', () => {
      const aead = factory(randomBytes(32), cipher);
      const aad = new Uint8Array(DATA_AAD_LENGTH);
      const outputs = Array.from({ length: 40 }, (_, i) => aead.seal(i, new Uint8Array(300).fill(i), aad));
      const before = outputs.map(hex);
      for (const o of outputs) {
        expect(Buffer.isBuffer(o)).toBe(false);
        o.fill(0xee); // must not touch any other output
      }
      outputs.forEach((o, i) => expect(hex(aead.seal(i, new Uint8Array(300).fill(i), aad))).toBe(before[i]));
      const out = new Uint8Array(400);
      const sealed = aead.seal(1, new Uint8Array(10), aad, out);
      expect(sealed.buffer).toBe(out.buffer);
      expect(sealed.length).toBe(10 + AEAD_TAG_LENGTH);
      const opened = aead.open(1, sealed.slice(), aad, out);
      expect(opened?.buffer).toBe(out.buffer);
      expect(opened?.length).toBe(10);
      expect(() => aead.seal(2, new Uint8Array(10), aad, new Uint8Array(25))).toThrow(RangeError);
    });

    it('seals and opens in place through the raw addon', () => {
      const key = randomBytes(32);
      const reference = new AeadSession(key, cipher);
      const handle = native!.aeadCreate(key, cipher);
      const aad = randomBytes(16);
      const plaintext = randomBytes(1000);
      const buf = new Uint8Array(1000 + AEAD_TAG_LENGTH);
      buf.set(plaintext);
      expect(native!.aeadSeal(handle, 5, buf.subarray(0, 1000), aad, buf)).toBe(buf.length);
      expect(hex(buf)).toBe(hex(reference.seal(5, plaintext, aad)));
      expect(native!.aeadOpen(handle, 5, buf, aad, buf)).toBe(1000);
      expect(hex(buf.subarray(0, 1000))).toBe(hex(plaintext));
      // Overlapping but not identical memory is refused rather than silently corrupted.
      expect(() => native!.aeadSeal(handle, 6, buf.subarray(0, 100), aad, buf.subarray(8))).toThrow(/overlaps/);
    });

    it('sealAt seals a range of a bigger buffer in place, byte-identical to seal, and touches nothing else', () => {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 0, maxLength: 1500 }), fc.nat(64), fc.nat(2 ** 40), (plaintext, offset, counter) => {
          const key = new Uint8Array(32).fill(offset + 1);
          const aad = new Uint8Array(16).fill(counter & 0xff);
          const expected = hex(new AeadSession(key, cipher).seal(counter, plaintext, aad));
          for (const aead of [new NativeAead(native!, key, cipher), new AeadSession(key, cipher)]) {
            const buf = new Uint8Array(offset + plaintext.length + AEAD_TAG_LENGTH + 8).fill(0xa5);
            buf.set(plaintext, offset);
            aead.sealAt(counter, buf, offset, plaintext.length, aad);
            expect(hex(buf.subarray(offset, offset + plaintext.length + AEAD_TAG_LENGTH))).toBe(expected);
            expect(buf.subarray(0, offset).every((b) => b === 0xa5)).toBe(true);
            expect(buf.subarray(offset + plaintext.length + AEAD_TAG_LENGTH).every((b) => b === 0xa5)).toBe(true);
          }
        }),
        { numRuns: 60 },
      );
      const handle = native!.aeadCreate(new Uint8Array(32), cipher);
      // No room for the tag, or a range past the end: a programmer error, refused before OpenSSL writes.
      expect(() => native!.aeadSealAt(handle, 1, new Uint8Array(30), 0, 20, new Uint8Array(16))).toThrow(/offset \+ length \+ 16/);
      expect(() => native!.aeadSealAt(handle, 1, new Uint8Array(30), -1, 4, new Uint8Array(16))).toThrow(RangeError);
      expect(() => new NativeAead(native!, new Uint8Array(32), cipher).sealAt(-1, new Uint8Array(40), 0, 4, new Uint8Array(16))).toThrow(/send counter/);
    });

    it('is unusable after dispose, and the raw handle says why', () => {
      const key = randomBytes(32);
      const aead = new NativeAead(native!, key, cipher);
      const aad = new Uint8Array(DATA_AAD_LENGTH);
      const sealed = aead.seal(0, new Uint8Array(4), aad);
      aead.dispose();
      aead.dispose(); // idempotent
      expect(() => aead.seal(1, new Uint8Array(4), aad)).toThrow(/after dispose/);
      expect(aead.open(0, sealed, aad)).toBeNull();
      const handle = native!.aeadCreate(key, cipher);
      native!.aeadDestroy(handle);
      native!.aeadDestroy(handle);
      expect(() => native!.aeadSeal(handle, 0, new Uint8Array(1), aad, new Uint8Array(17))).toThrow(/after aeadDestroy/);
    });
  });

  it('rejects bad keys, ciphers and handles as programmer errors', () => {
    expect(() => native!.aeadCreate(new Uint8Array(31), 'chacha20-poly1305')).toThrow(/32 bytes/);
    expect(() => native!.aeadCreate(new Uint8Array(32), 'aes-128-gcm' as DataCipher)).toThrow(/cipher must be/);
    expect(() => native!.aeadSeal({} as never, 0, new Uint8Array(1), new Uint8Array(0), new Uint8Array(17))).toThrow(TypeError);
    expect(() => new NativeAead(native!, new Uint8Array(16), 'aes-256-gcm')).toThrow(/32 bytes/);
  });

  it('lets a SessionManager on native AEADs talk to one on node:crypto (aead option)', () => {
    const rng = new SeededRng(5);
    const keys = { a: generateKeyPair(rng), b: generateKeyPair(rng) };
    const a = new SessionManager<'b'>({ local: keys.a, rng: rng.fork(), wallClockEpochMs: 1_700_000_000_000, aead: factory });
    const b = new SessionManager<'a'>({ local: keys.b, rng: rng.fork(), wallClockEpochMs: 1_700_000_000_000 });
    a.addPeer('b', keys.b.publicKey);
    b.addPeer('a', keys.a.publicKey);
    expect(a.seal(0, 'b', new Uint8Array(1)).ok).toBe(false); // starts the handshake
    const init = a.pollTransmit();
    expect(init?.kind).toBe('initiation');
    b.handleHandshake(0, 'a', 'a:1', (init as { bytes: Uint8Array }).bytes);
    const response = b.pollTransmit();
    expect(response?.kind).toBe('reply');
    a.handleHandshake(0, 'b', 'b:1', (response as { bytes: Uint8Array }).bytes);
    for (let i = 0; i < 50; i++) {
      const message = randomBytes(i * 20);
      const sealed = a.seal(1, 'b', message);
      if (!sealed.ok) throw new Error(`seal: ${sealed.reason}`);
      const opened = b.open(1, sealed.receiverIndex, sealed.counter, sealed.ciphertext);
      expect(opened.ok && hex(opened.plaintext)).toBe(hex(message));
      const back = b.seal(1, 'a', message);
      if (!back.ok) throw new Error(`seal back: ${back.reason}`);
      const openedBack = a.open(1, back.receiverIndex, back.counter, back.ciphertext);
      expect(openedBack.ok && hex(openedBack.plaintext)).toBe(hex(message));
    }
  });

  it('rekeys for 900 s on native AEADs: every packet delivered, rotated-out sessions disposed', () => {
    const factory = nativeAeadFactory()!.factory;
    let built = 0;
    let disposed = 0;
    const counting: typeof factory = (key, cipher) => {
      built++;
      const inner = factory(key, cipher);
      return {
        cipher: inner.cipher,
        seal: (c, p, aad, out) => inner.seal(c, p, aad, out),
        sealAt: (c, buf, offset, length, aad) => inner.sealAt(c, buf, offset, length, aad),
        open: (c, ct, aad, out) => inner.open(c, ct, aad, out),
        dispose: () => {
          disposed++;
          inner.dispose?.();
        },
      };
    };
    const w = new World({ seed: 21, links: [{ name: 'l0', delayMs: 5 }, { name: 'l1', delayMs: 9 }], aead: counting });
    let sent = 0;
    // 20 packets a second each way across seven rekeys (every 120 s): more sessions than are kept.
    w.every(50, { startMs: 500, untilMs: 900_000 }, (i) => {
      w.a.sendTun(makePacket({ ...flowSpec(1, 300, 46), seq: i }));
      w.b.sendTun(makePacket({ ...flowSpec(2, 300, 46), seq: i }));
      sent++;
    });
    w.run(901_000);
    expect(w.b.deliveredCount).toBe(sent);
    expect(w.a.deliveredCount).toBe(sent);
    // Each Edge keeps at most current, previous, next and 3 retired sessions (2 AEADs each).
    expect(built - disposed).toBeLessThanOrEqual(2 * 2 * 6);
    expect(disposed).toBeGreaterThan(0);
  }, 60_000);

  it('frees forgotten contexts at garbage collection (no leak over 300k handles)', { timeout: 60_000 }, async () => {
    const child = fileURLToPath(new URL('./helpers/aead-gc-child.ts', import.meta.url));
    const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', runTs, child], { timeout: 55_000 }, (error, out, err) =>
        error ? reject(new Error(`${error.message}\n${String(err)}`)) : resolve(String(out)),
      );
    });
    const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { created: number; rssGrowthMiB: number };
    expect(r.created).toBe(300_000);
    // Unfreed, 300k handles hold two OpenSSL contexts each: well over 300 MiB.
    expect(r.rssGrowthMiB).toBeLessThan(250); // measured: ~56 MiB freed, ~720 MiB kept
  });
});
