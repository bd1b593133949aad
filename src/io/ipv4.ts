// IPv4 text <-> host-order uint32 (127.0.0.1 <-> 0x7f000001), the form the native addon
// reports source addresses in: one number per packet instead of one string per packet.

/** Parses dotted-quad IPv4 text; returns undefined for anything else (no throw: hot path). */
export function parseIpv4(text: string): number | undefined {
  let value = 0;
  let octet = -1;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (octet < 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      octet = -1;
      dots++;
    } else if (c >= 48 && c <= 57) {
      // Leading zeros are rejected as inet_pton does ("010" would be octal to some parsers).
      if (octet === 0) return undefined;
      octet = (octet < 0 ? 0 : octet * 10) + (c - 48);
      if (octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || octet < 0) return undefined;
  return value * 256 + octet;
}

/** Formats a host-order uint32 as dotted-quad text. */
export function formatIpv4(addressU32: number): string {
  return `${(addressU32 >>> 24) & 255}.${(addressU32 >>> 16) & 255}.${(addressU32 >>> 8) & 255}.${addressU32 & 255}`;
}
