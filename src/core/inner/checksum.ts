/**
 * Internet checksum (RFC 1071) helpers for the inner-packet rewriters (MSS clamp, ICMP errors,
 * IPv4 fragmentation). Sums are kept as plain numbers and folded at the end; none of these
 * allocate.
 */

/**
 * Ones'-complement sum of bytes [start, end) as 16-bit big-endian words (an odd trailing byte is
 * padded with zero), added to `sum`. Not folded: call foldChecksum on the total.
 */
export function onesSum(bytes: Uint8Array, start: number, end: number, sum = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  // Fold early enough that the sum never leaves the safe-integer range (65535 * 2^37 words).
  return sum > 0xffffffff ? (sum & 0xffff) + Math.floor(sum / 65536) : sum;
}

/** Folds a sum to 16 bits and complements it: the value that goes in the checksum field. */
export function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return ~sum & 0xffff;
}

/**
 * RFC 1624 equation 3: the checksum after one 16-bit word of the covered data changed from
 * `oldWord` to `newWord`, without re-reading the data: HC' = ~(~HC + ~m + m').
 */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  let sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function readU16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

export function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

/** IPv4 header checksum over [start, start + headerBytes), with the checksum field taken as 0. */
export function ipv4HeaderChecksum(b: Uint8Array, start: number, headerBytes: number): number {
  const sum = onesSum(b, start, start + 10) + onesSum(b, start + 12, start + headerBytes);
  return foldChecksum(sum);
}
