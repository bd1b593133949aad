// The data-plane AEAD on the native addon: one OpenSSL EVP_CIPHER_CTX per key and direction,
// keyed once, so a packet costs a nonce, the AAD, the body and the tag, not a new cipher object
// (node:crypto's floor: ~4 us of a ~6 us 1400-byte seal on this box). Byte-identical to the
// node:crypto AeadSession (test/core/crypto/native-aead.test.ts checks it on random inputs and
// the RFC 8439 vector).
//
// The core never imports this: `braid up` (and the simulator) pass nativeAeadFactory().factory to
// the Edge as EdgeCryptoConfig.aead when the addon loads.

import {
  AEAD_KEY_LENGTH,
  AEAD_TAG_LENGTH,
  isValidCounter,
  isValidSendCounter,
  type Aead,
  type AeadFactory,
} from '../core/crypto/transport.ts';
import type { DataCipher } from '../core/crypto/types.ts';
import { allocBytes } from '../core/bytes.ts';
import { tryLoadNative, type AeadHandle, type BraidNative } from './native.ts';

// Outputs come from the core's slab allocator (src/core/bytes.ts): a fresh 1.4 KB typed array
// costs ~0.6-1 us here (its own calloc'd backing store, tracked by the GC's ArrayBuffer sweeper;
// perf on the sending edge showed malloc, memset and the sweeper together above the cipher
// itself), a view into a slab ~0.1-0.2 us. Every byte of a view is written by seal/open before it
// is handed out, and a failed open's view is never handed out.
const take = allocBytes;

export class NativeAead implements Aead {
  readonly cipher: DataCipher;
  private handle: AeadHandle | undefined;

  constructor(
    private readonly native: BraidNative,
    key: Uint8Array,
    cipher: DataCipher,
  ) {
    if (key.length !== AEAD_KEY_LENGTH) throw new Error(`AEAD key must be ${AEAD_KEY_LENGTH} bytes, got ${key.length}`);
    this.cipher = cipher;
    this.handle = native.aeadCreate(key, cipher);
  }

  seal(counter: number, plaintext: Uint8Array, aad: Uint8Array, out?: Uint8Array): Uint8Array {
    if (!isValidSendCounter(counter)) throw new Error(`invalid AEAD send counter ${counter}`);
    const sealedLength = plaintext.length + AEAD_TAG_LENGTH;
    const dst = out ?? take(sealedLength);
    if (dst.length < sealedLength) throw new RangeError(`AEAD seal: out holds ${dst.length} bytes, needs ${sealedLength}`);
    const written = this.native.aeadSeal(this.live(), counter, plaintext, aad, dst);
    if (written !== sealedLength) throw new Error('AEAD seal: OpenSSL failed');
    return dst.length === sealedLength ? dst : dst.subarray(0, sealedLength);
  }

  sealAt(counter: number, buf: Uint8Array, offset: number, length: number, aad: Uint8Array): void {
    if (!isValidSendCounter(counter)) throw new Error(`invalid AEAD send counter ${counter}`);
    if (this.native.aeadSealAt(this.live(), counter, buf, offset, length, aad) !== length + AEAD_TAG_LENGTH) throw new Error('AEAD seal: OpenSSL failed');
  }

  open(counter: number, ciphertext: Uint8Array, aad: Uint8Array, out?: Uint8Array): Uint8Array | null {
    if (!isValidCounter(counter) || ciphertext.length < AEAD_TAG_LENGTH || this.handle === undefined) return null;
    const bodyLength = ciphertext.length - AEAD_TAG_LENGTH;
    const dst = out ?? take(bodyLength);
    if (dst.length < bodyLength) throw new RangeError(`AEAD open: out holds ${dst.length} bytes, needs ${bodyLength}`);
    const opened = this.native.aeadOpen(this.handle, counter, ciphertext, aad, dst);
    if (opened !== bodyLength) return null;
    return dst.length === bodyLength ? dst : dst.subarray(0, bodyLength);
  }

  /** Frees the OpenSSL contexts (and their key schedules) now; seal throws and open fails after. */
  dispose(): void {
    if (this.handle === undefined) return;
    this.native.aeadDestroy(this.handle);
    this.handle = undefined;
  }

  private live(): AeadHandle {
    if (this.handle === undefined) throw new Error('AEAD used after dispose()');
    return this.handle;
  }
}

/**
 * The native AEAD factory and what it runs on, or undefined when the addon is not built or this
 * Node does not export OpenSSL to addons (then node:crypto stays the default).
 */
export function nativeAeadFactory(
  native: BraidNative | undefined = tryLoadNative(),
): { factory: AeadFactory; openssl: string } | undefined {
  if (native === undefined || native.aeadAvailable !== true || typeof native.aeadCreate !== 'function') return undefined;
  const addon = native;
  return {
    factory: (key, cipher) => new NativeAead(addon, key, cipher),
    openssl: native.opensslVersion ?? 'OpenSSL',
  };
}
