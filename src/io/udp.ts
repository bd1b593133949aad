// UDP links: one socket per WAN link, carrying the overlay to the peer edges.
//
// Stages: open (addon udpOpen: bind, SO_BINDTODEVICE, 4 MiB buffers) -> onDatagrams (addon poll
// reader, recvmmsg, one callback per batch) -> send (addon udpSend, DSCP as a per-packet TOS
// cmsg) -> close. NodeDgramLink is the same interface over node:dgram for machines where the
// addon is not built (no device binding, no DSCP marking, one datagram per callback).

import dgram from 'node:dgram';
import { errnoName, IoError, osCodeOf } from './errors.ts';
import { formatIpv4, parseIpv4 } from './ipv4.ts';
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

export interface UdpEndpoint {
  /** IPv4 dotted quad. */
  readonly address: string;
  readonly port: number;
}

/**
 * Datagrams received in one batch. Contract: borrowed views, valid only during the callback that
 * received the batch (the next batch reuses the memory); copy what must outlive it.
 */
export interface DatagramBatch {
  readonly count: number;
  /** Zero-copy view of datagram `index`'s payload. */
  datagram(index: number): Buffer;
  /** Source IPv4 as a host-order uint32 (127.0.0.1 is 0x7f000001): no string per packet. */
  fromAddressU32(index: number): number;
  /** Source IPv4 as text (formats a string: prefer fromAddressU32 on the hot path). */
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
  send(bytes: Uint8Array, to: UdpEndpoint, dscp: number): boolean;
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
}

/** DSCP (0..63) -> IP TOS byte; ECN bits left 0 (the kernel owns ECN for UDP). */
export function dscpToTos(dscp: number): number {
  return (dscp & 0x3f) << 2;
}

/** Reused batch view over the addon's slab and per-packet arrays. */
class NativeDatagramBatch implements DatagramBatch {
  count = 0;
  slab: Buffer = Buffer.alloc(0);
  lengths: Uint32Array = new Uint32Array(0);
  addrs: Uint32Array = new Uint32Array(0);
  ports: Uint16Array = new Uint16Array(0);
  toss: Uint8Array = new Uint8Array(0);

  constructor(private readonly slotBytes: number) {}

  datagram(index: number): Buffer {
    const start = index * this.slotBytes;
    return this.slab.subarray(start, start + this.lengths[index]);
  }
  fromAddressU32(index: number): number {
    return this.addrs[index];
  }
  fromAddress(index: number): string {
    return formatIpv4(this.addrs[index]);
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
  };
  /** Buffer sizes as the kernel reports them (double the granted request). */
  readonly rcvbufBytes: number;
  readonly sndbufBytes: number;
  private reader: ReaderHandle | undefined;
  private closed = false;
  private datagramCallback: ((batch: DatagramBatch) => void) | undefined;
  private readonly batch: NativeDatagramBatch;
  // One-entry parse cache: a link sends to one peer endpoint almost always, so the address
  // string is parsed once, not per packet.
  private lastAddressText = '';
  private lastAddressU32 = 0;

  /** Opens the socket; throws IoError('UDP_OPEN_FAILED') with the reason and the fix. */
  static open(options: UdpLinkOptions, native: BraidNative = loadNative()): NativeUdpLink {
    try {
      const socket = native.udpOpen({
        bindAddress: options.bindAddress,
        port: options.port,
        device: options.device,
        rcvbufBytes: options.rcvbufBytes ?? DEFAULT_SOCKET_BUFFER_BYTES,
        sndbufBytes: options.sndbufBytes ?? DEFAULT_SOCKET_BUFFER_BYTES,
        recvTos: options.recvTos ?? false,
      });
      return new NativeUdpLink(native, socket.fd, socket.port, socket.rcvbufBytes, socket.sndbufBytes);
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
  ) {
    this.rcvbufBytes = rcvbufBytes;
    this.sndbufBytes = sndbufBytes;
    this.batch = new NativeDatagramBatch(native.SLOT_BYTES);
  }

  send(bytes: Uint8Array, to: UdpEndpoint, dscp: number): boolean {
    if (this.closed) return this.drop('EBADF');
    let addressU32 = this.lastAddressU32;
    if (to.address !== this.lastAddressText) {
      const parsed = parseIpv4(to.address);
      if (parsed === undefined) return this.drop('EINVAL');
      this.lastAddressText = to.address;
      this.lastAddressU32 = addressU32 = parsed;
    }
    if (!(to.port >= 1 && to.port <= 65535)) return this.drop('EINVAL');
    const sent = this.native.udpSend(
      this.fd,
      bytes,
      0,
      bytes.length,
      addressU32,
      to.port,
      dscpToTos(dscp),
    );
    if (sent < 0) return this.drop(errnoName(-sent));
    this.counters.txDatagrams++;
    return true;
  }

  onDatagrams(callback: (batch: DatagramBatch) => void): void {
    this.datagramCallback = callback;
    if (this.reader !== undefined || this.closed) return;
    this.reader = this.native.startReader(
      this.fd,
      'udp',
      (slab, count, lengths, addrs, ports, toss) => {
        const batch = this.batch;
        batch.slab = slab;
        batch.count = count;
        batch.lengths = lengths;
        batch.addrs = addrs;
        batch.ports = ports;
        batch.toss = toss;
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
    return false;
  }
}

function udpOpenError(options: UdpLinkOptions, error: unknown): IoError {
  const osCode = osCodeOf(error);
  const detail = error instanceof Error ? error.message : String(error);
  const where = `${options.bindAddress}:${options.port}${options.device ? ` on ${options.device}` : ''}`;
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
  return new IoError(
    'UDP_OPEN_FAILED',
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
  fromAddressU32(): number {
    return parseIpv4(this.address) ?? 0;
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
  };
  private closed = false;
  private datagramCallback: ((batch: DatagramBatch) => void) | undefined;
  private readonly batch = new SingleDatagramBatch();
  private readonly onSent = (error: Error | null): void => {
    if (error) this.drop(osCodeOf(error) ?? 'EIO');
  };

  static open(options: UdpLinkOptions): Promise<NodeDgramLink> {
    if (options.device !== undefined || options.recvTos) {
      return Promise.reject(
        new IoError(
          'NATIVE_MISSING',
          `UDP link ${options.bindAddress}:${options.port}: device binding and recvTos need the ` +
            'native addon; run `npm ci` (or `npm rebuild`)',
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({
        type: 'udp4',
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
        resolve(new NodeDgramLink(socket));
      });
    });
  }

  readonly port: number;

  private constructor(private readonly socket: dgram.Socket) {
    this.port = socket.address().port;
    socket.on('message', (payload, remote) => {
      if (this.datagramCallback === undefined) return;
      const batch = this.batch;
      batch.payload = payload;
      batch.address = remote.address;
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
    if (parseIpv4(to.address) === undefined || !(to.port >= 1 && to.port <= 65535)) {
      return this.drop('EINVAL');
    }
    this.socket.send(Buffer.from(bytes), to.port, to.address, this.onSent);
    this.counters.txDatagrams++;
    return true;
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
