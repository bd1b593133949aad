/**
 * Fresh byte arrays for datagrams and packets, carved from shared 16 KiB slabs (outgoing data
 * datagrams: 64 KiB slabs of their own, allocDatagramBytes).
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

/** Views carved from slabs of `slabBytes`; requests above `maxCarvedBytes` get their own array. */
class SlabAllocator {
  private slab: ArrayBuffer;
  private offset = 0;

  constructor(
    private readonly slabBytes: number,
    private readonly maxCarvedBytes: number,
  ) {
    this.slab = new ArrayBuffer(slabBytes);
  }

  alloc(length: number): Uint8Array {
    if (length > this.maxCarvedBytes || length <= 0) return new Uint8Array(length);
    if (this.offset + length > this.slabBytes) {
      this.slab = new ArrayBuffer(this.slabBytes);
      this.offset = 0;
    }
    const view = new Uint8Array(this.slab, this.offset, length);
    this.offset += (length + 7) & ~7;
    return view;
  }
}

/** Larger requests get their own array: carving them would waste most of a slab. */
const general = new SlabAllocator(16 * 1024, 4 * 1024);

export function allocBytes(length: number): Uint8Array {
  return general.alloc(length);
}

/**
 * Like allocBytes, for outgoing data datagrams only (peer-tx.ts buildData): carved from 64 KiB
 * slabs, ~45 datagrams each. A slab is one calloc'd ArrayBuffer whose fixed cost (~1.5 us: the
 * backing store, its GC tracking) 16 KiB slabs paid every ~11 datagrams: 266 ns per 1460-byte
 * view with 16 KiB slabs, 127 ns with 64 KiB (micro-benchmark, 2M views; docs/BENCHMARKS.md
 * "Receive in place, session 10"). Separate from allocBytes because a datagram lives only until
 * the shell sends it, while allocBytes' views (probes, queued copies, FEC shards) may be held, and
 * a held view pins its whole slab: 64 KiB each would multiply what an idle fleet peer pins.
 */
const datagrams = new SlabAllocator(64 * 1024, 4 * 1024);

export function allocDatagramBytes(length: number): Uint8Array {
  return datagrams.alloc(length);
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
