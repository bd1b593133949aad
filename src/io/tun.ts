// TUN device: the site side of the edge. IP packets the LAN routes into the overlay come out of
// onPackets; packets from the overlay for the LAN go in through write().
//
// Stages: openTun (addon tunOpen -> optional move to a netns -> `ip addr add`) -> onPackets
// (addon poll reader, one callback per batch) -> write (addon tunWrite) -> close.

import { execFile } from 'node:child_process';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { errnoName, osCodeOf } from './os-errors.ts';
import { loadNative, type BraidNative, type NativeSystemError, type ReaderHandle, type ReaderOffloadStats } from './native.ts';

/**
 * A batch of packets read from a TUN. Contract: the views are borrowed, valid only during the
 * callback that received the batch (the next batch overwrites the same memory). A consumer that
 * keeps a packet past the callback copies it (e.g. `Buffer.from(batch.packet(i))`).
 */
export interface PacketBatch {
  readonly count: number;
  /** Zero-copy view of packet `index` (a bare IP packet: no packet-info header), a plain Uint8Array as DatagramBatch's. */
  packet(index: number): Uint8Array;
  lengthBytes(index: number): number;
}

export interface TunCounters {
  rxPackets: number;
  rxBatches: number;
  txPackets: number;
  /** write() calls the kernel refused (EAGAIN, EIO when down, EINVAL for a malformed packet). */
  txDropped: number;
  /** The errno name of the last refused write, for the dashboard / a log line. */
  lastTxError: string | undefined;
  /** Offload only: writes that carried a coalesced TCP super-segment, and the packets inside them. */
  txSuperSegments?: number;
  txCoalescedPackets?: number;
}

/**
 * The site-facing device. Contracts:
 * - onPackets: one subscriber (a second call replaces the first). Batches are borrowed views,
 *   see PacketBatch. A callback that throws is an uncaught exception, as for an event listener. If the subscriber falls behind, the kernel queues packets for the device
 *   (txqueuelen, 500 by default) and then drops them; those drops show in
 *   `ip -s link show DEV` as TX dropped, not here.
 * - write: the kernel copies the packet before write() returns, so the caller may reuse its
 *   buffer at once. Returns false (and counts txDropped) when the kernel refuses it; never throws
 *   for a per-packet failure.
 * - onError: a fatal read error (the interface was deleted, the fd went bad). Reading has stopped;
 *   the owner should close() and report. Without a subscriber the error is only counted.
 * - close: idempotent; stops reading and closes the fd, which deletes the (non-persistent) device.
 */
export interface TunDevice {
  readonly name: string;
  readonly mtuBytes: number;
  readonly counters: Readonly<TunCounters>;
  onPackets(callback: (batch: PacketBatch) => void): void;
  onError(callback: (error: Error) => void): void;
  write(packet: Uint8Array): boolean;
  /**
   * TUN offloads (tun.offload) are on: reads are TCP super-segments split into packets before
   * onPackets sees them, and queueWrite/flushWrites coalesce. Absent or false: the plain device.
   */
  readonly offload?: boolean;
  /**
   * With offload: copies the packet into the write batch (the caller may reuse its buffer at once);
   * flushWrites writes the batch, in-order TCP segments of one flow as one super-segment. False
   * (counted in txDropped) when refused at once: closed, or larger than a TUN packet can be.
   */
  queueWrite?(packet: Uint8Array): boolean;
  /** Writes what queueWrite queued; returns how many of those packets the kernel refused. */
  flushWrites?(): number;
  /** The reader's offload counters (super-segments split, reads dropped), when offload is on. */
  offloadStats?(): ReaderOffloadStats | undefined;
  /**
   * Queues the device runs (tun.queues): each read in turn, one batch per queue per loop turn, so
   * a sparse flow's packets do not wait behind a bulk flow's ring (native/src/tun-queues.h).
   */
  readonly queues?: number;
  /** Why the device has fewer queues than asked (the kernel refused multi-queue or the eBPF steering). */
  readonly queuesError?: string;
  close(): void;
}

export interface OpenTunOptions {
  /** Interface name, at most 15 bytes (IFNAMSIZ - 1). */
  readonly name: string;
  readonly mtuBytes: number;
  /** Address with prefix, e.g. '10.10.0.1/24' (IPv6 works too: `ip` parses it). */
  readonly addressCidr?: string;
  /** The device's queue length in packets (`ip link set DEV txqueuelen N`); the kernel's default (500) when absent. */
  readonly txQueueLen?: number;
  /** A second address, e.g. the IPv6 one ('fd99::1/64'), added without duplicate address detection. */
  readonly address6Cidr?: string;
  /**
   * Network namespace to move the device into before addressing it (it must exist). The fd
   * keeps working across the move, so one process can serve a device inside a test namespace.
   */
  readonly netns?: string;
  /** Bound for each `ip` command. */
  readonly ipTimeoutMs?: number;
  /**
   * Ask for TUN offloads (IFF_VNET_HDR + TUNSETOFFLOAD): the device's `offload` says whether the
   * kernel took them. Off when absent.
   */
  readonly offload?: boolean;
  /** Queues to ask for (1..TUN_QUEUES_MAX, default 1): see TunDevice.queues. */
  readonly queues?: number;
}

/**
 * Queues of a Braid TUN by default (`tun.queues`). Queue 0 takes the realtime classes; a flow of
 * the others shares a queue with a given bulk flow with probability 1/7. Each queue costs an fd and
 * a reader (its slab is touched only as far as its batches go). docs/BENCHMARKS.md "RTT under
 * load, session 9" has what it bought.
 */
export const DEFAULT_TUN_QUEUES = 8;

const DEFAULT_IP_TIMEOUT_MS = 5_000;

/**
 * The TUN's queue, in packets (the kernel's default is 500): the ring where the site's packets
 * wait for Braid to read them. When Braid's CPU is the bottleneck, TCP fills it whatever its size,
 * so its length is the delay under load: 500 packets at 250 Mbit/s is ~23 ms. 64 is ~3 ms there
 * (OpenVPN sets 100). docs/BENCHMARKS.md "Latency under load" has the measurement.
 */
export const DEFAULT_TUN_TX_QUEUE_LEN = 64;
const CIDR_PATTERN = /^[0-9a-fA-F:.]+\/\d{1,3}$/;

/** Opens, configures and addresses a TUN. Throws BraidError (TUN_OPEN_FAILED / TUN_ADDRESS_FAILED). */
export async function openTun(options: OpenTunOptions): Promise<TunDevice> {
  const native = loadNative();
  if (options.address6Cidr !== undefined && !CIDR_PATTERN.test(options.address6Cidr)) {
    throw new BraidError(ErrorCode.TUN_ADDRESS_FAILED, `TUN ${options.name}: address '${options.address6Cidr}' is not ADDRESS/PREFIX (e.g. fd99::1/64)`);
  }
  if (options.addressCidr !== undefined && !CIDR_PATTERN.test(options.addressCidr)) {
    throw new BraidError(
      ErrorCode.TUN_ADDRESS_FAILED,
      `TUN ${options.name}: address '${options.addressCidr}' is not ADDRESS/PREFIX (e.g. 10.10.0.1/24)`,
    );
  }
  let opened: { fd: number; name: string; offload?: boolean; fds?: readonly number[]; queues?: number; queuesError?: string };
  try {
    opened = native.tunOpen(options.name, options.mtuBytes, options.offload === true, options.queues ?? 1);
  } catch (error) {
    throw tunOpenError(options.name, error);
  }
  const fds = opened.fds !== undefined && opened.fds.length > 0 ? opened.fds : [opened.fd];
  const timeoutMs = options.ipTimeoutMs ?? DEFAULT_IP_TIMEOUT_MS;
  try {
    const ns = options.netns;
    if (ns !== undefined) {
      await runIp(['link', 'set', 'dev', opened.name, 'netns', ns], timeoutMs);
      // Moving a device between namespaces takes it down; bring it back up there.
      await runIp(['-n', ns, 'link', 'set', 'dev', opened.name, 'up'], timeoutMs);
    }
    if (options.addressCidr !== undefined) {
      const nsArgs = ns === undefined ? [] : ['-n', ns];
      await runIp([...nsArgs, 'addr', 'add', options.addressCidr, 'dev', opened.name], timeoutMs);
    }
    if (options.txQueueLen !== undefined) {
      const nsArgs = ns === undefined ? [] : ['-n', ns];
      await runIp([...nsArgs, 'link', 'set', 'dev', opened.name, 'txqueuelen', String(options.txQueueLen)], timeoutMs);
    }
    if (options.address6Cidr !== undefined) {
      // nodad: usable at once (nothing else is on a TUN to collide with).
      const nsArgs = ns === undefined ? [] : ['-n', ns];
      await runIp([...nsArgs, 'addr', 'add', options.address6Cidr, 'dev', opened.name, 'nodad'], timeoutMs);
    }
  } catch (error) {
    for (const fd of fds) native.closeFd(fd); // the device goes away with its last fd
    const detail = error instanceof Error ? error.message : String(error);
    throw new BraidError(ErrorCode.TUN_ADDRESS_FAILED, `TUN ${opened.name}: ${detail}`, {
      osCode: osCodeOf(error),
      cause: error,
    });
  }
  const queuesError = (options.queues ?? 1) > fds.length ? (opened.queuesError ?? `the addon opened ${fds.length} of ${options.queues} queues`) : undefined;
  return new NativeTunDevice(native, fds, opened.name, options.mtuBytes, opened.offload === true, queuesError);
}

function tunOpenError(name: string, error: unknown): BraidError {
  const osCode = osCodeOf(error);
  const detail = error instanceof Error ? error.message : String(error);
  const fix =
    osCode === 'EPERM' || osCode === 'EACCES'
      ? 'needs root or CAP_NET_ADMIN'
      : osCode === 'ENOENT' || osCode === 'ENODEV'
        ? 'the kernel has no TUN support (/dev/net/tun missing; try `modprobe tun`)'
        : osCode === 'EBUSY'
          ? 'the device is in use by another process'
          : osCode === 'EINVAL'
            ? 'an interface of another type already has this name'
            : undefined;
  if (fix === undefined && osCode === undefined) {
    // Not an OS error: a bad argument (name too long, MTU out of range). Say so plainly.
    return new BraidError(ErrorCode.TUN_OPEN_FAILED, `cannot open TUN ${name}: ${detail}`, { cause: error });
  }
  return new BraidError(
    ErrorCode.TUN_OPEN_FAILED,
    `cannot open TUN ${name}: ${fix ?? detail}${fix === undefined ? '' : ` (${detail})`}`,
    { osCode, cause: error },
  );
}

/** Runs `ip ARGS` without a shell, bounded in time; rejects with ip's own first stderr line. */
function runIp(args: readonly string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: timeoutMs }, (error, _stdout, stderr) => {
      if (!error) {
        resolve();
        return;
      }
      const line = String(stderr).trim().split('\n')[0] || error.message.split('\n')[0];
      const why = error.killed ? `timed out after ${timeoutMs} ms` : line;
      reject(Object.assign(new Error(`ip ${args.join(' ')}: ${why}`), { cause: error }));
    });
  });
}

/** Reused batch view over the addon's slab: one object for the device's lifetime. */
class SlabPacketBatch implements PacketBatch {
  count = 0;
  slab: Buffer = Buffer.alloc(0);
  /** The slab as a plain Uint8Array (udp.ts NativeDatagramBatch says why). */
  bytes: Uint8Array = new Uint8Array(0);
  lengths: Uint32Array = new Uint32Array(0);

  constructor(private readonly slotBytes: number) {}

  packet(index: number): Uint8Array {
    const start = index * this.slotBytes;
    return this.bytes.subarray(start, start + this.lengths[index]);
  }

  lengthBytes(index: number): number {
    return this.lengths[index];
  }
}

/**
 * Bytes of the offload write batch: a flush comes when the next packet does not fit or
 * TUN_WRITE_BATCH_MAX packets are queued. 1 MiB holds a full batch of 256 packets up to 4 KB
 * (and fewer jumbo ones): the driver flushes once per input batch of at most 64 datagrams anyway.
 */
const WRITE_SLAB_BYTES = 1 << 20;
/** The largest IP packet (IPv4 total length field); larger ones are refused, as the kernel would. */
const MAX_TUN_PACKET_BYTES = 65_535;

class NativeTunDevice implements TunDevice {
  readonly counters: TunCounters & { txSuperSegments: number; txCoalescedPackets: number } = {
    rxPackets: 0,
    rxBatches: 0,
    txPackets: 0,
    txDropped: 0,
    lastTxError: undefined,
    txSuperSegments: 0,
    txCoalescedPackets: 0,
  };
  /** The offload write batch (allocated only with offload). */
  private writeSlab: Buffer | undefined;
  private writeOffsets = new Uint32Array(0);
  private writeLengths = new Uint32Array(0);
  private writeCount = 0;
  private writeBytes = 0;
  private readonly writeMax: number;
  private readonly writeResult = new Int32Array(3);
  /** Refusals of flushes queueWrite made itself (a full batch), reported by the next flushWrites. */
  private refusedEarly = 0;
  /** One reader per queue, all feeding onPackets; empty until someone listens or after a fatal error. */
  private readers: ReaderHandle[] = [];
  private closed = false;
  private readonly fd: number;
  private packetCallback: ((batch: PacketBatch) => void) | undefined;
  private errorCallback: ((error: Error) => void) | undefined;
  private readonly batch: SlabPacketBatch;

  constructor(
    private readonly native: BraidNative,
    private readonly fds: readonly number[],
    readonly name: string,
    readonly mtuBytes: number,
    readonly offload: boolean = false,
    readonly queuesError: string | undefined = undefined,
  ) {
    // Writes go to queue 0's fd: which fd a packet is written to does not steer anything (the
    // eBPF program picks the read queue by the packet alone).
    this.fd = fds[0]!;
    this.batch = new SlabPacketBatch(native.SLOT_BYTES);
    this.writeMax = native.TUN_WRITE_BATCH_MAX ?? 0;
    if (offload) {
      this.writeSlab = Buffer.allocUnsafe(WRITE_SLAB_BYTES);
      this.writeOffsets = new Uint32Array(this.writeMax);
      this.writeLengths = new Uint32Array(this.writeMax);
    }
  }

  get queues(): number {
    return this.fds.length;
  }

  onPackets(callback: (batch: PacketBatch) => void): void {
    this.packetCallback = callback;
    if (this.readers.length > 0 || this.closed) return;
    // Start reading only once someone listens: unread packets wait in the kernel queue. Every
    // queue's reader delivers into the same batch object: the loop runs one callback at a time.
    const onBatch = (slab: Buffer, count: number, lengths: Uint32Array): void => {
      const batch = this.batch;
      if (batch.slab !== slab) {
        batch.slab = slab;
        batch.bytes = new Uint8Array(slab.buffer, slab.byteOffset, slab.byteLength);
      }
      batch.lengths = lengths;
      batch.count = count;
      this.counters.rxPackets += count;
      this.counters.rxBatches++;
      this.packetCallback?.(batch);
    };
    const onError = (error: NativeSystemError): void => {
      // One queue failing is the device failing (deleted, fd gone): stop them all, report once.
      if (this.readers.length === 0) return;
      this.stopReaders();
      this.errorCallback?.(error);
    };
    for (const fd of this.fds) this.readers.push(this.native.startReader(fd, 'tun', onBatch, onError));
  }

  private stopReaders(): void {
    const readers = this.readers;
    this.readers = [];
    for (const reader of readers) this.native.stopReader(reader);
  }

  onError(callback: (error: Error) => void): void {
    this.errorCallback = callback;
  }

  write(packet: Uint8Array): boolean {
    if (this.closed) {
      this.counters.txDropped++;
      return false;
    }
    const written = this.native.tunWrite(this.fd, packet, 0, packet.length, this.offload);
    if (written < 0) {
      this.counters.txDropped++;
      this.counters.lastTxError = errnoName(-written);
      return false;
    }
    this.counters.txPackets++;
    return true;
  }

  queueWrite(packet: Uint8Array): boolean {
    const slab = this.writeSlab;
    if (slab === undefined) return this.write(packet);
    const length = packet.length;
    if (this.closed || length === 0 || length > MAX_TUN_PACKET_BYTES) {
      this.counters.txDropped++;
      return false;
    }
    if (this.writeCount === this.writeMax || this.writeBytes + length > slab.length) this.refusedEarly += this.flushWrites();
    const at = this.writeBytes;
    slab.set(packet, at);
    this.writeOffsets[this.writeCount] = at;
    this.writeLengths[this.writeCount++] = length;
    this.writeBytes = at + length;
    return true;
  }

  flushWrites(): number {
    let refused = this.refusedEarly;
    this.refusedEarly = 0;
    const count = this.writeCount;
    if (count === 0 || this.writeSlab === undefined) return refused;
    this.writeCount = 0;
    this.writeBytes = 0;
    if (this.closed) {
      this.counters.txDropped += count;
      return refused + count;
    }
    const result = this.writeResult;
    const written = this.native.tunWriteBatch(this.fd, this.writeSlab, count, this.writeOffsets, this.writeLengths, result);
    this.counters.txPackets += written;
    this.counters.txSuperSegments += result[0]!;
    this.counters.txCoalescedPackets += result[1]!;
    if (written < count) {
      this.counters.txDropped += count - written;
      this.counters.lastTxError = errnoName(result[2]!);
      refused += count - written;
    }
    return refused;
  }

  /** The queues' readers' counters, summed. */
  offloadStats(): ReaderOffloadStats | undefined {
    const statsOf = this.native.readerOffloadStats;
    if (!this.offload || this.readers.length === 0 || statsOf === undefined) return undefined;
    let superSegments = 0;
    let segments = 0;
    let droppedHeader = 0;
    let droppedPacket = 0;
    let droppedUnsupported = 0;
    let vnet = false;
    for (const reader of this.readers) {
      const s = statsOf(reader);
      vnet ||= s.vnet;
      superSegments += s.superSegments;
      segments += s.segments;
      droppedHeader += s.droppedHeader;
      droppedPacket += s.droppedPacket;
      droppedUnsupported += s.droppedUnsupported;
    }
    return { vnet, superSegments, segments, droppedHeader, droppedPacket, droppedUnsupported };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopReaders();
    for (const fd of this.fds) this.native.closeFd(fd);
  }
}
