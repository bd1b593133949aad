// IPv6 text <-> 16 bytes, and endpoint text of either family, for the UDP links' IPv6 underlay.
// IPv4 peers of a dual-stack socket travel as v4-mapped addresses (::ffff:a.b.c.d) between this
// module and the addon; everything above the links sees them as plain IPv4 text.

import { formatIpv4, parseIpv4 } from './ipv4.ts';

/**
 * Parses IPv6 text (RFC 4291 2.2: groups, one `::`, an IPv4 tail) into 16 bytes; undefined for
 * anything else, including zone ids (`fe80::1%eth0`): link-local endpoints are not supported.
 * Writes into `out` when given (no allocation on a hot path).
 */
export function parseIpv6(text: string, out: Uint8Array = new Uint8Array(16)): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const gap = text.indexOf('::');
  if (gap !== -1 && text.indexOf('::', gap + 1) !== -1) return undefined;
  const head = gap === -1 ? text : text.slice(0, gap);
  const tail = gap === -1 ? '' : text.slice(gap + 2);
  const words: number[] = [];
  const tailWords: number[] = [];
  const parsePart = (part: string, into: number[], allowV4Tail: boolean): boolean => {
    if (part === '') return true;
    const groups = part.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (allowV4Tail && i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (v4 === undefined) return false;
        into.push(v4 >>> 16, v4 & 0xffff);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
      into.push(parseInt(g, 16));
    }
    return true;
  };
  if (!parsePart(head, words, gap === -1)) return undefined;
  if (!parsePart(tail, tailWords, true)) return undefined;
  const total = words.length + tailWords.length;
  if (gap === -1 ? total !== 8 : total > 7) return undefined;
  out.fill(0);
  for (let i = 0; i < words.length; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  const start = 8 - tailWords.length;
  for (let i = 0; i < tailWords.length; i++) {
    out[2 * (start + i)] = tailWords[i]! >> 8;
    out[2 * (start + i) + 1] = tailWords[i]! & 0xff;
  }
  return out;
}

/** ::ffff:a.b.c.d */
export function isV4Mapped(b: Uint8Array, at = 0): boolean {
  for (let i = 0; i < 10; i++) if (b[at + i] !== 0) return false;
  return b[at + 10] === 0xff && b[at + 11] === 0xff;
}

/** Writes the v4-mapped form of a host-order IPv4 uint32 into `out` at `at`. */
export function writeV4Mapped(addressU32: number, out: Uint8Array, at = 0): void {
  out.fill(0, at, at + 10);
  out[at + 10] = 0xff;
  out[at + 11] = 0xff;
  out[at + 12] = (addressU32 >>> 24) & 0xff;
  out[at + 13] = (addressU32 >>> 16) & 0xff;
  out[at + 14] = (addressU32 >>> 8) & 0xff;
  out[at + 15] = addressU32 & 0xff;
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (2+) of zero groups as `::`. */
export function formatIpv6(b: Uint8Array, at = 0): string {
  if (isV4Mapped(b, at)) return `::ffff:${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[at + 2 * i]! << 8) | b[at + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(':');
  const left = g.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const right = g.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${left}::${right}`;
}

/** 4 for dotted-quad text, 6 for IPv6 text, undefined otherwise. */
export function addressFamily(text: string): 4 | 6 | undefined {
  if (parseIpv4(text) !== undefined) return 4;
  if (parseIpv6(text) !== undefined) return 6;
  return undefined;
}

/**
 * `192.0.2.20:51900` or `[2001:db8::1]:51900` -> { address, port } (address without brackets,
 * IPv6 in RFC 5952 form); undefined for anything else (an IPv6 address needs the brackets).
 */
export function parseEndpointText(text: string): { address: string; port: number } | undefined {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return undefined;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    const bytes = parseIpv6(host);
    if (bytes === undefined) return undefined;
    host = isV4Mapped(bytes) ? formatIpv4(((bytes[12]! << 24) | (bytes[13]! << 16) | (bytes[14]! << 8) | bytes[15]!) >>> 0) : formatIpv6(bytes);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return undefined;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (parseIpv4(host) === undefined) return undefined;
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { address: host, port };
}

/** The endpoint as text: `a.b.c.d:port` or `[v6]:port`. */
export function formatEndpointText(e: { address: string; port: number }): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
