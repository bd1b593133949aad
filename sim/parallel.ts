/**
 * Parallel World: one simulation split over worker threads, one partition of the sites each
 * (conservative parallel discrete-event simulation with a fixed lookahead, as ns-3's distributed
 * simulator and OMNeT++'s parallel mode do).
 *
 * Every worker builds the whole World from the same seed and configuration, with
 * WorldConfig.partition: it runs the engines of its own sites, and the other sites are stand-ins.
 * The lookahead is the least time a datagram takes between partitions (World.partitionLookaheadMs):
 * a partition that has run every event before its clock T can send nothing that arrives before
 * T + lookahead. So each worker runs every event before the least of the others' clocks plus the
 * lookahead, publishes what it sent (arrival time, direction, bytes) in a shared-memory ring per
 * destination, then its clock; the others import from the rings before they go on (Chandy-Misra's
 * conservative synchronisation, with the clocks in shared memory instead of null messages). A
 * worker waits only when it is a lookahead ahead of another, not at a barrier after every window,
 * so one partition's busy window and another's overlap.
 *
 * What is the same as one World: every engine's configuration, keys and Rng stream (the World
 * forks the Rng for stand-ins too), every datagram's arrival time. What may differ: the order of
 * events at the very same virtual time in one site (an imported datagram sorts after the site's
 * own events of that time) and the World Rng's draws for loss and jitter, which each partition
 * takes from its own copy. A partitioned run is deterministic: the same seed and partitions give
 * the same run, whatever the threads' timing (imports sort by time, source partition and order).
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

/** Which partition a worker builds: handed to the partition module's buildPartition. */
export interface PartitionSpec {
  index: number;
  count: number;
}

/** Default bytes per ring (one per ordered pair of partitions): ~7,000 datagrams of 1,200 B not yet read. */
export const DEFAULT_RING_BYTES = 8 << 20;
/** Most partitions: one per core is the point, and every pair costs two outboxes. */
export const MAX_PARTITIONS = 16;

/** Shared memory layout, in Int32 slots of the control array: bumped by every clock change, waited on. */
export const CTL_GENERATION = 0;
/** Set by a worker that failed: the others stop waiting for it. */
export const CTL_FAILED = 1;
export const CTL_SLOTS = 2;
/** What a worker says when it stopped because another failed. */
export const OTHER_FAILED = 'another partition failed';
/**
 * An imported datagram's seq (World.importArrival): above every local seq (the World counts from 0;
 * 2^50 events is years of simulation), then by source partition, then in the order it was sent.
 */
export const IMPORT_SEQ_BASE = 2 ** 50;
export const IMPORT_SEQ_PER_PARTITION = 2 ** 46;

export interface WorkerInit {
  module: string;
  args: unknown;
  index: number;
  count: number;
  control: SharedArrayBuffer;
  /** Each partition's clock (BigInt64 slots holding float64 bits). */
  clocks: SharedArrayBuffer;
  /** rings[src][dst]: what src sends to dst (null for src === dst). */
  rings: (SharedArrayBuffer | null)[][];
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
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; left: number; values: unknown[]; error?: Error }>();

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
  static async start(opts: { module: URL | string; partitions: number; args?: unknown; ringBytes?: number }): Promise<ParallelWorld> {
    const count = opts.partitions;
    if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) throw new Error(`parallel World: partitions must be 1-${MAX_PARTITIONS}, got ${count}`);
    if (count > cpus().length) process.emitWarning(`parallel World: ${count} partitions on ${cpus().length} CPUs run slower than fewer`);
    const ringBytes = opts.ringBytes ?? DEFAULT_RING_BYTES;
    const control = new SharedArrayBuffer(CTL_SLOTS * 4);
    const clocks = new SharedArrayBuffer(count * 8);
    const rings = Array.from({ length: count }, (_, src) => Array.from({ length: count }, (_, dst) => (src === dst ? null : new SharedArrayBuffer(ringBytes))));
    const module = typeof opts.module === 'string' ? opts.module : opts.module.href;
    const boot = new URL('./parallel-boot.js', import.meta.url);
    const workers = Array.from({ length: count }, (_, index) => new Worker(boot, { workerData: { module, args: opts.args, index, count, control, clocks, rings } satisfies WorkerInit }));
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

  /** Each partition's steps since the last call: wall ms running its own events, waiting for another's clock, importing. */
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

  /** Every partition answers (a failing one makes the others stop waiting); the error is the one that was not "another partition failed". */
  private settle(index: number, m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.ok) p.values[index] = m.value;
    else if (p.error === undefined || p.error.message.includes(OTHER_FAILED)) p.error = new Error(`parallel World partition ${index}: ${m.error}`);
    if (--p.left > 0) return;
    this.pending.delete(m.id);
    if (p.error) p.reject(p.error);
    else p.resolve(p.values);
  }

  private failAll(e: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(e);
    }
  }
}
