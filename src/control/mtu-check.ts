// `braid check`: does the TUN MTU fit every link? An inner packet of tun.mtu bytes plus the
// overlay's worst-case overhead (src/core/wire/overhead.ts) must fit the link interface's MTU in
// one datagram; otherwise the biggest packets cannot cross that link unfragmented (with DF on the
// underlay they get ICMP Frag Needed / Packet Too Big back, or are fragmented inside the tunnel).
// Issue 13 measured what going over costs: tun.mtu 1440 on 1500-byte links carried 7 Mbit/s.
//
// Warnings, not errors: the path MTU discovery copes at run time; the operator should still know
// that the configured MTU is a promise the links cannot keep.

import { readFileSync } from 'node:fs';
import { usableInnerMtu, type IpFamily } from '../core/wire/overhead.ts';

export interface MtuCheckLink {
  /** Position in `links:` (for the field name in the message). */
  index: number;
  name: string;
  interface: string;
  /** Outer IP version of the link's paths (the family of its bind address / peer endpoints). */
  family: IpFamily;
}

export interface MtuWarning {
  /** Dotted path of the field to change, e.g. `tun.mtu`. */
  field: string;
  /** One line: what does not fit and by how much. */
  message: string;
  fix: string;
  /** The largest tun.mtu this link carries unfragmented. */
  maxTunMtuBytes: number;
}

/** The interface's MTU from sysfs, or undefined when it cannot be read (missing interface). */
export function readInterfaceMtu(ifname: string): number | undefined {
  try {
    const n = Number(readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One warning per link whose interface MTU cannot carry a tun.mtu-sized inner packet in one
 * datagram, plus one per link that cannot carry FEC parity of such packets when `fecK` (the
 * largest k of the FEC-enabled classes) is given. Links whose MTU cannot be read are skipped
 * (checkInterfaces reports missing interfaces).
 */
export function checkTunMtu(
  tunMtuBytes: number,
  links: readonly MtuCheckLink[],
  readMtu: (ifname: string) => number | undefined = readInterfaceMtu,
  fecK = 0,
): MtuWarning[] {
  const warnings: MtuWarning[] = [];
  for (const link of links) {
    const ifMtu = readMtu(link.interface);
    if (ifMtu === undefined) continue;
    const usable = usableInnerMtu(ifMtu, link.family);
    const overhead = ifMtu - usable;
    const where = `links[${link.index}] ${link.name} (${link.interface}, MTU ${ifMtu}, IPv${link.family} underlay)`;
    if (tunMtuBytes > usable) {
      warnings.push({
        field: 'tun.mtu',
        message:
          `tun.mtu ${tunMtuBytes} + ${overhead} bytes of overlay overhead = ${tunMtuBytes + overhead} exceeds ${where}: ` +
          `inner packets above ${usable} bytes cannot cross it in one datagram`,
        fix: `set tun.mtu to ${usable} or less, or raise ${link.interface}'s MTU to ${tunMtuBytes + overhead}`,
        maxTunMtuBytes: usable,
      });
    } else if (fecK > 0) {
      const withParity = usableInnerMtu(ifMtu, link.family, fecK);
      if (tunMtuBytes > withParity) {
        warnings.push({
          field: 'tun.mtu',
          message:
            `tun.mtu ${tunMtuBytes}: FEC parity for groups of ${fecK} packets that size needs ${ifMtu - withParity} bytes ` +
            `of overhead, more than ${where} leaves: parity of groups with packets above ${withParity} bytes cannot cross it`,
          fix: `set tun.mtu to ${withParity} or less for full FEC protection of the largest packets`,
          maxTunMtuBytes: withParity,
        });
      }
    }
  }
  return warnings;
}
