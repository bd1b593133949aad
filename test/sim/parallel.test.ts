/**
 * The parallel World (sim/parallel.ts): a fleet split over partitions runs as the one World does,
 * every partitioned run of a seed is the same run, and what cannot be split is refused.
 */
import { describe, expect, it } from 'vitest';
import { World, type ExportArrival } from '../../sim/world.ts';
import { IMPORT_SEQ_BASE, IMPORT_SEQ_PER_PARTITION, ParallelWorld } from '../../sim/parallel.ts';
import { buildFleetWorld, busySpokes, fleetFingerprint, fleetPartitionOf, spokeName, startFleetTraffic } from '../../bench/lib/fleet-world.ts';

const SPOKES = 30;
const SEED = 12;
const TRAFFIC_AT_MS = 4001;
const TRAFFIC_MS = 2000;
const END_MS = 7000;
const FLEET = new URL('../../bench/lib/fleet-world.ts', import.meta.url);

/** Inner packets delivered at the hub and at the busy spokes, and established hub peers. */
function counts(worlds: World[]): { hub: number; busy: number; established: number } {
  const hubWorld = worlds.find((w) => !w.site('hub').remote)!;
  const busy = busySpokes(SPOKES).reduce((a, i) => a + worlds.map((w) => w.site(spokeName(i))).find((s) => !s.remote)!.deliveredCount, 0);
  const established = (hubWorld.site('hub').edge.snapshot(hubWorld.nowMs).peers ?? []).filter((p) => p.session.established).length;
  return { hub: hubWorld.site('hub').deliveredCount, busy, established };
}

function single(): World {
  const w = buildFleetWorld(SPOKES, SEED);
  startFleetTraffic(w, SPOKES, TRAFFIC_AT_MS, TRAFFIC_MS);
  w.run(END_MS);
  return w;
}

describe('partitioned World, exchanged by hand in one thread', () => {
  /** Two partitions run in lockstep windows of the lookahead, as sim/parallel-worker.ts runs them. */
  function lockstep(stepMs?: number): World[] {
    const worlds = [0, 1].map((index) => buildFleetWorld(SPOKES, SEED, { index, of: fleetPartitionOf({ index, count: 2 }, 3) }));
    const inbox: [number, number, Uint8Array][][] = [[], []];
    const imported = [0, 0];
    worlds.forEach((w) => {
      const out: ExportArrival = (dst, atMs, dirKey, bytes) => void inbox[dst]!.push([atMs, dirKey, bytes.slice()]);
      w.exportArrival = out;
      startFleetTraffic(w, SPOKES, TRAFFIC_AT_MS, TRAFFIC_MS);
    });
    const lookahead = worlds[0]!.partitionLookaheadMs();
    expect(lookahead).toBe(10); // the fastest mpls connection
    for (const w of worlds) w.exportMinDelayMs = lookahead;
    const step = stepMs ?? lookahead;
    while (worlds[0]!.nowMs < END_MS) {
      const end = Math.min(worlds[0]!.nowMs + step, END_MS);
      for (const w of worlds) w.runBefore(end);
      // As the workers import: after every local event of the same time, then by source and order.
      worlds.forEach((w, i) => {
        for (const [at, key, bytes] of inbox[i]!) w.importArrival(at, key, bytes, IMPORT_SEQ_BASE + (1 - i) * IMPORT_SEQ_PER_PARTITION + imported[i]!++);
        inbox[i] = [];
      });
    }
    return worlds;
  }

  it('delivers what the one World delivers, every spoke established', () => {
    const one = counts([single()]);
    expect(one).toEqual({ hub: 3 * (TRAFFIC_MS / 20), busy: 3 * (TRAFFIC_MS / 40), established: SPOKES });
    const split = lockstep();
    // Both partitions ran engines: the hub's has the hub and a group of spokes, the other the rest.
    expect(split.map((w) => w.sites.filter((s) => !s.remote).length)).toEqual([11, 20]);
    expect(counts(split)).toEqual(one);
  });

  it('gives every engine the state the one World gives it, but for ties at the same virtual time', () => {
    // Same keys, configuration and Rng stream per engine (stand-ins fork the Rng too): most sites end
    // in exactly the one World's state. A few differ: an imported datagram is filed at the exchange,
    // after its target's own events of the same time (26 of 31 here are identical).
    const one = new Map(fleetFingerprint(single()).map((x) => [x[0], JSON.stringify(x)]));
    const split = lockstep().flatMap(fleetFingerprint);
    const same = split.filter((x) => one.get(x[0]) === JSON.stringify(x)).length;
    expect(same).toBeGreaterThanOrEqual(Math.floor(0.75 * (SPOKES + 1)));
  });

  it('is the same run whatever the windows (smaller than the lookahead)', () => {
    const a = lockstep().flatMap(fleetFingerprint);
    const b = lockstep(3).flatMap(fleetFingerprint);
    expect(b).toEqual(a);
    expect(a.length).toBe(SPOKES + 1);
  });

  it('refuses a window longer than the lookahead: an import would arrive in the past', () => {
    expect(() => lockstep(25)).toThrow(/the lookahead was broken/);
  });

  it('refuses a datagram between partitions faster than the lookahead', () => {
    // Partition 1 runs s15, partition 0 the hub: s15's handshake to the hub is an export.
    const w = buildFleetWorld(SPOKES, SEED, { index: 1, of: fleetPartitionOf({ index: 1, count: 2 }, 3) });
    w.exportMinDelayMs = w.partitionLookaheadMs();
    let exported = 0;
    w.exportArrival = () => void exported++;
    w.run(100);
    expect(exported).toBeGreaterThan(0);
    w.impair('s15.mpls-hub.mpls', { delayMs: 2 });
    expect(() => w.run(12_000)).toThrow(/sooner than the 10 ms lookahead/); // its next handshake attempt
  });

  it('refuses a connection between partitions it cannot decide at send time (NAT)', () => {
    const build = (): World =>
      new World({
        seed: 1,
        sites: [
          { name: 'hub', role: 'hub', links: ['inet'], prefixes: ['10.0.0.0/16'], coversSpokes: true },
          { name: 'b1', links: [{ name: 'inet', nat: true }], prefixes: ['10.1.0.0/16'] },
        ],
        connections: [{ a: 'b1.inet', b: 'hub.inet', delayMs: 10 }],
        partition: { index: 0, of: (s) => (s === 'hub' ? 0 : 1) },
      });
    expect(build).toThrow(/joins two partitions and has NAT/);
  });
});

describe('ParallelWorld (worker threads)', () => {
  it('runs the fleet over two workers as the one World does, the same run every time', async () => {
    const one = single();
    const runOnce = async (steps: number[], ringBytes?: number): Promise<{ fp: [string, number, string][]; hub: number; busy: number }> => {
      const pw = await ParallelWorld.start({ module: FLEET, partitions: 2, args: { spokes: SPOKES, seed: SEED, hubGroupEvery: 3 }, ...(ringBytes ? { ringBytes } : {}) });
      try {
        await pw.call('startTraffic', { spokes: SPOKES, startMs: TRAFFIC_AT_MS, durationMs: TRAFFIC_MS });
        for (const t of steps) await pw.run(t);
        const c = await pw.call<{ hubDelivered: number; busyDelivered: number }>('fleetCounts', { spokes: SPOKES });
        const fp = (await pw.call<[string, number, string][]>('fleetFingerprint')).flat();
        const stats = await pw.stats();
        expect(stats.every((s) => s.windows > 0 && s.imported > 0)).toBe(true);
        return { fp, hub: c[0]!.hubDelivered, busy: c[0]!.busyDelivered + c[1]!.busyDelivered };
      } finally {
        await pw.close();
      }
    };
    const a = await runOnce([END_MS]);
    // Other steps, and 16 KB rings (the default is 8 MB): the rings wrap hundreds of times.
    const b = await runOnce([2500, 4003, 5555, END_MS], 16 << 10);
    expect({ hub: a.hub, busy: a.busy }).toEqual({ hub: one.site('hub').deliveredCount, busy: counts([one]).busy });
    expect(b.fp).toEqual(a.fp);
    expect(a.fp.length).toBe(SPOKES + 1);
  }, 60_000);

  it('reports a failing partition instead of hanging', async () => {
    const pw = await ParallelWorld.start({ module: FLEET, partitions: 2, args: { spokes: 10, seed: SEED } });
    try {
      await expect(pw.call('noSuchFunction')).rejects.toThrow(/exports no function noSuchFunction/);
    } finally {
      await pw.close();
    }
  }, 60_000);
});
