// UDP links: one socket per WAN link, carrying the overlay to the peer edges.
//
// Stages: open (addon udpOpen: bind IPv4, IPv6 or both ('::' is dual stack), SO_BINDTODEVICE,
// 4 MiB buffers, DF with the kernel's PMTU ignored when asked) -> onDatagrams (addon poll
// reader, recvmmsg, one callback per batch) -> send (addon udpSend, DSCP as a per-packet TOS
// cmsg) or sendBatch (a SendBatch of up to 64 datagrams: one sendmmsg, equal-sized runs as UDP
// GSO messages) -> close. NodeDgramLink
// is the same interface over node:dgram for machines where the addon is not built (no device
// binding, no DSCP marking, one datagram per callback, sendBatch is a loop of send).

import dgram from 'node:dgram';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { errnoName, osCodeOf } from './os-errors.ts';
import { formatIpv4, parseIpv4 } from './ipv4.ts';
import { formatIpv6, parseIpv6, writeV4Mapped } from './ipv6.ts';
import { socketInode, type UdpSocketRow } from './socket-stats.ts';
import {
  loadNative,
  tryLoadNative,
  type BraidNative,
  type NativeSystemError,
  type ReaderHandle,
} from './native.ts';

/**
 * Socket buffers for every link. With the default 208 KiB almost all of a tunnel's TCP
 * retransmits were receive-buffer overflows at the far end (DESIGN.md "Hot path").
 */
export const DEFAULT_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Receive buffer of the link sockets of a site whose TUN runs with offloads (issue 13). A bulk
 * TCP flow (BBR on the bench box) no longer loses packets at the sender's TUN queue once that
 * queue holds 64 KB super-segments, so the receiving edge's link socket became the standing
 * queue: with 4 MiB (8 MiB of kernel truesize) it held 0.1-3.3 MB and ping under one iperf3
 * stream rose to 12-31 ms. 256 KiB (the kernel doubles it: ~8 GRO trains of 64 KB) brings that
 * to 7-10 ms at about the same throughput, by tail drop: TCP retransmits again, as at the TUN
 * queue without offloads (docs/BENCHMARKS.md "RTT under load with offloads, session 6"). Tail
 * drop spares no class: CoDel on the socket's sojourn (SO_TIMESTAMPNS) that drops bulk only is
 * the principled fix, not done yet. Without offloads the TUN queue drops first, so 4 MiB stays.
 */
export const OFFLOAD_RCVBUF_BYTES = 256 * 1024;

/** The link sockets' receive buffer for a site whose TUN offloads are on (`tunOffload`) or off. */
export function linkRcvbufBytes(tunOffload: boolean, defaultBytes: number = DEFAULT_SOCKET_BUFFER_BYTES): number {
  return tunOffload ? Math.min(OFFLOAD_RCVBUF_BYTES, defaultBytes) : defaultBytes;
}

export interface UdpEndpoint {
  /** IPv4 dotted quad, or IPv6 text without brackets ('2001:db8::1'). */
  readonly address: string;
  readonly port: number;
}

/**
 * Datagrams received in one batch. Contract: borrowed views, valid only during the callback that
 * received the batch (the next batch reuses the memory); copy what must outlive it.
 */
export interface DatagramBatch {
  readonly count: number;
  /**
   * Zero-copy view of datagram `index`'s payload: a plain Uint8Array, not a Buffer (the core's
   * code then sees one kind of array; Buffer's own subarray and the mixed shapes were ~2-3% of the
   * receiving edge: perf, session 10).
   */
  datagram(index: number): Uint8Array;
  /**
   * Source IPv4 as a host-order uint32 (127.0.0.1 is 0x7f000001): no string per packet. 0 for
   * an IPv6 source (see fromFamily).
   */
  fromAddressU32(index: number): number;
  /** 4, or 6 for an IPv6 source (IPv4 peers of a dual-stack socket are 4). */
  fromFamily(index: number): 4 | 6;
  /** The source as 16 bytes (IPv4 sources v4-mapped): a borrowed view, valid during the callback. */
  fromAddress6(index: number): Uint8Array;
  /** Source as text, IPv4 or IPv6 (formats a string: prefer fromAddressU32 on the hot path). */
  fromAddress(index: number): string;
  fromPort(index: number): number;
  /** The datagram's TOS byte (DSCP << 2 | ECN) when the link was opened with recvTos, else 0. */
  tos(index: number): number;
}

export interface UdpLinkCounters {
  rxDatagrams: number;
  rxBatches: number;
  txDatagrams: number;
  /** send() calls that did not go out: socket buffer full, no route, bad address, closed. */
  txDropped: number;
  /** The errno name of the last failed send ('EAGAIN', 'ENETUNREACH', 'EINVAL' for an address). */
  lastTxError: string | undefined;
  /**
   * Of txDropped: datagrams bigger than the interface MTU with DF (EMSGSIZE). The shell reads the
   * interface MTU again and hands it to path MTU discovery (src/cli/up.ts). Optional: fakes omit it.
   */
  txTooBig?: number;
}

/** One link socket as the kernel and the addon's reader see it (status `linkSockets`). */
export interface LinkSocketStats {
  /** The receive buffer the kernel granted (SO_RCVBUF: double the request). */
  rcvbufBytes: number;
  /** Bytes in the receive queue now (kernel truesize accounting). */
  rxQueuedBytes: number;
  /** Datagrams the kernel dropped for this socket since it opened: receive buffer full. */
  rxDropped: number;
  /** UDP GRO: coalesced trains received and the datagrams they held (0 with GRO off). */
  groTrains: number;
  groDatagrams: number;
}

/** What the kernel answers when it will not take a UDP GSO send (see NativeUdpLink.gso). */
const GSO_REFUSALS = new Set(['EIO', 'EINVAL', 'EOPNOTSUPP', 'ENOPROTOOPT']);

/** Datagrams per SendBatch: the addon's sendmmsg vector (BATCH_MAX). */
export const SEND_BATCH_MAX = 64;
/**
 * Bytes of one SendBatch's slab: 64 full-size (1500-byte) datagrams with room to spare. A
 * datagram that does not fit in what is left means "send this batch first"; one bigger than a
 * quarter of the slab is not batched at all (the caller sends it on its own).
 */
export const SEND_BATCH_SLAB_BYTES = 128 * 1024;

/**
 * Datagrams queued for one link and sent together by UdpLink.sendBatch (one sendmmsg on the
 * native link). Owned and reused by the caller: push() copies the bytes into the batch's slab
 * (so the caller's buffer is free at once, as with send), sendBatch() sends them, clear() empties
 * it. No allocation per datagram; the destination is parsed once per distinct address string.
 */
export class SendBatch {
  readonly slab = Buffer.allocUnsafeSlow(SEND_BATCH_SLAB_BYTES);
  readonly offsets = new Uint32Array(SEND_BATCH_MAX);
  readonly lengths = new Uint32Array(SEND_BATCH_MAX);
  /** Destination IPv4 per datagram, host-order uint32 (0 for an IPv6 destination). */
  readonly addrs = new Uint32Array(SEND_BATCH_MAX);
  /** Destination per datagram as 16 bytes (IPv4 v4-mapped): what an IPv6 socket sends to. */
  readonly addrs6 = new Uint8Array(SEND_BATCH_MAX * 16);
  /** Datagrams in the batch with an IPv6 (not v4-mapped) destination. */
  ipv6Count = 0;
  readonly ports = new Uint16Array(SEND_BATCH_MAX);
  /** TOS byte per datagram (dscpToTos of the dscp pushed). */
  readonly tos = new Uint8Array(SEND_BATCH_MAX);
  count = 0;
  private usedBytes = 0;
  private lastAddressText = '';
  private lastAddressU32 = 0;
  private readonly lastAddress6 = new Uint8Array(16);
  private lastIsIpv6 = false;

  /** True when a datagram of `length` bytes needs this batch sent (and cleared) first. */
  isFullFor(length: number): boolean {
    return this.count >= SEND_BATCH_MAX || this.usedBytes + length > SEND_BATCH_SLAB_BYTES;
  }

  /**
   * Copies a datagram in. False, with nothing queued, when the batch cannot take it: it is full
   * (see isFullFor), the datagram is too big to batch, or the endpoint is not an IPv4 or IPv6
   * address and port. The caller then sends the batch, or sends this datagram with send(), which
   * counts the drop and its reason as usual.
   */
  push(bytes: Uint8Array, to: UdpEndpoint, dscp: number): boolean {
    const length = bytes.length;
    if (length > SEND_BATCH_SLAB_BYTES / 4 || this.isFullFor(length)) return false;
    if (to.address !== this.lastAddressText) {
      const parsed = parseIpv4(to.address);
      if (parsed !== undefined) {
        this.lastAddressU32 = parsed;
        writeV4Mapped(parsed, this.lastAddress6);
        this.lastIsIpv6 = false;
      } else {
        if (parseIpv6(to.address, this.lastAddress6) === undefined) {
          this.lastAddressText = '';
          return false;
        }
        this.lastAddressU32 = 0;
        this.lastIsIpv6 = true;
      }
      this.lastAddressText = to.address;
    }
    if (!(to.port >= 1 && to.port <= 65535)) return false;
    const i = this.count;
    const offset = this.usedBytes;
    this.slab.set(bytes, offset);
    this.offsets[i] = offset;
    this.lengths[i] = length;
    this.addrs[i] = this.lastAddressU32;
    this.addrs6.set(this.lastAddress6, i * 16);
    if (this.lastIsIpv6) this.ipv6Count++;
    this.ports[i] = to.port;
    this.tos[i] = dscpToTos(dscp);
    // 16-byte aligned starts: cheap, and keeps the kernel's copies aligned.
    this.usedBytes = (offset + length + 15) & ~15;
    this.count = i + 1;
    return true;
  }

  /** Datagram `index` as a view of the slab (valid until the next clear/push). */
  datagram(index: number): Buffer {
    const offset = this.offsets[index]!;
    return this.slab.subarray(offset, offset + this.lengths[index]!);
  }

  /** Destination of datagram `index` as an endpoint (formats a string: not for the hot path). */
  endpoint(index: number): UdpEndpoint {
    const a = this.addrs[index]!;
    const six = this.addrs6.subarray(index * 16, index * 16 + 16);
    const isV6 = a === 0 && !(six[10] === 0xff && six[11] === 0xff);
    return { address: isV6 ? formatIpv6(six) : formatIpv4(a), port: this.ports[index]! };
  }

  clear(): void {
    this.count = 0;
    this.usedBytes = 0;
    this.ipv6Count = 0;
  }
}

/**
 * One WAN link's socket. Contracts:
 * - send: the bytes are copied (by the kernel, or by the fallback) before send returns, so the
 *   caller may reuse its buffer. DSCP 0..63 marks the outer packet (TOS = dscp << 2); out-of-range
 *   values are masked. Returns false and counts txDropped on any per-packet failure; never throws.
 * - onDatagrams: one subscriber (a second call replaces the first). If it falls behind, the
 *   kernel's receive buffer (rcvbufBytes) fills and the kernel drops datagrams (visible in
 *   /proc/net/snmp Udp RcvbufErrors), not here.
 * - close: idempotent; stops receiving and closes the socket.
 */
export interface UdpLink {
  readonly port: number;
  readonly counters: Readonly<UdpLinkCounters>;
  /**
   * The kernel's counters of this socket and what UDP GRO did, for status and metrics (not per
   * packet). `table` is one readUdpTables() result shared by every link of a status request.
   * Optional: the node:dgram fallback and test fakes have none.
   */
  socketStats?(table: ReadonlyMap<number, UdpSocketRow>): LinkSocketStats | undefined;
  send(bytes: Uint8Array, to: UdpEndpoint, dscp: number): boolean;
  /**
   * Sends every datagram of `batch`, in order, as send() would each (same DSCP, same drop
   * counting), in as few syscalls as the link can (native: one sendmmsg per 64). Returns how many
   * went out; never throws; does not clear the batch. Optional: a link without it gets one send()
   * per datagram from the driver.
   */
  sendBatch?(batch: SendBatch): number;
  onDatagrams(callback: (batch: DatagramBatch) => void): void;
  close(): void;
}

export interface UdpLinkOptions {
  readonly bindAddress: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
  /** Bind to this interface (SO_BINDTODEVICE); native only. */
  readonly device?: string;
  readonly rcvbufBytes?: number;
  readonly sndbufBytes?: number;
  /** Report each received datagram's TOS byte (IP_RECVTOS); native only. */
  readonly recvTos?: boolean;
  /**
   * Set DF on every datagram and never fragment locally; the kernel's cached path MTU is ignored
   * (IP_PMTUDISC_PROBE / IPV6_PMTUDISC_PROBE + IPV6_DONTFRAG, see the addon for why), so the
   * overlay's own PMTU discovery (src/core/pathmon/pmtu.ts) decides what fits. A datagram larger
   * than the interface MTU then fails with EMSGSIZE (a counted drop: lastTxError 'EMSGSIZE')
   * instead of leaving as fragments. Native only. Default off: turn it on together with the
   * core's too-big handling (ICMP back into the TUN, inner fragmentation), or inner packets
   * that are fragmented on the underlay today would be dropped instead.
   */
  readonly dontFragment?: boolean;
  /** IPv6 bind address '::' only: IPv6 peers only (default: dual stack, IPv4 peers too). */
  readonly v6Only?: boolean;
  /**
   * sendBatch may send runs of equal-sized datagrams to one destination as one UDP GSO message
   * (UDP_SEGMENT, Linux 4.18+); native only. Default: on, unless the environment has
   * BRAID_UDP_GSO=0. Turned off for the link by itself the first time the kernel refuses a GSO
   * send that goes out without it.
   *
   * What GSO changes for anything between the socket and the wire on this host: a qdisc sees a
   * run as ONE packet until the device (or the kernel, just before it) cuts it into datagrams.
   * So a netem qdisc on the path drops, delays and counts `limit` per run, not per datagram:
   * the simulator's tc backend should run the edges with BRAID_UDP_GSO=0 where per-datagram
   * loss statistics matter. Receivers and the network beyond the host see plain datagrams.
   */
  readonly gso?: boolean;
  /**
   * UDP GRO on receive (Linux 5.0+): a peer's GSO train arrives as one buffer and the addon splits
   * it, one receive instead of one per datagram. Default on unless BRAID_UDP_GRO=0; a kernel
   * without it gets the datagrams one by one.
   */
  readonly gro?: boolean;
}

/** DSCP (0..63) -> IP TOS byte; ECN bits left 0 (the kernel owns ECN for UDP). */
export function dscpToTos(dscp: number): number {
  return (dscp & 0x3f) << 2;
}

/** Reused batch view over the addon's slab and per-packet arrays. */
class NativeDatagramBatch implements DatagramBatch {
  count = 0;
  slab: Buffer = Buffer.alloc(0);
  /** The slab as a plain Uint8Array (remade only when the addon hands over another slab). */
  bytes: Uint8Array = new Uint8Array(0);
  lengths: Uint32Array = new Uint32Array(0);
  addrs: Uint32Array = new Uint32Array(0);
  ports: Uint16Array = new Uint16Array(0);
  toss: Uint8Array = new Uint8Array(0);
  addrs6: Uint8Array = new Uint8Array(0);
  families: Uint8Array = new Uint8Array(0);

  constructor(private readonly slotBytes: number) {}

  datagram(index: number): Uint8Array {
    const start = index * this.slotBytes;
    return this.bytes.subarray(start, start + this.lengths[index]);
  }
  fromAddressU32(index: number): number {
    return this.addrs[index];
  }
  fromFamily(index: number): 4 | 6 {
    // An addon built before IPv6 passes no families: every source is IPv4 then.
    return this.families[index] === 6 ? 6 : 4;
  }
  fromAddress6(index: number): Uint8Array {
    return this.addrs6.subarray(index * 16, index * 16 + 16);
  }
  fromAddress(index: number): string {
    return this.fromFamily(index) === 6 ? formatIpv6(this.addrs6, index * 16) : formatIpv4(this.addrs[index]);
  }
  fromPort(index: number): number {
    return this.ports[index];
  }
  tos(index: number): number {
    return this.toss[index];
  }
}

/** Native link: addon socket, batched receive, per-packet DSCP. */
export class NativeUdpLink implements UdpLink {
  readonly counters: UdpLinkCounters = {
    rxDatagrams: 0,
    rxBatches: 0,
    txDatagrams: 0,
    txDropped: 0,
    lastTxError: undefined,
    txTooBig: 0,
  };
  /** Buffer sizes as the kernel reports them (double the granted request). */
  readonly rcvbufBytes: number;
  readonly sndbufBytes: number;
  /**
   * Whether sendBatch uses UDP GSO. Starts as UdpLinkOptions.gso (default true); goes false for
   * good when the kernel refused a GSO send that then went out without (EIO: the device has no
   * checksum offload; EINVAL: a datagram size the route's MTU does not allow as a segment).
   */
  gso: boolean;
  /** Why gso went false at run time (errno name), for a log line. */
  gsoDisabledBy: string | undefined;
  /** 4: an AF_INET socket (IPv4 peers only); 6: AF_INET6 (IPv6 peers, and IPv4 ones when dualStack). */
  readonly family: 4 | 6;
  readonly dualStack: boolean;
  private reader: ReaderHandle | undefined;
  /** The socket's inode (matches /proc/net/udp rows); 0 when fstat failed, undefined until read. */
  private inode: number | undefined;
  private closed = false;
  private datagramCallback: ((batch: DatagramBatch) => void) | undefined;
  private readonly batch: NativeDatagramBatch;
  // One-entry parse cache: a link sends to one peer endpoint almost always, so the address
  // string is parsed once, not per packet.
  private lastAddressText = '';
  private lastAddressU32 = 0;
  /** The last destination as the socket takes it: 16 bytes on an IPv6 socket. */
  private readonly lastAddress6 = new Uint8Array(16);
  /** The last destination cannot be sent from this socket (an IPv6 peer of an IPv4 socket, ...). */
  private lastUnreachable = false;

  /** Opens the socket; throws BraidError(SOCKET_FAILED) with the reason and the fix. */
  static open(options: UdpLinkOptions, native: BraidNative = loadNative()): NativeUdpLink {
    if (native.BATCH_MAX < SEND_BATCH_MAX) {
      throw new BraidError(ErrorCode.NATIVE_MISSING, `native addon BATCH_MAX ${native.BATCH_MAX} < ${SEND_BATCH_MAX}: rebuild it (npm rebuild)`);
    }
    try {
      const socket = native.udpOpen({
        bindAddress: options.bindAddress,
        port: options.port,
        device: options.device,
        rcvbufBytes: options.rcvbufBytes ?? DEFAULT_SOCKET_BUFFER_BYTES,
        sndbufBytes: options.sndbufBytes ?? DEFAULT_SOCKET_BUFFER_BYTES,
        recvTos: options.recvTos ?? false,
        dontFragment: options.dontFragment ?? false,
        v6Only: options.v6Only ?? false,
        gro: options.gro ?? process.env.BRAID_UDP_GRO !== '0',
      });
      const gso = options.gso ?? process.env.BRAID_UDP_GSO !== '0';
      // An addon built before IPv6 reports no family: it only makes IPv4 sockets.
      const family = socket.family === 6 ? 6 : 4;
      return new NativeUdpLink(native, socket.fd, socket.port, socket.rcvbufBytes, socket.sndbufBytes, gso, family, socket.dualStack === true);
    } catch (error) {
      throw udpOpenError(options, error);
    }
  }

  private constructor(
    private readonly native: BraidNative,
    private readonly fd: number,
    readonly port: number,
    rcvbufBytes: number,
    sndbufBytes: number,
    gso: boolean,
    family: 4 | 6,
    dualStack: boolean,
  ) {
    this.rcvbufBytes = rcvbufBytes;
    this.sndbufBytes = sndbufBytes;
    this.gso = gso;
    this.family = family;
    this.dualStack = dualStack;
    this.batch = new NativeDatagramBatch(native.SLOT_BYTES);
  }

  send(bytes: Uint8Array, to: UdpEndpoint, dscp: number): boolean {
    if (this.closed) return this.drop('EBADF');
    if (to.address !== this.lastAddressText && !this.parseDestination(to.address)) return this.drop('EINVAL');
    if (this.lastUnreachable) return this.drop('EAFNOSUPPORT');
    if (!(to.port >= 1 && to.port <= 65535)) return this.drop('EINVAL');
    const sent = this.native.udpSend(
      this.fd,
      bytes,
      0,
      bytes.length,
      this.family === 6 ? this.lastAddress6 : this.lastAddressU32,
      to.port,
      dscpToTos(dscp),
    );
    if (sent < 0) return this.drop(errnoName(-sent));
    this.counters.txDatagrams++;
    return true;
  }

  /**
   * Caches `address` in the form this socket sends to (IPv4 uint32 on an IPv4 socket, 16 bytes
   * on an IPv6 one, IPv4 peers v4-mapped). False when it is not an address at all;
   * lastUnreachable when this socket cannot reach it (IPv6 from IPv4, IPv4 from v6-only).
   */
  private parseDestination(address: string): boolean {
    const v4 = parseIpv4(address);
    if (v4 !== undefined) {
      this.lastAddressU32 = v4;
      writeV4Mapped(v4, this.lastAddress6);
      this.lastUnreachable = this.family === 6 && !this.dualStack;
    } else if (parseIpv6(address, this.lastAddress6) !== undefined) {
      this.lastAddressU32 = 0;
      this.lastUnreachable = this.family === 4;
    } else {
      this.lastAddressText = '';
      return false;
    }
    this.lastAddressText = address;
    return true;
  }

  sendBatch(batch: SendBatch): number {
    const count = batch.count;
    if (count === 0) return 0;
    if (this.closed) {
      this.dropMany('EBADF', count);
      return 0;
    }
    if ((this.family === 4 && batch.ipv6Count > 0) || (this.family === 6 && !this.dualStack && batch.ipv6Count < count)) {
      // Destinations this socket cannot reach are mixed in (a configuration mistake): one send()
      // each, which drops those with EAFNOSUPPORT and sends the rest.
      let sent = 0;
      for (let i = 0; i < count; i++) if (this.send(batch.datagram(i), batch.endpoint(i), batch.tos[i]! >> 2)) sent++;
      return sent;
    }
    let sent = 0;
    for (let first = 0; first < count; ) {
      let k = this.sendFrom(batch, first, this.gso);
      if (k < 0 && this.gso && GSO_REFUSALS.has(errnoName(-k))) {
        // Maybe GSO itself was refused: the same datagrams again, one message each.
        const plain = this.sendFrom(batch, first, false);
        if (plain > 0) {
          this.gso = false;
          this.gsoDisabledBy = errnoName(-k);
        }
        k = plain;
      }
      if (k > 0) {
        sent += k;
        first += k;
        continue;
      }
      // The datagram at `first` failed (k = -errno; 0 should not happen, treat it as EIO).
      const reason = k < 0 ? errnoName(-k) : 'EIO';
      if (reason === 'EAGAIN' || reason === 'EWOULDBLOCK' || reason === 'ENOBUFS') {
        // The socket buffer is full: the rest would fail the same way, one syscall each.
        this.dropMany(reason, count - first);
        break;
      }
      // Specific to that datagram (no route to its address, too big): drop it, send the rest.
      this.drop(reason);
      first++;
    }
    this.counters.txDatagrams += sent;
    return sent;
  }

  private sendFrom(batch: SendBatch, first: number, gso: boolean): number {
    return this.native.udpSendBatch(
      this.fd,
      batch.slab,
      batch.count,
      batch.offsets,
      batch.lengths,
      batch.addrs,
      batch.ports,
      batch.tos,
      first,
      gso,
      this.family === 6 ? batch.addrs6 : null,
    );
  }

  onDatagrams(callback: (batch: DatagramBatch) => void): void {
    this.datagramCallback = callback;
    if (this.reader !== undefined || this.closed) return;
    this.reader = this.native.startReader(
      this.fd,
      'udp',
      (slab, count, lengths, addrs, ports, toss, addrs6, families) => {
        const batch = this.batch;
        if (batch.slab !== slab) {
          batch.slab = slab;
          batch.bytes = new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength);
        }
        batch.count = count;
        batch.lengths = lengths;
        batch.addrs = addrs;
        batch.ports = ports;
        batch.toss = toss;
        if (addrs6 !== undefined && families !== undefined) {
          batch.addrs6 = addrs6;
          batch.families = families;
        }
        this.counters.rxDatagrams += count;
        this.counters.rxBatches++;
        this.datagramCallback?.(batch);
      },
      (error: NativeSystemError) => {
        // A fatal socket error (EBADF): nothing more will arrive. Surface it like node:dgram
        // does for an unhandled 'error': loudly, since the link is dead.
        this.reader = undefined;
        process.emitWarning(`UDP link on port ${this.port} stopped receiving: ${error.message}`);
      },
    );
  }

  /** See UdpLink.socketStats. The inode is read once (fstat): the socket never changes. */
  socketStats(table: ReadonlyMap<number, UdpSocketRow>): LinkSocketStats | undefined {
    if (this.closed) return undefined;
    if (this.inode === undefined) this.inode = socketInode(this.fd) ?? 0;
    const row = this.inode > 0 ? table.get(this.inode) : undefined;
    const gro = this.reader !== undefined ? this.native.readerOffloadStats?.(this.reader) : undefined;
    return {
      rcvbufBytes: this.rcvbufBytes,
      rxQueuedBytes: row?.rxQueuedBytes ?? 0,
      rxDropped: row?.drops ?? 0,
      groTrains: gro?.gro ? gro.superSegments : 0,
      groDatagrams: gro?.gro ? gro.segments : 0,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reader !== undefined) this.native.stopReader(this.reader);
    this.reader = undefined;
    this.native.closeFd(this.fd);
  }

  private drop(reason: string): false {
    this.counters.txDropped++;
    this.counters.lastTxError = reason;
    if (reason === 'EMSGSIZE') this.counters.txTooBig = (this.counters.txTooBig ?? 0) + 1;
    return false;
  }

  private dropMany(reason: string, count: number): void {
    this.counters.txDropped += count;
    this.counters.lastTxError = reason;
  }
}

function udpOpenError(options: UdpLinkOptions, error: unknown): BraidError {
  const osCode = osCodeOf(error);
  const detail = error instanceof Error ? error.message : String(error);
  const host = options.bindAddress.includes(':') ? `[${options.bindAddress}]` : options.bindAddress;
  const where = `${host}:${options.port}${options.device ? ` on ${options.device}` : ''}`;
  const fix =
    osCode === 'EADDRINUSE'
      ? 'the port is taken by another socket'
      : osCode === 'EADDRNOTAVAIL'
        ? 'no local interface has that address'
        : osCode === 'ENODEV'
          ? `interface ${options.device ?? ''} does not exist`
          : osCode === 'EPERM' || osCode === 'EACCES'
            ? 'needs root or CAP_NET_RAW / CAP_NET_BIND_SERVICE'
            : undefined;
  return new BraidError(
    ErrorCode.SOCKET_FAILED,
    `cannot open UDP link ${where}: ${fix === undefined ? detail : `${fix} (${detail})`}`,
    { osCode, cause: error },
  );
}

/** Batch of one over node:dgram's per-message callback. */
class SingleDatagramBatch implements DatagramBatch {
  readonly count = 1;
  payload: Buffer = Buffer.alloc(0);
  address = '';
  port = 0;

  datagram(): Buffer {
    return this.payload;
  }
  private readonly address6 = new Uint8Array(16);

  fromAddressU32(): number {
    return parseIpv4(this.address) ?? 0;
  }
  fromFamily(): 4 | 6 {
    return this.address.includes(':') ? 6 : 4;
  }
  fromAddress6(): Uint8Array {
    const v4 = parseIpv4(this.address);
    if (v4 !== undefined) writeV4Mapped(v4, this.address6);
    else if (parseIpv6(this.address, this.address6) === undefined) this.address6.fill(0);
    return this.address6;
  }
  fromAddress(): string {
    return this.address;
  }
  fromPort(): number {
    return this.port;
  }
  tos(): number {
    return 0;
  }
}

/**
 * Fallback link over node:dgram, for machines without the addon. Same contracts, except: no
 * device binding, DSCP is ignored (node:dgram cannot set TOS per packet), each datagram is its
 * own batch, and send copies the bytes (node:dgram reads them after send() returns).
 */
export class NodeDgramLink implements UdpLink {
  readonly counters: UdpLinkCounters = {
    rxDatagrams: 0,
    rxBatches: 0,
    txDatagrams: 0,
    txDropped: 0,
    lastTxError: undefined,
    txTooBig: 0,
  };
  private closed = false;
  private datagramCallback: ((batch: DatagramBatch) => void) | undefined;
  private readonly batch = new SingleDatagramBatch();
  private readonly onSent = (error: Error | null): void => {
    if (error) this.drop(osCodeOf(error) ?? 'EIO');
  };

  static open(options: UdpLinkOptions): Promise<NodeDgramLink> {
    if (options.device !== undefined || options.recvTos || options.dontFragment) {
      return Promise.reject(
        new BraidError(
          ErrorCode.NATIVE_MISSING,
          `UDP link ${options.bindAddress}:${options.port}: device binding, recvTos and dontFragment need the ` +
            'native addon; run `npm ci` (or `npm rebuild`)',
        ),
      );
    }
    const v6 = options.bindAddress.includes(':');
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({
        type: v6 ? 'udp6' : 'udp4',
        ipv6Only: v6 && options.v6Only === true,
        recvBufferSize: options.rcvbufBytes ?? DEFAULT_SOCKET_BUFFER_BYTES,
        sendBufferSize: options.sndbufBytes ?? DEFAULT_SOCKET_BUFFER_BYTES,
      });
      const onError = (error: Error): void => {
        socket.close();
        reject(udpOpenError(options, error));
      };
      socket.once('error', onError);
      socket.bind({ address: options.bindAddress, port: options.port, exclusive: true }, () => {
        socket.off('error', onError);
        resolve(new NodeDgramLink(socket, v6));
      });
    });
  }

  readonly port: number;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly v6: boolean,
  ) {
    this.port = socket.address().port;
    socket.on('message', (payload, remote) => {
      if (this.datagramCallback === undefined) return;
      const batch = this.batch;
      batch.payload = payload;
      // IPv4 peers of a dual-stack socket arrive v4-mapped: above the links they are plain IPv4.
      batch.address = remote.address.startsWith('::ffff:') && remote.address.includes('.') ? remote.address.slice(7) : remote.address;
      batch.port = remote.port;
      this.counters.rxDatagrams++;
      this.counters.rxBatches++;
      this.datagramCallback(batch);
    });
    // Per-packet errors (ICMP unreachable reported late) must not crash the process.
    socket.on('error', (error) => this.drop(osCodeOf(error) ?? 'EIO'));
  }

  send(bytes: Uint8Array, to: UdpEndpoint, _dscp: number): boolean {
    if (this.closed) return this.drop('EBADF');
    const isV4 = parseIpv4(to.address) !== undefined;
    if ((!isV4 && parseIpv6(to.address) === undefined) || !(to.port >= 1 && to.port <= 65535)) {
      return this.drop('EINVAL');
    }
    if (!isV4 && !this.v6) return this.drop('EAFNOSUPPORT');
    const address = isV4 && this.v6 ? `::ffff:${to.address}` : to.address;
    this.socket.send(Buffer.from(bytes), to.port, address, this.onSent);
    this.counters.txDatagrams++;
    return true;
  }

  /** node:dgram has no sendmmsg: one send (and one copy) per datagram. */
  sendBatch(batch: SendBatch): number {
    let sent = 0;
    for (let i = 0; i < batch.count; i++) {
      if (this.send(batch.datagram(i), batch.endpoint(i), batch.tos[i]! >> 2)) sent++;
    }
    return sent;
  }

  onDatagrams(callback: (batch: DatagramBatch) => void): void {
    this.datagramCallback = callback;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }

  private drop(reason: string): false {
    this.counters.txDropped++;
    this.counters.lastTxError = reason;
    if (reason === 'EMSGSIZE') this.counters.txTooBig = (this.counters.txTooBig ?? 0) + 1;
    return false;
  }
}

/**
 * The native link when the addon is built, else the node:dgram fallback (which refuses options it
 * cannot honour: device, recvTos). `kind` says which one the caller got, for a startup log line.
 */
export async function openUdpLink(
  options: UdpLinkOptions,
): Promise<{ link: UdpLink; kind: 'native' | 'dgram' }> {
  const native = tryLoadNative();
  if (native !== undefined) return { link: NativeUdpLink.open(options, native), kind: 'native' };
  return { link: await NodeDgramLink.open(options), kind: 'dgram' };
}
