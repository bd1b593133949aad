// Loader and typed surface of the native addon (native/src/braid_native.c).
//
// The addon is built by `npm ci` (root package.json "install": node-gyp rebuild) into
// native/build/Release/braid_native.node. Loading is lazy and cached, so code paths that never
// touch the OS (the simulator's virtual time, unit tests with fakes) work without it.

import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BraidError, ErrorCode } from '../core/errors.ts';

/** The package's own native/ directory: the only place an addon is ever loaded from. */
export const NATIVE_DIR: string = fileURLToPath(new URL('../../native/', import.meta.url));

/**
 * Path of the built addon, relative to this file so it works from any working directory.
 * BRAID_NATIVE_ADDON overrides it, for tests (the missing-addon path; the AddressSanitizer build
 * in native/build-asan/), and only within NATIVE_DIR: see addonPathProblem.
 */
export const NATIVE_ADDON_PATH: string = process.env.BRAID_NATIVE_ADDON ?? join(NATIVE_DIR, 'build/Release/braid_native.node');

/**
 * Why `path` may not be loaded as the addon, or undefined when it may (issue 14, finding 11).
 * `braid up` runs as root: an environment variable that makes it dlopen() any shared object is
 * code execution for whoever can set the environment of the service (a drop-in, a wrapper, a
 * sudo rule that keeps the environment). So an override must resolve, symlinks followed, to a
 * `.node` file inside the package's own native/ directory, which only whoever installed Braid can
 * write. Tests that need another build put it there (native/build-asan/); a path that does not
 * exist is refused the same way, so "point it at nothing" still tests the missing-addon path.
 */
export function addonPathProblem(path: string, nativeDir: string = NATIVE_DIR): string | undefined {
  const inside = (p: string, dir: string): boolean => {
    const rel = relative(dir, p);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  };
  const refusal = `refused: BRAID_NATIVE_ADDON must name a .node file inside ${nativeDir}`;
  if (!path.endsWith('.node')) return refusal;
  let real: string;
  let realDir: string;
  try {
    realDir = realpathSync(nativeDir);
    real = realpathSync(path);
  } catch {
    return refusal;
  }
  return inside(real, realDir) ? undefined : refusal;
}

export interface NativeTun {
  readonly fd: number;
  /** The interface name the kernel gave (equals the requested one unless it was a pattern). */
  readonly name: string;
  /**
   * IFF_VNET_HDR + TUNSETOFFLOAD took (asked for with tunOpen's offload): reads may be TCP
   * super-segments, which the reader splits; writes need a vnet header (tunWrite's vnet,
   * tunWriteBatch). Absent from an addon built before offloads (then false).
   */
  readonly offload?: boolean;
  /**
   * One fd per queue (fds[0] is fd) when tunOpen asked for queues: a multi-queue TUN whose queue
   * per packet native/src/tun-queues.c's eBPF program picks (realtime DSCPs to 0, other flows by
   * hash). Every fd must be read; writes may go to any. Absent from an addon built before queues.
   */
  readonly fds?: readonly number[];
  /** Queues the device has (1 when the kernel refused more; queuesError says why). */
  readonly queues?: number;
  readonly queuesError?: string;
}

/**
 * What a reader's offload did (readerOffloadStats): a TUN's with vnet (TCP super-segments), a UDP
 * socket's with gro (coalesced trains of datagrams); all 0 without either.
 */
export interface ReaderOffloadStats {
  readonly vnet: boolean;
  readonly gro?: boolean;
  /** TCP super-segments (UDP: GRO trains) read, and the packets (datagrams) they were split into. */
  readonly superSegments: number;
  readonly segments: number;
  /** Reads dropped: a vnet header that contradicts itself, headers that do not match it, a GSO type not asked for. */
  readonly droppedHeader: number;
  readonly droppedPacket: number;
  readonly droppedUnsupported: number;
}

export interface NativeUdpOpenOptions {
  /**
   * Address to bind: IPv4 ('0.0.0.0' for any) makes an AF_INET socket; IPv6 an AF_INET6 one,
   * '::' dual stack (IPv4 peers as v4-mapped addresses) unless v6Only.
   */
  readonly bindAddress: string;
  /** 0 picks an ephemeral port. */
  readonly port: number;
  /** SO_BINDTODEVICE: send and receive only through this interface (one socket per WAN link). */
  readonly device?: string;
  /** SO_RCVBUFFORCE, falling back to SO_RCVBUF (capped by net.core.rmem_max) without privilege. */
  readonly rcvbufBytes?: number;
  readonly sndbufBytes?: number;
  /** Default IP TOS byte for packets sent without a per-packet TOS. */
  readonly tos?: number;
  /** IP_RECVTOS (IPV6_RECVTCLASS): report each received datagram's TOS byte in the batch. */
  readonly recvTos?: boolean;
  /** DF on, never fragment locally, the cached PMTU ignored (IP_PMTUDISC_PROBE; IPv6: PROBE + DONTFRAG). */
  readonly dontFragment?: boolean;
  /** '::' only: no IPv4 peers. */
  readonly v6Only?: boolean;
  /** UDP_GRO: trains of same-sized datagrams arrive as one buffer, split by the reader (not fatal when refused). */
  readonly gro?: boolean;
}

export interface NativeUdpSocket {
  readonly fd: number;
  /** The bound port (the ephemeral one when 0 was asked for). */
  readonly port: number;
  /** As getsockopt reports them: Linux doubles the request to cover its bookkeeping. */
  readonly rcvbufBytes: number;
  readonly sndbufBytes: number;
  /** 4 (AF_INET) or 6 (AF_INET6); absent from an addon built before IPv6 (then 4). */
  readonly family?: 4 | 6;
  /** AF_INET6 socket that also carries IPv4 (bound to '::' without v6Only). */
  readonly dualStack?: boolean;
  /** UDP_GRO was asked for and the kernel took it. */
  readonly gro?: boolean;
}

/**
 * One batch from a TUN reader. Packet i is
 * slab[i * SLOT_BYTES, i * SLOT_BYTES + lengths[i]), for i < count. The slab and arrays are
 * reused for the next batch: valid only during the callback.
 */
export type TunBatchCallback = (slab: Buffer, count: number, lengths: Uint32Array) => void;

/**
 * One batch from a UDP reader: as TunBatchCallback, plus per datagram the source address
 * (host-order IPv4 uint32, 0 for IPv6), source port, received TOS byte (0 unless recvTos was
 * set), the source as 16 bytes (IPv4 v4-mapped) and its family (4 or 6). The last two are
 * absent from an addon built before IPv6.
 */
export type UdpBatchCallback = (
  slab: Buffer,
  count: number,
  lengths: Uint32Array,
  addrs: Uint32Array,
  ports: Uint16Array,
  tos: Uint8Array,
  addrs6?: Uint8Array,
  families?: Uint8Array,
) => void;

/** An addon error: `.code` is the errno name ('EPERM'), `.syscall` names the call. */
export interface NativeSystemError extends Error {
  readonly code: string;
  readonly errno?: number;
  readonly syscall?: string;
}

declare const aeadHandleBrand: unique symbol;
/** Opaque handle from aeadCreate: one key's OpenSSL contexts (freed at GC or by aeadDestroy). */
export interface AeadHandle {
  readonly [aeadHandleBrand]: true;
}

declare const readerHandleBrand: unique symbol;
/** Opaque handle from startReader; only stopReader reads it. */
export interface ReaderHandle {
  readonly [readerHandleBrand]: true;
}

export interface BraidNative {
  /** Packets per batch (recvmmsg / sendmmsg vector size). */
  readonly BATCH_MAX: number;
  /** Stride of the reader slab: packet i starts at i * SLOT_BYTES. */
  readonly SLOT_BYTES: number;
  /** Packets per tunWriteBatch call; absent from an addon built before offloads. */
  readonly TUN_WRITE_BATCH_MAX?: number;
  /**
   * Opens a TUN (IFF_TUN | IFF_NO_PI, nonblocking), sets its MTU and brings it up. Throws. With
   * offload, also IFF_VNET_HDR + TUNSETOFFLOAD (checksum, TSO4, TSO6) when the kernel takes
   * them; the result's offload says whether it did.
   */
  tunOpen(name: string, mtuBytes: number, offload?: boolean, queues?: number): NativeTun;
  /** Most queues tunOpen takes; absent from an addon built before queues. */
  readonly TUN_QUEUES_MAX?: number;
  /** Tests: the queue (0..queues-1) tun-queues.c's steering rule picks for this IP packet. */
  tunQueueOfForTest?(packet: Uint8Array, queues: number): number;
  /** Nonblocking UDP socket (IPv4, IPv6 or dual stack by bindAddress), configured and bound. Throws. */
  udpOpen(options: NativeUdpOpenOptions): NativeUdpSocket;
  /**
   * Polls fd on the event loop thread (no threadpool) and calls onBatch once per batch of up
   * to BATCH_MAX packets. onError is called once on a fatal read error; the reader then stops.
   * The reader keeps the event loop alive until stopReader.
   */
  startReader(
    fd: number,
    kind: 'tun',
    onBatch: TunBatchCallback,
    onError?: (error: NativeSystemError) => void,
  ): ReaderHandle;
  startReader(
    fd: number,
    kind: 'udp',
    onBatch: UdpBatchCallback,
    onError?: (error: NativeSystemError) => void,
  ): ReaderHandle;
  /** Idempotent; safe inside the reader's own callback. (closeFd also stops it.) */
  stopReader(handle: ReaderHandle): void;
  /**
   * Bytes written, or a negative errno (-11 EAGAIN, -5 EIO). Never throws for OS errors. vnet:
   * the TUN was opened with offload (the packet goes behind a zero virtio_net_hdr).
   */
  tunWrite(fd: number, buf: Uint8Array, offset: number, length: number, vnet?: boolean): number;
  /**
   * For a TUN opened with offload: writes packets slab[offsets[i], +lengths[i]) for i < count
   * (<= TUN_WRITE_BATCH_MAX), in-order TCP segments of one flow coalesced into one super-segment
   * per write (GSO virtio_net_hdr), everything else one write each. Returns the packets written
   * (count minus refused); result gets [super-segments written, packets inside them, errno of
   * the last refused write or 0]. Never throws for OS errors.
   */
  tunWriteBatch(fd: number, slab: Uint8Array, count: number, offsets: Uint32Array, lengths: Uint32Array, result: Int32Array): number;
  /** Offload counters of a TUN reader (absent from an addon built before offloads). */
  readerOffloadStats?(handle: ReaderHandle): ReaderOffloadStats;
  /** Tests: the packets the offload reader makes of one read (vnet header + packet), or the negative drop reason. */
  tunSplitForTest?(read: Uint8Array): Buffer[] | number;
  /** Tests: the writes (vnet header + bytes) tunWriteBatch would make of these packets. */
  tunCoalesceForTest?(slab: Uint8Array, count: number, offsets: Uint32Array, lengths: Uint32Array): Buffer[];
  /**
   * sendmsg to address:port with TOS byte `tos` as a per-packet cmsg (IPV6_TCLASS for an IPv6
   * destination), or the socket default when tos is -1. Address: host-order uint32 or IPv4
   * text for an AF_INET socket; IPv6 text or 16 bytes (IPv4 peers v4-mapped) for an AF_INET6
   * one. Bytes sent or negative errno (-EMSGSIZE: bigger than the interface MTU with DF).
   */
  udpSend(
    fd: number,
    buf: Uint8Array,
    offset: number,
    length: number,
    address: number | string | Uint8Array,
    port: number,
    tos: number,
  ): number;
  /**
   * One sendmmsg for up to BATCH_MAX datagrams: datagram i is
   * slab[offsets[i], offsets[i] + lengths[i]) to addrs[i]:ports[i] with TOS tos[i] (socket
   * default when tos is null). Returns how many were sent (the rest were not), or a negative
   * errno when none were. With `first`, sends datagrams [first, count) and counts from first:
   * the retry after a partial send. With `gso`, runs of consecutive datagrams to one
   * address:port with one TOS, all of one size but the last (no longer), go as one UDP_SEGMENT
   * message of up to 64 datagrams and 65507 bytes; a refusal (-EIO without checksum offload)
   * then covers the whole run, and the caller may retry without gso. With `addrs6` (16 bytes
   * per datagram, IPv4 peers v4-mapped; required for an AF_INET6 socket) the destinations come
   * from it and `addrs` is not read.
   */
  udpSendBatch(
    fd: number,
    slab: Uint8Array,
    count: number,
    offsets: Uint32Array,
    lengths: Uint32Array,
    addrs: Uint32Array,
    ports: Uint16Array,
    tos: Uint8Array | null,
    first?: number,
    gso?: boolean,
    addrs6?: Uint8Array | null,
  ): number;
  /** close(2), after stopping any reader still polling the fd. Throws on EBADF. */
  closeFd(fd: number): void;
  /**
   * True when this Node exports OpenSSL's EVP functions to addons (official and distribution
   * builds do); the aead* calls throw ERR_BRAID_AEAD_UNAVAILABLE otherwise.
   */
  readonly aeadAvailable: boolean;
  /** OpenSSL_version(OPENSSL_VERSION) of the OpenSSL the AEAD runs on, when aeadAvailable. */
  readonly opensslVersion: string | undefined;
  /**
   * One EVP_CIPHER_CTX per direction for a 32-byte key, keyed once. The key bytes are not kept.
   * Throws on a bad key length or cipher name.
   */
  aeadCreate(key: Uint8Array, cipher: 'chacha20-poly1305' | 'aes-256-gcm'): AeadHandle;
  /**
   * Seals with nonce = 4 zero bytes || counter (u64 LE): writes ciphertext || 16-byte tag into
   * out (which may be plaintext itself, with 16 bytes to spare) and returns plaintext.length + 16,
   * or -1 if OpenSSL failed. counter: an integer in [0, 2^64), as a number or a bigint (throws
   * otherwise).
   */
  aeadSeal(handle: AeadHandle, counter: number | bigint, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
  /**
   * aeadSeal in place on buf[offset, offset + length), the tag written after it: returns
   * length + 16, or -1 if OpenSSL failed. Throws when buf has no room for the tag.
   */
  aeadSealAt(handle: AeadHandle, counter: number | bigint, buf: Uint8Array, offset: number, length: number, aad: Uint8Array): number;
  /**
   * Opens ciphertext || tag into out (may be ciphertext itself) and returns the plaintext length,
   * or -1 when the tag does not verify or the input is shorter than a tag (out is then zeroed).
   */
  aeadOpen(handle: AeadHandle, counter: number | bigint, ciphertext: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
  /** Frees the handle's contexts now (idempotent); any later use of the handle throws. */
  aeadDestroy(handle: AeadHandle): void;
}

const requireAddon = createRequire(import.meta.url);

let cached: { readonly addon?: BraidNative; readonly error?: BraidError } | undefined;

function load(): { readonly addon?: BraidNative; readonly error?: BraidError } {
  if (cached) return cached;
  try {
    const problem = process.env.BRAID_NATIVE_ADDON === undefined ? undefined : addonPathProblem(NATIVE_ADDON_PATH);
    if (problem !== undefined) throw new Error(problem);
    cached = { addon: requireAddon(NATIVE_ADDON_PATH) as BraidNative };
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    cached = {
      error: new BraidError(
        ErrorCode.NATIVE_MISSING,
        `braid native addon is not built or does not load (${NATIVE_ADDON_PATH}: ${reason}); ` +
          'run `npm ci` (or `npm rebuild`) with a C compiler and Node headers installed',
        { cause },
      ),
    };
  }
  return cached;
}

/** The addon, or a BraidError with code NATIVE_MISSING saying how to build it. */
export function loadNative(): BraidNative {
  const result = load();
  if (result.addon) return result.addon;
  throw result.error;
}

/** The addon, or undefined when it is not built (callers that have a fallback). */
export function tryLoadNative(): BraidNative | undefined {
  return load().addon;
}

/** Why the addon is unavailable, for a log line or a test skip reason. */
export function nativeLoadError(): BraidError | undefined {
  return load().error;
}
