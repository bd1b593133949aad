/**
 * ErasureCodec on the reed-solomon-erasure crate compiled to WebAssembly
 * (@subspace/reed-solomon-erasure.wasm 0.2.x), driven through its raw exports.
 *
 * Loading (the core reads no files): the shell reads the .wasm bytes and passes them in, or a
 * WebAssembly.Module it compiled; instantiation is synchronous (the module imports nothing):
 *
 *   import { readFileSync } from 'node:fs';
 *   import { createRequire } from 'node:module';
 *   const wasmPath = createRequire(import.meta.url)
 *     .resolve('@subspace/reed-solomon-erasure.wasm/dist/reed_solomon_erasure_bg.wasm');
 *   const codec = createRsCodec(readFileSync(wasmPath));
 *
 * Why not the package's JS class: its index.js does `require("fs")` at load (a node:* import the
 * core may not have), allocates and frees wasm memory and maps a boolean array on every call, and
 * frees the `shards_available` block after `reconstruct` although the Rust side already freed it
 * (wasm-bindgen's by-value slice). That double free corrupts wee_alloc's free list. Measured
 * here with the package's own class: 16000 of 20000 reconstructs of an 8+2 group with 2 shards
 * lost failed (RESULT_ERROR_TOO_FEW_SHARDS_PRESENT: the flags block was handed out twice), and a
 * flags block placed inside another allocation traps ("memory access out of bounds") on the
 * second call. So this wrapper:
 *   - keeps one shard region allocated in wasm memory and grows it only when a group is larger;
 *   - allocates a fresh flags block per reconstruct and lets Rust free it;
 *   - checks those ownership rules once at construction and refuses a build that behaves
 *     differently (a later package version that fixed the glue would otherwise be double-freed);
 *   - validates every argument first, because the Rust side calls ReedSolomon::new(..).unwrap()
 *     and chunks_exact_mut(shard_size): k = 0, m = 0, k + m > 256 or an empty shard would panic
 *     (a wasm trap). A trap anyway re-instantiates the module and returns false.
 */
import type { ErasureCodec } from './codec.ts';
import { codecArgsValid } from './codec.ts';

/** The crate's result codes (its RESULT_* constants); only OK matters to us. */
const RESULT_OK = 0;

interface RsWasmExports {
  readonly memory: WebAssembly.Memory;
  encode(shardsPtr: number, shardsLen: number, dataShards: number, parityShards: number): number;
  reconstruct(
    shardsPtr: number,
    shardsLen: number,
    dataShards: number,
    parityShards: number,
    flagsPtr: number,
    flagsLen: number,
  ): number;
  __wbindgen_malloc(size: number): number;
  __wbindgen_free(ptr: number, size: number): void;
}

/** The wasm bytes are not the expected reed-solomon-erasure build (a setup failure, not per-packet). */
export class RsWasmSetupError extends Error {
  /** Stable code; belongs in core/errors.ts's ErrorCode when FEC is integrated. */
  readonly code = 'BRAID_FEC_WASM_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RsWasmSetupError';
  }
}

export interface RsWasmCodec extends ErasureCodec {
  /** Wasm traps survived (each re-instantiated the module); expected to stay 0. */
  readonly faults: number;
}

function asExports(instance: WebAssembly.Instance): RsWasmExports {
  const ex = instance.exports;
  const fns = ['encode', 'reconstruct', '__wbindgen_malloc', '__wbindgen_free'] as const;
  for (const f of fns) {
    if (typeof ex[f] !== 'function') throw new RsWasmSetupError(`wasm module has no export ${f}()`);
  }
  if (!(ex['memory'] instanceof WebAssembly.Memory)) throw new RsWasmSetupError('wasm module exports no memory');
  return ex as unknown as RsWasmExports;
}

/**
 * Proves the memory-ownership rules this wrapper relies on, on a tiny k=1, m=1 group:
 * reconstruct frees its flags block (so we must not), and neither call frees the shard block
 * (so we may keep it). wee_alloc hands a just-freed block of the same size straight back, which
 * is what makes this observable.
 */
function checkOwnership(ex: RsWasmExports): void {
  const shards = ex.__wbindgen_malloc(2);
  const flags = ex.__wbindgen_malloc(2);
  let mem = new Uint8Array(ex.memory.buffer);
  mem[shards] = 0x5a;
  mem[flags] = 1;
  mem[flags + 1] = 0;
  if (ex.encode(shards, 2, 1, 1) !== RESULT_OK) throw new RsWasmSetupError('wasm encode self-test failed');
  mem = new Uint8Array(ex.memory.buffer);
  // k = 1: the single parity row is [1], so parity equals the data byte.
  if (mem[shards + 1] !== 0x5a) throw new RsWasmSetupError('wasm encode self-test gave wrong parity');
  mem[shards] = 0;
  if (ex.reconstruct(shards, 2, 1, 1, flags, 2) !== RESULT_OK) {
    throw new RsWasmSetupError('wasm reconstruct self-test failed');
  }
  mem = new Uint8Array(ex.memory.buffer);
  if (mem[shards] !== 0) throw new RsWasmSetupError('wasm reconstruct rebuilt a shard marked present');
  const again = ex.__wbindgen_malloc(2);
  const other = ex.__wbindgen_malloc(2);
  if (again !== flags || other === shards) {
    throw new RsWasmSetupError(
      'wasm build has unexpected memory ownership (reconstruct should free its flags, not its shards)',
    );
  }
  ex.__wbindgen_free(again, 2);
  ex.__wbindgen_free(other, 2);
  ex.__wbindgen_free(shards, 2);
}

/**
 * A Reed-Solomon codec on the crate's wasm build. `wasm` is the bytes of
 * reed_solomon_erasure_bg.wasm or a WebAssembly.Module compiled from them. Throws
 * RsWasmSetupError when the module is not that build. One instance serves any number of
 * encoders and decoders of one (single-threaded) Edge.
 */
export function createRsCodec(wasm: Uint8Array | WebAssembly.Module): RsWasmCodec {
  let module: WebAssembly.Module;
  try {
    // Copying the ~120 KB once lets callers pass any Uint8Array (a Buffer, a SharedArrayBuffer view).
    module = wasm instanceof WebAssembly.Module ? wasm : new WebAssembly.Module(new Uint8Array(wasm));
  } catch (e) {
    throw new RsWasmSetupError('not a WebAssembly module', { cause: e });
  }
  let ex: RsWasmExports = instantiate(module);
  // The shard region: one block of wasm memory reused by every call, grown when a group is larger.
  let regionPtr = 0;
  let regionBytes = 0;
  let view = new Uint8Array(ex.memory.buffer);
  let faults = 0;
  let dead = false;

  function instantiate(mod: WebAssembly.Module): RsWasmExports {
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(mod, {});
    } catch (e) {
      throw new RsWasmSetupError('wasm module failed to instantiate (it should import nothing)', { cause: e });
    }
    const exports = asExports(instance);
    checkOwnership(exports);
    return exports;
  }

  /** The memory view; wasm memory growth detaches the old ArrayBuffer, so re-check after calls. */
  function mem(): Uint8Array {
    if (view.buffer !== ex.memory.buffer) view = new Uint8Array(ex.memory.buffer);
    return view;
  }

  function ensureRegion(bytes: number): number {
    if (bytes > regionBytes) {
      if (regionBytes > 0) ex.__wbindgen_free(regionPtr, regionBytes);
      // Grow geometrically so alternating group sizes do not free and malloc on every call.
      const cap = Math.max(bytes, regionBytes * 2);
      regionPtr = ex.__wbindgen_malloc(cap);
      regionBytes = cap;
    }
    return regionPtr;
  }

  /**
   * After a trap the allocator's state is unknown: start over with a fresh instance. If even that
   * fails the codec goes dead (every call returns false, FEC stops recovering) rather than throw
   * into the packet path.
   */
  function recover(): void {
    faults++;
    regionPtr = 0;
    regionBytes = 0;
    try {
      ex = instantiate(module);
      view = new Uint8Array(ex.memory.buffer);
    } catch {
      dead = true;
    }
  }

  function copyIn(m8: Uint8Array, src: Uint8Array, at: number, shardBytes: number): void {
    m8.set(src.length === shardBytes ? src : src.subarray(0, shardBytes), at);
  }

  return {
    name: 'rs-wasm',
    get faults() {
      return faults;
    },

    encode(shards, k, m, shardBytes) {
      if (dead || !codecArgsValid(shards, k, m, shardBytes, undefined)) return false;
      const total = (k + m) * shardBytes;
      try {
        const base = ensureRegion(total);
        let m8 = mem();
        for (let i = 0; i < k; i++) copyIn(m8, shards[i]!, base + i * shardBytes, shardBytes);
        if (ex.encode(base, total, k, m) !== RESULT_OK) return false;
        m8 = mem();
        for (let r = 0; r < m; r++) {
          const at = base + (k + r) * shardBytes;
          shards[k + r]!.set(m8.subarray(at, at + shardBytes));
        }
        return true;
      } catch {
        recover();
        return false;
      }
    },

    reconstruct(shards, present, k, m, shardBytes) {
      if (dead || !codecArgsValid(shards, k, m, shardBytes, present)) return false;
      const n = k + m;
      let have = 0;
      let missingData = 0;
      for (let i = 0; i < n; i++) if (present[i] !== 0) have++;
      for (let i = 0; i < k; i++) if (present[i] === 0) missingData++;
      if (missingData === 0) return true;
      if (have < k) return false;
      const total = n * shardBytes;
      try {
        const base = ensureRegion(total);
        // Rust takes ownership of this block and frees it (checked in checkOwnership).
        const flags = ex.__wbindgen_malloc(n);
        let m8 = mem();
        for (let i = 0; i < n; i++) {
          const p = present[i] !== 0;
          m8[flags + i] = p ? 1 : 0;
          if (p) copyIn(m8, shards[i]!, base + i * shardBytes, shardBytes);
        }
        if (ex.reconstruct(base, total, k, m, flags, n) !== RESULT_OK) return false;
        m8 = mem();
        for (let i = 0; i < k; i++) {
          if (present[i] !== 0) continue;
          const at = base + i * shardBytes;
          shards[i]!.set(m8.subarray(at, at + shardBytes));
        }
        return true;
      } catch {
        recover();
        return false;
      }
    },
  };
}
