// One partition of a parallel World (sim/parallel.ts): builds its World and runs it as far as the
// other partitions' published clocks allow, exchanging datagrams through shared-memory rings.
import { parentPort, workerData } from 'node:worker_threads';
import { CTL_FAILED, CTL_GENERATION, IMPORT_SEQ_BASE, IMPORT_SEQ_PER_PARTITION, OTHER_FAILED, type PartitionSpec, type PartitionStats, type WorkerInit } from './parallel.ts';
import type { World } from './world.ts';
import { copyBytes } from '../src/core/bytes.ts';

type PartitionModule = { buildPartition: (p: PartitionSpec, args: unknown) => World } & Record<string, unknown>;

const init = workerData as WorkerInit;
const ctl = new Int32Array(init.control);
/** Each partition's clock, as float64 bits (Atomics work on integers): it ran every event before it and published their exports. */
const clocks = new BigInt64Array(init.clocks);
const f64 = new Float64Array(1);
const f64bits = new BigInt64Array(f64.buffer);
const loadClock = (i: number): number => {
  f64bits[0] = Atomics.load(clocks, i);
  return f64[0]!;
};
const storeClock = (i: number, ms: number): void => {
  f64[0] = ms;
  Atomics.store(clocks, i, f64bits[0]!);
};
/** Spins before sleeping when blocked: a window is ~1 ms of work, and a futex wake-up costs tens of microseconds. */
/**
 * A step is a quarter of the lookahead: a partition may lead another by up to a lookahead, so with
 * steps that long the faster one waits at every step (lockstep, in effect); with quarter steps it
 * runs on while the slower one's clock moves. Fleet traffic window, 2 threads: waits ~250 -> ~150
 * ms per 5 simulated s at 2,000 steps instead of 500 (BENCHMARKS.md fleet notes).
 */
const STEP_DIV = 4;
const SPIN_ROUNDS = 4_000;
/** Ring header: [writePos, readPos] (Int32, byte offsets into the data area), padded to 16. */
const RING_HEADER_BYTES = 16;
const RECORD_HEADER_BYTES = 16;
const WRAP = -1;

/**
 * One direction between two partitions: a single-producer single-consumer ring of records
 * (atMs f64, dirKey i32, length i32, bytes padded to 8). The writer publishes its write position
 * after each step; the reader takes everything up to it and publishes its read position. A writer
 * that finds the ring full publishes what it has and waits for room (waitForRoom), importing its
 * own inbound meanwhile, so two partitions full towards each other both make progress.
 */
class Ring {
  private readonly pos: Int32Array;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private readonly size: number;
  /** Writer: where the next record goes (published by publish()). Reader: where the next one is. */
  private at = 0;
  private count = 0;
  constructor(
    buf: SharedArrayBuffer,
    private readonly waitForRoom: () => void = () => {},
  ) {
    this.pos = new Int32Array(buf, 0, 2);
    this.view = new DataView(buf, RING_HEADER_BYTES);
    this.bytes = new Uint8Array(buf, RING_HEADER_BYTES);
    this.size = this.bytes.length & ~7;
  }

  put(atMs: number, dirKey: number, data: Uint8Array): void {
    const need = RECORD_HEADER_BYTES + ((data.length + 7) & ~7);
    if (need > this.size / 2) throw new Error(`parallel World: a ${data.length}-byte datagram does not fit the ${this.size}-byte ring between partitions (give ParallelWorld.start a larger ringBytes)`);
    while (!this.reserve(need)) {
      this.publish();
      this.waitForRoom();
    }
    this.view.setFloat64(this.at, atMs, true);
    this.view.setInt32(this.at + 8, dirKey, true);
    this.view.setInt32(this.at + 12, data.length, true);
    this.bytes.set(data, this.at + RECORD_HEADER_BYTES);
    this.at += need;
  }

  /** Whether `need` bytes are free at `at`, wrapping to 0 when the end is short (a record header's room is kept there for the marker). */
  private reserve(need: number): boolean {
    const read = Atomics.load(this.pos, 1);
    if (this.at < read) return this.at + need < read;
    if (this.at + need <= this.size - RECORD_HEADER_BYTES) return true;
    // Wrapping to 0 must leave at != read, or the ring would read as empty.
    if (need >= read) return false;
    this.view.setInt32(this.at + 12, WRAP, true);
    this.at = 0;
    return true;
  }

  publish(): void {
    Atomics.store(this.pos, 0, this.at);
  }

  /** Imports every published record, in order, each with a seq above every local one (see IMPORT_SEQ_BASE). */
  drainInto(world: World, seqBase: number): number {
    const write = Atomics.load(this.pos, 0);
    let n = 0;
    while (this.at !== write) {
      const len = this.view.getInt32(this.at + 12, true);
      if (len === WRAP) {
        this.at = 0;
        continue;
      }
      // A copy: the World's datagrams are the receiver's to keep (and to open in place). Into the
      // core's slab (copyBytes), as the World's own wire copies: a slice's own ArrayBuffer per
      // datagram cost ~0.6 us more (malloc, memset, GC tracking): import time per partition and 5
      // simulated s 44-76 ms with slices, 22-43 ms with the slab (fleet World, A/B, session 14).
      const start = this.at + RECORD_HEADER_BYTES;
      world.importArrival(this.view.getFloat64(this.at, true), this.view.getInt32(this.at + 8, true), copyBytes(this.bytes.subarray(start, start + len)), seqBase + this.count++);
      this.at = start + ((len + 7) & ~7);
      n++;
    }
    Atomics.store(this.pos, 1, this.at);
    return n;
  }
}

const mod = (await import(init.module)) as PartitionModule;
if (typeof mod.buildPartition !== 'function') throw new Error(`parallel World: ${init.module} exports no buildPartition`);
const world = mod.buildPartition({ index: init.index, count: init.count }, init.args);
const lookaheadMs = world.partitionLookaheadMs();
if (!(lookaheadMs > 0)) throw new Error(`parallel World: the connections between partitions must take time (lookahead ${lookaheadMs} ms)`);
const me = init.index;
const out = init.rings[me]!.map((b) => (b ? new Ring(b, waitForRoom) : undefined));
const inbound = init.rings.map((row) => (row[me] ? new Ring(row[me]) : undefined));
world.exportArrival = (dst, atMs, dirKey, bytes) => out[dst]!.put(atMs, dirKey, bytes);
world.exportMinDelayMs = lookaheadMs;

/** Where this worker's wall time went (ParallelWorld.stats). */
const zeroStats = (): PartitionStats => ({ windows: 0, runMs: 0, waitMs: 0, importMs: 0, imported: 0 });
const stats = zeroStats();

function drainAll(): void {
  const t = performance.now();
  let n = 0;
  for (let src = 0; src < init.count; src++) {
    const ring = inbound[src];
    if (ring) n += ring.drainInto(world, IMPORT_SEQ_BASE + src * IMPORT_SEQ_PER_PARTITION);
  }
  stats.imported += n;
  stats.importMs += performance.now() - t;
  // Room was made: a writer waiting for it (waitForRoom) goes on.
  if (n > 0) bump();
}

function bump(): void {
  Atomics.add(ctl, CTL_GENERATION, 1);
  Atomics.notify(ctl, CTL_GENERATION);
}

/**
 * A ring to another partition is full in the middle of a step (it published what it had): import
 * what the others sent meanwhile, which is safe mid-step (everything they send arrives after the
 * end of this step), so a partition full towards this one gets room too, then wait for a change.
 */
function waitForRoom(): void {
  const gen = Atomics.load(ctl, CTL_GENERATION);
  bump();
  drainAll();
  waitForChange(gen + 1);
}

function waitForChange(gen: number): void {
  const t = performance.now();
  for (let spin = 0; Atomics.load(ctl, CTL_GENERATION) === gen; spin++) {
    if (Atomics.load(ctl, CTL_FAILED) !== 0) throw new Error(OTHER_FAILED);
    if (spin > SPIN_ROUNDS) Atomics.wait(ctl, CTL_GENERATION, gen, 50);
  }
  stats.waitMs += performance.now() - t;
}

/**
 * Runs to `untilMs`: each step runs every event before the least of the other partitions' clocks
 * plus the lookahead (nothing they send later can arrive sooner), after importing everything they
 * published with those clocks. No partition waits for a slower one's whole window, only for it
 * to fall a lookahead behind. The steps' ends depend on the threads' timing; the run does not:
 * the World's events do not depend on where a run stops, and imports sort by (time, source, order).
 */
function run(untilMs: number): void {
  // Only the first step after a message re-reads every site's deadline: a `call` may have called
  // engines directly; between steps only the World and the imports touch them.
  let rearm = true;
  while (world.nowMs < untilMs) {
    const gen = Atomics.load(ctl, CTL_GENERATION);
    // A step is at most a quarter lookahead long (STEP_DIV), so the others see this clock move
    // often enough to run alongside: a partition that took its whole allowance at once would leave
    // the others idle until it published (a leapfrog of 2-lookahead steps, one at a time).
    let safe = Math.min(untilMs, world.nowMs + lookaheadMs / STEP_DIV);
    for (let src = 0; src < init.count; src++) if (src !== me) safe = Math.min(safe, loadClock(src) + lookaheadMs);
    // After reading the clocks: the rings hold every export of the events before them.
    drainAll();
    if (safe <= world.nowMs) {
      waitForChange(gen);
      continue;
    }
    const t = performance.now();
    world.runBefore(safe, rearm);
    stats.runMs += performance.now() - t;
    stats.windows++;
    rearm = false;
    for (const ring of out) ring?.publish();
    storeClock(me, world.nowMs);
    bump();
  }
}

parentPort!.on('message', (m: { id: number; op: string; arg: unknown }) => {
  try {
    let value: unknown;
    if (m.op === 'run') run(m.arg as number);
    else if (m.op === 'stats') {
      value = { ...stats };
      Object.assign(stats, zeroStats());
    } else if (m.op === 'call') {
      const { fn, args } = m.arg as { fn: string; args: unknown };
      const f = mod[fn];
      if (typeof f !== 'function') throw new Error(`${init.module} exports no function ${fn}`);
      value = (f as (w: World, a: unknown) => unknown)(world, args);
    }
    parentPort!.postMessage({ id: m.id, ok: true, value });
  } catch (e) {
    Atomics.store(ctl, CTL_FAILED, 1);
    Atomics.add(ctl, CTL_GENERATION, 1);
    Atomics.notify(ctl, CTL_GENERATION);
    parentPort!.postMessage({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
