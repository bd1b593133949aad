/**
 * Which data cipher a session uses: `cipher: auto` and the explicit settings (issue 13).
 *
 * Each side announces, inside the encrypted handshake payloads, a flags byte next to the
 * preferred cipher and the accepted mask that were there before:
 *
 *   initiation payload byte 18, response payload byte 9 (both were zero):
 *     0x01 NEGOTIATES  the sender applies the rule below (an old peer leaves the byte zero)
 *     0x02 AUTO        its setting is `cipher: auto`
 *     0x04 AES         its CPU has AES instructions (the shell detects them; the core is told)
 *     0x08 DIFFERENT   response only: the two ends' explicit settings differ (see below)
 *
 * The rule (the responder applies it; the initiator takes the responder's answer, as before):
 *   - both auto: AES-256-GCM when both have AES instructions, else ChaCha20-Poly1305;
 *   - one explicit, one auto: the explicit one's cipher;
 *   - both explicit and equal: that cipher;
 *   - both explicit and different: ChaCha20-Poly1305 (it runs at full, constant-time speed on
 *     any CPU), and the session event of both ends says the settings differ.
 * A peer from before this rule (flags zero) is treated as before: the initiator's preferred
 * cipher if the responder accepts it. Towards such a peer an `auto` side prefers ChaCha20-Poly1305
 * (the old default), so an old peer sees what it always saw.
 */
import { DATA_CIPHER_IDS, type DataCipher } from './types.ts';

/** The operator's setting: a cipher, or `auto` (negotiated from both ends' AES instructions). */
export type CipherSetting = DataCipher | 'auto';

/** Which data ciphers a side prefers and accepts, and what it announces. */
export interface CipherPolicy {
  readonly preferred: DataCipher;
  readonly accepted: readonly DataCipher[];
  /** The setting is `auto` (default false: `preferred` is an explicit choice). */
  readonly auto?: boolean;
  /** This machine has AES instructions (AES-NI, ARMv8 AES); default false. */
  readonly aesAccelerated?: boolean;
}

export const CIPHER_FLAG_NEGOTIATES = 0x01;
export const CIPHER_FLAG_AUTO = 0x02;
export const CIPHER_FLAG_AES = 0x04;
export const CIPHER_FLAG_DIFFERENT = 0x08;

const BOTH: readonly DataCipher[] = ['chacha20-poly1305', 'aes-256-gcm'];

/** The policy of a setting: every setting accepts both ciphers (the rule above picks one). */
export function cipherPolicy(setting: CipherSetting, aesAccelerated: boolean): CipherPolicy {
  return setting === 'auto'
    ? { preferred: 'chacha20-poly1305', accepted: BOTH, auto: true, aesAccelerated }
    : { preferred: setting, accepted: BOTH, auto: false, aesAccelerated };
}

/** The flags byte a side announces. */
export function cipherFlags(policy: CipherPolicy): number {
  return CIPHER_FLAG_NEGOTIATES | (policy.auto ? CIPHER_FLAG_AUTO : 0) | (policy.aesAccelerated ? CIPHER_FLAG_AES : 0);
}

export interface CipherChoice {
  readonly cipher: DataCipher;
  /** Why, in words, for the session event ("both ends auto with AES instructions"). */
  readonly why: string;
  /** Both ends set explicit ciphers that differ. */
  readonly different: boolean;
}

/**
 * The responder's choice for an initiation that offered `preferred` (its wire id, null when
 * unknown), `offeredMask` and `flags`; null when no cipher both accept.
 */
export function chooseCipher(preferred: DataCipher | null, offeredMask: number, flags: number, local: CipherPolicy): CipherChoice | null {
  const offered = (c: DataCipher): boolean => (offeredMask & (1 << DATA_CIPHER_IDS[c])) !== 0 && local.accepted.includes(c);
  const pick = (cipher: DataCipher, why: string, different = false): CipherChoice | null => (offered(cipher) ? { cipher, why, different } : null);
  if ((flags & CIPHER_FLAG_NEGOTIATES) === 0) {
    // A peer from before the rule: its preference if we accept it, as before.
    if (preferred !== null && local.accepted.includes(preferred)) return { cipher: preferred, why: 'the peer predates cipher: auto and prefers it', different: false };
    const fallback = [local.preferred, ...local.accepted].find(offered);
    return fallback === undefined ? null : { cipher: fallback, why: 'the only cipher both accept', different: false };
  }
  const remoteAuto = (flags & CIPHER_FLAG_AUTO) !== 0;
  const remoteAes = (flags & CIPHER_FLAG_AES) !== 0;
  const localAuto = local.auto === true;
  if (localAuto && remoteAuto) {
    return local.aesAccelerated && remoteAes
      ? pick('aes-256-gcm', 'auto: both ends have AES instructions')
      : pick('chacha20-poly1305', `auto: ${local.aesAccelerated ? 'the peer has no' : remoteAes ? 'this machine has no' : 'neither end has'} AES instructions`);
  }
  if (remoteAuto) return pick(local.preferred, 'set here, the peer is auto');
  if (preferred === null) return null;
  if (localAuto) return pick(preferred, 'set by the peer, auto here');
  if (preferred === local.preferred) return pick(preferred, 'set on both ends');
  return pick('chacha20-poly1305', `the ends' cipher settings differ (here ${local.preferred}, the peer ${preferred}): set the same on both, or auto`, true);
}
