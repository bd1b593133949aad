/**
 * Padding a frame so that its sealed datagram is exactly a given size: the padded probes of path
 * MTU discovery (src/core/pathmon/pmtu.ts). The filler is Frame.padding (field 15, bytes), which
 * every reader skips; it goes inside the sealed part, so a probe looks like a data packet of that
 * size to anything on the path.
 */
import { envelopeHeaderSize } from './codec.ts';
import { AEAD_TAG_BYTES } from './overhead.ts';
import { allocBytes } from '../bytes.ts';

/** Frame field 15, wire type 2. */
const PADDING_TAG = 0x7a;

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function paddingFieldBytes(p: number): number {
  return 1 + varintSize(p) + p;
}

/** Datagram bytes (envelope + sealed frame + tag) of a frame of `frameBytes` padded with `p` bytes. */
function datagramBytes(frameBytes: number, p: number | undefined, receiver: number, counter: number): number {
  const sealed = frameBytes + (p === undefined ? 0 : paddingFieldBytes(p)) + AEAD_TAG_BYTES;
  return envelopeHeaderSize(receiver, counter, sealed) + sealed;
}

/**
 * `frame` (an encoded Frame) with a padding field appended so that, sealed and wrapped in an
 * envelope with this `receiver` and `counter`, the datagram is `targetDatagramBytes` long (the
 * UDP payload: PmtuDiscovery.probeDatagramBytes). When varint steps make the exact size
 * impossible the datagram is one byte longer (still a valid probe of the size: it proves more).
 * Undefined when even the unpadded frame is too big.
 */
export function padFrame(frame: Uint8Array, targetDatagramBytes: number, receiver: number, counter: number): Uint8Array | undefined {
  if (datagramBytes(frame.length, undefined, receiver, counter) > targetDatagramBytes) return undefined;
  if (datagramBytes(frame.length, undefined, receiver, counter) === targetDatagramBytes) return frame;
  // Start from the estimate and walk down to the largest p that does not overshoot.
  let p = Math.max(0, targetDatagramBytes - datagramBytes(frame.length, 0, receiver, counter));
  while (p > 0 && datagramBytes(frame.length, p, receiver, counter) > targetDatagramBytes) p--;
  if (datagramBytes(frame.length, p, receiver, counter) < targetDatagramBytes) {
    // Below by a varint step: the next p overshoots by the step; take the smallest overshoot.
    while (datagramBytes(frame.length, p, receiver, counter) < targetDatagramBytes) p++;
  }
  const out = allocBytes(frame.length + paddingFieldBytes(p));
  out.set(frame, 0);
  let pos = frame.length;
  out[pos++] = PADDING_TAG;
  let v = p;
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[pos++] = v;
  // The filler bytes are zero (allocBytes zero-fills): sealing makes them look random on the wire.
  return out;
}
