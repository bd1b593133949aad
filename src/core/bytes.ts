/**
 * Fresh byte arrays for datagrams and packets, carved from shared 16 KiB slabs.
 *
 * Why: `new Uint8Array(400)` costs ~950 ns on this box (Node 20: a typed array above 64 bytes gets
 * its own calloc'd backing store, which the GC must track and sweep on a background thread) and
 * `slice()` ~1.2 us; a view into a slab ~95 ns (micro-benchmark, 2M iterations). In the virtual-time
 * profile the datagram buffer's allocation was buildData's / encodeDataDatagram's whole self time
 * (~2 us per datagram); see docs/BENCHMARKS.md "Hot path" for the run-level figures.
 *
 * Contract: each call returns memory of its own, zero-filled (every slab is a new ArrayBuffer and
 * no byte is handed out twice), so it behaves like `new Uint8Array(length)` except that `.buffer`
 * is shared and `byteOffset` is not 0: code that wraps `.buffer` must pass byteOffset and length.
 * Views start 8-byte aligned (word-wise FEC arithmetic, OpenSSL loads).
 * Price: a view kept alive keeps its slab alive, so a long-held small packet can pin up to 16 KiB
 * (Node's own Buffer pool makes the same trade with 8 KiB). What the Edge holds is bounded
 * (queues, FEC groups), so the pinned memory is too.
 */

const SLAB_BYTES = 16 * 1024;
/** Larger requests get their own array: carving them would waste most of a slab. */
const MAX_CARVED_BYTES = SLAB_BYTES / 4;

let slab = new ArrayBuffer(SLAB_BYTES);
let slabOffset = 0;

export function allocBytes(length: number): Uint8Array {
  if (length > MAX_CARVED_BYTES || length <= 0) return new Uint8Array(length);
  if (slabOffset + length > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabOffset = 0;
  }
  const view = new Uint8Array(slab, slabOffset, length);
  slabOffset += (length + 7) & ~7;
  return view;
}

/**
 * A copy of `bytes` in memory of its own. Not `bytes.slice()`: the shell hands in Node Buffers,
 * whose slice() is a view of the same memory (the TUN batch slab, reused for the next batch), so a
 * queued "copy" would turn into a later packet (found as duplicates plus losses in real time).
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = allocBytes(bytes.length);
  out.set(bytes);
  return out;
}
