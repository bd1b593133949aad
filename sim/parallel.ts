/**
 * Parallel World: one simulation split over worker threads, one partition of the sites each
 * (conservative parallel discrete-event simulation with a fixed lookahead, as ns-3's distributed
 * simulator and OMNeT++'s parallel mode do).
 *
 * Every worker builds the whole World from the same seed and configuration, with
 * WorldConfig.partition: it runs the engines of its own sites, and the other sites are stand-ins.
 * The workers run in lockstep windows as long as the lookahead, the least time a datagram takes
 * between partitions (World.partitionLookaheadMs): nothing sent in a window can arrive before the
 * window ends, so each worker runs its window alone, then they exchange the window's datagrams
 * (arrival time, direction, bytes) through shared memory and import them before the next window.
 *
 * What is the same as one World: every engine's configuration, keys and Rng stream (the World
 * forks the Rng for stand-ins too), every datagram's arrival time. What may differ: the order of
 * events at the very same virtual time in one site (an imported datagram is filed at the exchange,
 * after the site's own events of that time that were already queued) and the World Rng's draws for
 * loss and jitter, which each partition takes from its own copy. A partitioned run is
 * deterministic: the same seed and partitions give the same run, whatever the threads' timing.
 *
 * Driving code runs in every worker, on that worker's World (`call`): scheduled traffic on a
 * stand-in does nothing (sendTun on it is a no-op), so the same setup code serves every partition.
 *
 * Usage:
 *   const pw = await ParallelWorld.start({ module: new URL('./my-fleet.ts', import.meta.url), partitions: 2, args });
 *   await pw.run(10_000);                       // all partitions to 10 s of virtual time
 *   const counts = await pw.call<number>('hubDelivered');   // one result per partition
 *   await pw.close();
 *
 * `module` exports buildPartition(partition, args): World (the World built with `partition`), and
 * the functions `call` names, each (world, args) => a structured-cloneable result.
 */
import { Worker } from 'node:worker_threads';
import { cpus } from 'node:os';

/** What a partition module exports. */
export interface PartitionSpec {
  index: number;
  count: number;
}

/** Default bytes per outbox (one per ordered pair of partitions and window parity): ~7,000 datagrams of 1,200 B. */
export const DEFAULT_OUTBOX_BYTES = 8 << 20;
/** Most partitions: one per core is the point, and every pair costs two outboxes. */
export const MAX_PARTITIONS = 16;

/** Shared memory layout, in Int32 slots of the control array. */
export const CTL_ARRIVED = 0;
export const CTL_GENERATION = 1;
/** Set by a worker that failed: the others stop waiting for it. */
export const CTL_FAILED = 2;
export const CTL_SLOTS = 4;

export interface WorkerInit {
  module: string;
  args: unknown;
  index: number;
  count: number;
  control: SharedArrayBuffer;
  /** outboxes[src][dst][parity] */
  outboxes: SharedArrayBuffer[][][];
}

export interface PartitionStats {
  windows: number;
  runMs: number;
  waitMs: number;
  importMs: number;
  imported: number;
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

export class ParallelWorld {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; left: number; values: unknown[] }>();

  private constructor(private readonly workers: Worker[]) {
    workers.forEach((w, index) => {
      w.on('message', (m: Reply) => this.settle(index, m));
      w.on('error', (e) => this.failAll(new Error(`parallel World partition ${index}: ${e.message}`)));
      w.on('exit', (code) => {
        if (code !== 0) this.failAll(new Error(`parallel World partition ${index} exited with code ${code}`));
      });
    });
  }

  /** Starts `partitions` workers, each building its partition's World; resolves when all are built. */
  static async start(opts: { module: URL | string; partitions: number; args?: unknown; outboxBytes?: number }): Promise<ParallelWorld> {
    const count = opts.partitions;
    if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) throw new Error(`parallel World: partitions must be 1-${MAX_PARTITIONS}, got ${count}`);
    if (count > cpus().length) process.emitWarning(`parallel World: ${count} partitions on ${cpus().length} CPUs run slower than fewer`);
    const outboxBytes = opts.outboxBytes ?? DEFAULT_OUTBOX_BYTES;
    const control = new SharedArrayBuffer(CTL_SLOTS * 4);
    const outboxes = Array.from({ length: count }, (_, src) => Array.from({ length: count }, (_, dst) => (src === dst ? [] : [new SharedArrayBuffer(outboxBytes), new SharedArrayBuffer(outboxBytes)])));
    const module = typeof opts.module === 'string' ? opts.module : opts.module.href;
    const boot = new URL('./parallel-boot.js', import.meta.url);
    const workers = Array.from({ length: count }, (_, index) => new Worker(boot, { workerData: { module, args: opts.args, index, count, control, outboxes } satisfies WorkerInit }));
    const pw = new ParallelWorld(workers);
    await pw.all('ready');
    return pw;
  }

  /** Runs every partition to `untilMs` of virtual time (events at exactly untilMs run in the next run). */
  async run(untilMs: number): Promise<void> {
    await this.all('run', untilMs);
  }

  /** Calls the partition module's export `fn(world, args)` in every partition; one result each, by partition. */
  call<T>(fn: string, args?: unknown): Promise<T[]> {
    return this.all('call', { fn, args }) as Promise<T[]>;
  }

  /** Each partition's windows since the last call: wall ms running its own events, waiting at the barrier, importing. */
  stats(): Promise<PartitionStats[]> {
    return this.all('stats') as Promise<PartitionStats[]>;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private all(op: string, arg?: unknown): Promise<unknown[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, left: this.workers.length, values: new Array(this.workers.length) });
      for (const w of this.workers) w.postMessage({ id, op, arg });
    });
  }

  private settle(index: number, m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (!m.ok) {
      this.pending.delete(m.id);
      p.reject(new Error(`parallel World partition ${index}: ${m.error}`));
      return;
    }
    p.values[index] = m.value;
    if (--p.left === 0) {
      this.pending.delete(m.id);
      p.resolve(p.values);
    }
  }

  private failAll(e: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(e);
    }
  }
}
