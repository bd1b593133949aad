/**
 * Does this machine have AES instructions? The answer is the core's `aesAccelerated` (`cipher:
 * auto` picks AES-256-GCM only when both ends have them: core/crypto/cipher-choice.ts).
 *
 * Read from /proc/cpuinfo, as the kernel reports the CPU: x86 `flags` with `aes` (AES-NI) and
 * `pclmulqdq` (the carry-less multiply GCM's GHASH needs to be fast), arm64 `Features` with `aes`
 * and `pmull`. Without both, OpenSSL's AES-GCM falls back to table-based code that is slower than
 * ChaCha20-Poly1305 and not constant-time, which is why auto then takes ChaCha20.
 */
import { readFileSync } from 'node:fs';

/** True when the cpuinfo text shows AES and carry-less multiply instructions on every CPU listed. */
export function cpuinfoHasAes(cpuinfo: string): boolean {
  const lines = cpuinfo.split('\n').filter((l) => /^(flags|Features)\s*:/.test(l));
  if (lines.length === 0) return false;
  return lines.every((line) => {
    const words = new Set(line.slice(line.indexOf(':') + 1).trim().split(/\s+/));
    return words.has('aes') && (words.has('pclmulqdq') || words.has('pmull'));
  });
}

/** AES instructions on this machine (false when /proc/cpuinfo cannot be read: ChaCha20 is the safe side). */
export function hasAesInstructions(cpuinfoPath = '/proc/cpuinfo'): boolean {
  try {
    return cpuinfoHasAes(readFileSync(cpuinfoPath, 'utf8'));
  } catch {
    return false;
  }
}
