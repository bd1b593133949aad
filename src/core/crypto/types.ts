/**
 * Shared types for the crypto layer.
 *
 * `Rng` is the only source of randomness in src/core: the simulator passes a seeded one so a run is
 * reproducible from its seed, and the I/O shell passes one backed by crypto.randomFillSync. Every
 * secret the core makes (ephemeral keys, session indices, cookie secrets, timer jitter) comes from it.
 * (Defined here until core grows a shared home for it; structurally identical definitions elsewhere
 * are interchangeable.)
 */
export interface Rng {
  /** A uniformly distributed integer in [0, 2^32). */
  nextU32(): number;
  /** Fills `out` with uniformly distributed bytes. */
  fillBytes(out: Uint8Array): void;
}

/** Data-plane AEADs we can run per session; both come from OpenSSL (node:crypto or the addon). */
export type DataCipher = 'chacha20-poly1305' | 'aes-256-gcm';

/** Wire ids of the data ciphers, carried in the handshake payloads. Never renumber. */
export const DATA_CIPHER_IDS: Readonly<Record<DataCipher, number>> = {
  'chacha20-poly1305': 1,
  'aes-256-gcm': 2,
};

export function dataCipherFromId(id: number): DataCipher | null {
  if (id === 1) return 'chacha20-poly1305';
  if (id === 2) return 'aes-256-gcm';
  return null;
}
