// Source endpoints of received datagrams, cached so that the hot path formats no string per
// packet: IPv4 sources by (address u32, port) as a number, IPv6 sources by their 16 bytes and
// port as a short binary string (one small string per packet, no formatting). The driver calls
// get(batch, i) for each datagram; the core receives the same Endpoint object for the same
// source, as before.

import { formatIpv4 } from './ipv4.ts';
import { formatIpv6 } from './ipv6.ts';
import type { DatagramBatch, UdpEndpoint } from './udp.ts';

/** Cap per family; the cache is cleared when it fills (a scan of spoofed sources cannot grow it). */
export const MAX_SOURCE_ENDPOINTS = 4096;

export class SourceEndpointCache {
  private readonly v4 = new Map<number, UdpEndpoint>();
  private readonly v6 = new Map<string, UdpEndpoint>();

  get(batch: DatagramBatch, index: number): UdpEndpoint {
    const port = batch.fromPort(index);
    if (batch.fromFamily(index) !== 6) {
      const addr = batch.fromAddressU32(index);
      const key = addr * 65536 + port;
      let e = this.v4.get(key);
      if (e === undefined) {
        if (this.v4.size >= MAX_SOURCE_ENDPOINTS) this.v4.clear();
        e = { address: formatIpv4(addr), port };
        this.v4.set(key, e);
      }
      return e;
    }
    const a = batch.fromAddress6(index);
    let key = String.fromCharCode(port >> 8, port & 0xff);
    for (let i = 0; i < 16; i += 2) key += String.fromCharCode((a[i]! << 8) | a[i + 1]!);
    let e = this.v6.get(key);
    if (e === undefined) {
      if (this.v6.size >= MAX_SOURCE_ENDPOINTS) this.v6.clear();
      e = { address: formatIpv6(a), port };
      this.v6.set(key, e);
    }
    return e;
  }
}
