/**
 * IP prefixes as the routing table and the config read them: parse `10.1.0.0/16` or
 * `2001:db8:1::/48` into bytes + length, and print the one canonical text (IPv4 dotted quad,
 * IPv6 per RFC 5952: lowercase, longest run of two or more zero groups as `::`).
 *
 * Rules (the same as `ip route`, which refuses "10.1.2.3/16" with "Invalid prefix for given prefix
 * length"): host bits set is an error by default, naming the prefix and the masked form; pass
 * `{ normalise: true }` to mask them off instead (WireGuard's AllowedIPs does that silently). A bare
 * address is a host prefix (/32 or /128). IPv4 octets with a leading zero are refused (inet_pton
 * refuses them too: "010" is octal to some tools, decimal to others). IPv6 zone ids (`%eth0`) are
 * refused: a site prefix has no zone. Errors are BraidError PREFIX_INVALID; this runs at config and
 * reload time, never per packet.
 */
import { BraidError, ErrorCode } from '../errors.ts';

export interface IpPrefix {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** The network address, host bits zero: 4 bytes (IPv4) or 16 (IPv6). */
  readonly bytes: Uint8Array;
  /** Prefix length in bits: 0..32 or 0..128. */
  readonly lengthBits: number;
  /** Canonical text, e.g. `10.1.0.0/16`, `2001:db8::/32`. */
  readonly text: string;
}

export interface ParsePrefixOptions {
  /** Mask host bits off instead of refusing them (`10.1.2.3/16` -> `10.1.0.0/16`). Default false. */
  readonly normalise?: boolean;
}

function invalid(text: string, why: string, fix: string): BraidError {
  return new BraidError(ErrorCode.PREFIX_INVALID, `prefix "${text}": ${why}`, { fix });
}

/** Parses a dotted-quad IPv4 address into `out` at `at`; false when it is not one. */
function parseV4Into(s: string, out: Uint8Array, at: number): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return false;
    const n = Number(p);
    if (n > 255) return false;
    out[at + i] = n;
  }
  return true;
}

/** Parses an IPv6 address (with `::` and an optional dotted-quad tail); undefined when it is not one. */
function parseV6(s: string): Uint8Array | undefined {
  if (s.length === 0 || s.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(s)) return undefined;
  const out = new Uint8Array(16);
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  // A dotted-quad may end the address: it fills the last two groups.
  const all = halves.length === 2 ? tail : head;
  let v4Tail: string | undefined;
  if (all.length > 0 && all[all.length - 1]!.includes('.')) v4Tail = all.pop();
  const groupCount = head.length + tail.length + (v4Tail !== undefined ? 2 : 0);
  if (halves.length === 2 ? groupCount > 7 : groupCount !== 8) return undefined;
  const writeGroups = (groups: string[], at: number): boolean => {
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return false;
      const n = parseInt(g, 16);
      out[at + 2 * i] = n >> 8;
      out[at + 2 * i + 1] = n & 0xff;
    }
    return true;
  };
  if (!writeGroups(head, 0)) return undefined;
  const tailBytes = tail.length * 2 + (v4Tail !== undefined ? 4 : 0);
  if (!writeGroups(tail, 16 - tailBytes)) return undefined;
  if (v4Tail !== undefined && !parseV4Into(v4Tail, out, 12)) return undefined;
  return out;
}

/** Canonical text of an address (4 or 16 bytes). */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952 4.2: the longest run of two or more zero groups becomes "::" (the first on a tie).
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/** Zeroes every bit of `bytes` past the first `lengthBits`; returns whether any was set. */
function maskHostBits(bytes: Uint8Array, lengthBits: number): boolean {
  let hadHostBits = false;
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, lengthBits - 8 * i));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((bytes[i]! & ~mask) !== 0) hadHostBits = true;
    bytes[i] = bytes[i]! & mask;
  }
  return hadHostBits;
}

/** Parses `ADDRESS/LENGTH` (or a bare address: a host prefix). Throws BraidError PREFIX_INVALID. */
export function parsePrefix(text: string, options: ParsePrefixOptions = {}): IpPrefix {
  const s = text.trim();
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  let family: 4 | 6;
  let bytes: Uint8Array;
  if (addrText.includes(':')) {
    if (addrText.includes('%')) throw invalid(text, 'an IPv6 zone id has no place in a prefix', 'drop the %ZONE part');
    const b = parseV6(addrText);
    if (!b) throw invalid(text, `"${addrText}" is not an IPv6 address`, 'write it like 2001:db8:1::/48');
    family = 6;
    bytes = b;
  } else {
    bytes = new Uint8Array(4);
    if (!parseV4Into(addrText, bytes, 0)) {
      throw invalid(text, `"${addrText}" is not an IPv4 address`, 'write it like 10.1.0.0/16 (four decimal octets 0-255, no leading zeros)');
    }
    family = 4;
  }
  const maxBits = family === 4 ? 32 : 128;
  let lengthBits = maxBits;
  if (slash >= 0) {
    const lenText = s.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(lenText) || Number(lenText) > maxBits) {
      throw invalid(text, `prefix length "${lenText}" is not 0..${maxBits}`, `write the length as a number 0..${maxBits} after the "/"`);
    }
    lengthBits = Number(lenText);
  }
  const hadHostBits = maskHostBits(bytes, lengthBits);
  const canonical = `${formatAddress(bytes)}/${lengthBits}`;
  if (hadHostBits && !options.normalise) {
    throw invalid(text, `host bits are set after the first ${lengthBits} bits`, `write the network address ${canonical} (or /${maxBits} for the host alone)`);
  }
  return { family, bytes, lengthBits, text: canonical };
}

/** True when `text` parses as a prefix (no exception), for schema refinements. */
export function isPrefix(text: string, options: ParsePrefixOptions = {}): boolean {
  try {
    parsePrefix(text, options);
    return true;
  } catch {
    return false;
  }
}
