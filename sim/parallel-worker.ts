// One partition of a parallel World (sim/parallel.ts): builds its World, runs it in lockstep
// windows with the other workers, exchanging datagrams through shared memory.
import { parentPort, workerData } from 'node:worker_threads';
import { CTL_ARRIVED, CTL_FAILED, CTL_GENERATION, type PartitionSpec, type WorkerInit } from './parallel.ts';
import type { World } from './world.ts';

type PartitionModule = { buildPartition: (p: PartitionSpec, args: unknown) => World } & Record<string, unknown>;

const init = workerData as WorkerInit;
const ctl = new Int32Array(init.control);
/** Spins before sleeping at the barrier: a window is ~1 ms of work, and a futex wake-up costs tens of microseconds. */
const SPIN_ROUNDS = 20_000;
const HEADER_BYTES = 8;

/** One direction of one pair of partitions, for one window parity: records of (atMs f64, dirKey i32, length i32, bytes, padding to 8). */
class Outbox {
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private used = HEADER_BYTES;
  private count = 0;
  constructor(buf: SharedArrayBuffer) {
    this.view = new DataView(buf);
    this.bytes = new Uint8Array(buf);
  }
  reset(): void {
    this.used = HEADER_BYTES;
    this.count = 0;
    this.view.setInt32(0, 0, true);
  }
  put(atMs: number, dirKey: number, data: Uint8Array): void {
    const need = 16 + ((data.length + 7) & ~7);
    if (this.used + need > this.bytes.length) throw new Error(`parallel World: a window's datagrams to one partition overflow its ${this.bytes.length}-byte outbox (give ParallelWorld.start a larger outboxBytes)`);
    this.view.setFloat64(this.used, atMs, true);
    this.view.setInt32(this.used + 8, dirKey, true);
    this.view.setInt32(this.used + 12, data.length, true);
    this.bytes.set(data, this.used + 16);
    this.used += need;
    this.view.setInt32(0, ++this.count, true);
  }
  /** Reads what the writer published before the barrier, in order. */
  drainInto(world: World): number {
    const n = this.view.getInt32(0, true);
    let at = HEADER_BYTES;
    for (let i = 0; i < n; i++) {
      const atMs = this.view.getFloat64(at, true);
      const dirKey = this.view.getInt32(at + 8, true);
      const len = this.view.getInt32(at + 12, true);
      // A copy: the World's datagrams are the receiver's to keep (and to open in place).
      world.importArrival(atMs, dirKey, this.bytes.slice(at + 16, at + 16 + len));
      at += 16 + ((len + 7) & ~7);
    }
    return n;
  }
}

const mod = (await import(init.module)) as PartitionModule;
if (typeof mod.buildPartition !== 'function') throw new Error(`parallel World: ${init.module} exports no buildPartition`);
const world = mod.buildPartition({ index: init.index, count: init.count }, init.args);
const lookaheadMs = world.partitionLookaheadMs();
if (!(lookaheadMs > 0)) throw new Error(`parallel World: the connections between partitions must take time (lookahead ${lookaheadMs} ms)`);
const outboxes = init.outboxes.map((row) => row.map((pair) => pair.map((b) => new Outbox(b))));
let parity = 0;
/** Where this worker's wall time went (ParallelWorld.stats): its own windows, the barrier, the imports. */
const stats = { windows: 0, runMs: 0, waitMs: 0, importMs: 0, imported: 0 };
world.exportArrival = (dst, atMs, dirKey, bytes) => outboxes[init.index]![dst]![parity]!.put(atMs, dirKey, bytes);

function barrier(): void {
  const gen = Atomics.load(ctl, CTL_GENERATION);
  if (Atomics.add(ctl, CTL_ARRIVED, 1) === init.count - 1) {
    Atomics.store(ctl, CTL_ARRIVED, 0);
    Atomics.add(ctl, CTL_GENERATION, 1);
    Atomics.notify(ctl, CTL_GENERATION);
    return;
  }
  for (let spin = 0; Atomics.load(ctl, CTL_GENERATION) === gen; spin++) {
    if (Atomics.load(ctl, CTL_FAILED) !== 0) throw new Error('another partition failed');
    if (spin > SPIN_ROUNDS) Atomics.wait(ctl, CTL_GENERATION, gen, 50);
  }
}

/** Every partition runs the same windows: they all start at the same nowMs and step by the same lookahead. */
function run(untilMs: number): void {
  // Only the first window after a message re-reads every site's deadline: a `call` may have called
  // engines directly; between windows only the World and the imports touch them.
  let rearm = true;
  while (world.nowMs < untilMs) {
    const end = Math.min(world.nowMs + lookaheadMs, untilMs);
    for (let dst = 0; dst < init.count; dst++) if (dst !== init.index) outboxes[init.index]![dst]![parity]!.reset();
    const t0 = performance.now();
    world.runBefore(end, rearm);
    rearm = false;
    const t1 = performance.now();
    barrier();
    const t2 = performance.now();
    for (let src = 0; src < init.count; src++) if (src !== init.index) stats.imported += outboxes[src]![init.index]![parity]!.drainInto(world);
    stats.importMs += performance.now() - t2;
    stats.runMs += t1 - t0;
    stats.waitMs += t2 - t1;
    stats.windows++;
    // The next window writes the other parity, so a slow reader of this one is never overwritten.
    parity ^= 1;
  }
}

parentPort!.on('message', (m: { id: number; op: string; arg: unknown }) => {
  try {
    let value: unknown;
    if (m.op === 'run') run(m.arg as number);
    else if (m.op === 'stats') {
      value = { ...stats };
      Object.assign(stats, { windows: 0, runMs: 0, waitMs: 0, importMs: 0, imported: 0 });
    }
    else if (m.op === 'call') {
      const { fn, args } = m.arg as { fn: string; args: unknown };
      const f = mod[fn];
      if (typeof f !== 'function') throw new Error(`${init.module} exports no function ${fn}`);
      value = (f as (w: World, a: unknown) => unknown)(world, args);
    }
    parentPort!.postMessage({ id: m.id, ok: true, value });
  } catch (e) {
    Atomics.store(ctl, CTL_FAILED, 1);
    Atomics.notify(ctl, CTL_GENERATION);
    parentPort!.postMessage({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
