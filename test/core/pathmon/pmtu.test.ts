import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PmtuDiscovery, type PmtuChange, type PmtuConfig } from '../../../src/core/pathmon/pmtu.ts';
import { usableInnerMtu } from '../../../src/core/wire/overhead.ts';

/**
 * A path in virtual time: a probe no bigger than the path's MTU is acked one RTT later, a bigger
 * one vanishes (DF set: dropped, no ICMP). The driver calls nextProbeSize at every deadline, like
 * the shell's one timer would, and delivers acks in order.
 */
class PathSim {
  nowMs = 0;
  pathMtuBytes: number;
  readonly changes: Array<PmtuChange & { atMs: number }> = [];
  private acks: Array<{ atMs: number; size: number }> = [];
  probes: Array<{ atMs: number; size: number }> = [];
  /** The path carries nothing at all (an outage): not even the small path probes. */
  down = false;
  /** Feed onPathHeard from the small path probes (every 100 ms while the path is up). */
  reportHeard = true;
  /** Tell the PMTU about each small probe sent too, and lose them at lossRatio like the big ones. */
  smallProbes = false;
  private nextHeardMs = 0;
  readonly pmtu: PmtuDiscovery;

  constructor(config: PmtuConfig, pathMtuBytes: number, private readonly rttMs = 20, public lossRatio = 0, private readonly draw: () => number = () => 1) {
    this.pathMtuBytes = pathMtuBytes;
    this.pmtu = new PmtuDiscovery(config, 0);
  }

  /** Runs until `untilMs`, jumping from event to event. */
  run(untilMs: number): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      const nextAck = this.acks.length > 0 ? this.acks[0]!.atMs : Infinity;
      const nextHeard = this.reportHeard ? this.nextHeardMs : Infinity;
      const next = Math.min(nextAck, nextHeard, this.pmtu.nextDeadlineMs());
      if (next > untilMs) break;
      this.nowMs = Math.max(this.nowMs, next);
      if (nextHeard <= this.nowMs) {
        this.nextHeardMs = this.nowMs + 100;
        if (this.smallProbes) this.pmtu.onSmallProbeSent(this.nowMs);
        if (!this.down && !(this.smallProbes && this.draw() < this.lossRatio)) this.pmtu.onPathHeard(this.nowMs);
      } else if (nextAck <= this.nowMs) {
        const a = this.acks.shift()!;
        this.pmtu.onProbeAcked(a.size, this.nowMs);
      } else {
        const size = this.pmtu.nextProbeSize(this.nowMs);
        if (size !== undefined) {
          this.probes.push({ atMs: this.nowMs, size });
          const lost = this.down || size > this.pathMtuBytes || this.draw() < this.lossRatio;
          if (!lost) this.acks.push({ atMs: this.nowMs + this.rttMs, size });
        }
      }
      const c = this.pmtu.pollChange();
      if (c) this.changes.push({ ...c, atMs: this.nowMs });
    }
    this.nowMs = untilMs;
  }
}

const V4: PmtuConfig = { family: 4, maxMtuBytes: 1500 };

describe('PMTU discovery (RFC 8899 style)', () => {
  it('on a 1500 path: one probe of the link MTU confirms it', () => {
    const sim = new PathSim(V4, 1500);
    sim.run(50);
    expect(sim.pmtu.currentPmtu).toBe(1500);
    expect(sim.pmtu.phase).toBe('complete');
    expect(sim.probes).toEqual([{ atMs: 0, size: 1500 }]);
  });

  it('a PPPoE path (1492): falls to base, then searches up to exactly 1492', () => {
    const sim = new PathSim(V4, 1492);
    sim.run(10_000);
    expect(sim.pmtu.currentPmtu).toBe(1492);
    expect(sim.pmtu.phase).toBe('complete');
    expect(sim.changes.map((c) => c.reason)).toContain('link-mtu-lost');
    expect(sim.changes.at(-1)!.toBytes).toBe(1492);
  });

  it('an odd path MTU between steps (1412) ends at the largest step below it', () => {
    const sim = new PathSim(V4, 1412);
    sim.run(10_000);
    expect(sim.pmtu.currentPmtu).toBe(1400);
  });

  it('a middle hop dropping to 1280 mid-run is noticed within 5 s at a 100 ms probe interval', () => {
    const sim = new PathSim({ ...V4, probeIntervalMs: 100 }, 1500);
    sim.run(30_000);
    expect(sim.pmtu.currentPmtu).toBe(1500);
    sim.pathMtuBytes = 1280;
    const dropAtMs = sim.nowMs;
    sim.run(dropAtMs + 5000);
    expect(sim.pmtu.currentPmtu).toBeLessThanOrEqual(1280);
    const noticed = sim.changes.find((c) => c.atMs > dropAtMs && c.toBytes <= 1280)!;
    expect(noticed.reason).toBe('black-hole');
    expect(noticed.atMs - dropAtMs).toBeLessThanOrEqual(5000);
    sim.run(dropAtMs + 15_000);
    expect(sim.pmtu.currentPmtu).toBe(1280); // base 1200 first, then the search finds 1280
    expect(usableInnerMtu(sim.pmtu.currentPmtu, 4)).toBe(1193);
  });

  it('a 20 s outage of the whole path is not a black hole: the PMTU stays and is confirmed after', () => {
    const sim = new PathSim(V4, 1500);
    sim.run(10_000);
    sim.down = true;
    sim.run(30_000);
    expect(sim.pmtu.currentPmtu).toBe(1500);
    expect(sim.pmtu.blackHoles).toBe(0);
    expect(sim.pmtu.probesUnattributed).toBeGreaterThan(10);
    sim.down = false;
    sim.run(35_000);
    expect(sim.pmtu.phase).toBe('complete');
    expect(sim.changes).toEqual([]);
  });

  it('without onPathHeard an outage does look like a black hole (why the input exists)', () => {
    const sim = new PathSim(V4, 1500);
    sim.reportHeard = false;
    sim.run(10_000);
    sim.down = true;
    sim.run(30_000);
    expect(sim.pmtu.blackHoles).toBe(1);
  });

  it('the periodic raise finds a path that grew back', () => {
    const sim = new PathSim({ ...V4, raiseIntervalMs: 60_000 }, 1400);
    sim.run(10_000);
    expect(sim.pmtu.currentPmtu).toBe(1400);
    sim.pathMtuBytes = 1500;
    sim.run(50_000);
    expect(sim.pmtu.currentPmtu).toBe(1400); // not before the raise timer
    sim.run(80_000);
    expect(sim.pmtu.currentPmtu).toBe(1500);
  });

  it('IPv6: base is 1280, and a path at the minimum ends there', () => {
    const sim = new PathSim({ family: 6, maxMtuBytes: 1500 }, 1280);
    sim.run(10_000);
    expect(sim.pmtu.baseBytes).toBe(1280);
    expect(sim.pmtu.currentPmtu).toBe(1280);
    expect(sim.pmtu.probeDatagramBytes(1280)).toBe(1280 - 48);
  });

  it('a path that carries nothing (even base) goes to error and retries slowly', () => {
    const sim = new PathSim(V4, 600);
    sim.run(20_000);
    expect(sim.pmtu.phase).toBe('error');
    expect(sim.pmtu.currentPmtu).toBe(1200);
    const late = sim.probes.filter((p) => p.atMs > 10_000);
    expect(late.length).toBeLessThanOrEqual(12); // about one a second, not ten
  });

  it('Packet Too Big lowers the PMTU at once, is ignored below the minimum and when not lower', () => {
    const sim = new PathSim(V4, 1500);
    sim.run(1000);
    sim.pmtu.onPacketTooBig(1600, sim.nowMs);
    expect(sim.pmtu.currentPmtu).toBe(1500);
    sim.pmtu.onPacketTooBig(40, sim.nowMs);
    expect(sim.pmtu.currentPmtu).toBe(1500);
    sim.pmtu.onPacketTooBig(1400, sim.nowMs);
    expect(sim.pmtu.currentPmtu).toBe(1400);
    expect(sim.pmtu.pollChange()).toEqual({ fromBytes: 1500, toBytes: 1400, reason: 'packet-too-big' });
  });

  it('an explicit loss report counts like a timeout, and a stale one is ignored', () => {
    const p = new PmtuDiscovery(V4, 0);
    expect(p.nextProbeSize(0)).toBe(1500);
    p.onProbeLost(1400, 1); // not the outstanding size
    expect(p.nextProbeSize(1)).toBeUndefined();
    p.onProbeLost(1500, 1);
    expect(p.probesLost).toBe(1);
    expect(p.nextProbeSize(50)).toBeUndefined(); // paced by the probe interval
    expect(p.nextProbeSize(101)).toBe(1500);
  });

  it('random loss of 5% on a stable path does not fake a black hole (seeded runs)', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        let x = seed >>> 0 || 1;
        const draw = (): number => {
          x ^= x << 13;
          x >>>= 0;
          x ^= x >>> 17;
          x ^= x << 5;
          x >>>= 0;
          return x / 4294967296;
        };
        const sim = new PathSim(V4, 1500, 20, 0.05, draw);
        sim.run(120_000);
        expect(sim.pmtu.blackHoles).toBe(0);
        expect(sim.pmtu.currentPmtu).toBe(1500);
      }),
      { numRuns: 20 },
    );
  });

  it('a 240 s spell of 36% random loss on an established path (VOPR long seeds 6, 14): no black hole (learnPathLoss: false fakes some); a real drop is still found', () => {
    const xorshift = (seed: number): (() => number) => {
      let x = seed >>> 0 || 1;
      return () => {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        return x / 4294967296;
      };
    };
    let fakedWithout = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const told = new PathSim(V4, 1500, 20, 0, xorshift(seed));
      told.smallProbes = true;
      told.run(10_000);
      told.lossRatio = 0.36;
      told.run(250_000);
      expect(told.pmtu.blackHoles).toBe(0);
      expect(told.pmtu.currentPmtu).toBe(1500);
      const blind = new PathSim({ ...V4, learnPathLoss: false }, 1500, 20, 0, xorshift(seed));
      blind.smallProbes = true;
      blind.run(10_000);
      blind.lossRatio = 0.36;
      blind.run(250_000);
      fakedWithout += blind.pmtu.blackHoles;
    }
    expect(fakedWithout).toBeGreaterThan(0);
    // A middle hop dropping to 1280 on that lossy path: found, only later.
    const drop = new PathSim(V4, 1500, 20, 0, xorshift(99));
    drop.smallProbes = true;
    drop.run(10_000);
    drop.lossRatio = 0.36;
    drop.run(30_000);
    drop.pathMtuBytes = 1280;
    drop.run(90_000);
    const noticed = drop.changes.find((c) => c.atMs > 30_000 && c.toBytes < 1500);
    console.log(`36% loss: black holes faked without learnPathLoss: ${fakedWithout} in 10 x 240 s; a drop to 1280 noticed after ${((noticed?.atMs ?? NaN) - 30_000).toFixed(0)} ms`);
    expect(noticed?.reason).toBe('black-hole');
    expect(drop.pmtu.currentPmtu).toBe(1280);
  });

  it('lossy spells starting on a clean path (VOPR long seed 14): the small probes lost meanwhile explain the lost confirmations', () => {
    // 40 s clean (the loss history forgets), then 10 s at 50% loss, again and again: a run of lost
    // confirmations at the start of a spell is not a black hole when the small probes sent during
    // the run were lost as often.
    const xorshift = (seed: number): (() => number) => {
      let x = seed >>> 0 || 1;
      return () => {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        return x / 4294967296;
      };
    };
    let faked = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const sim = new PathSim(V4, 1500, 20, 0, xorshift(seed));
      sim.smallProbes = true;
      for (let t = 0; t < 500_000; t += 50_000) {
        sim.lossRatio = 0;
        sim.run(t + 40_000);
        sim.lossRatio = 0.5;
        sim.run(t + 50_000);
      }
      faked += sim.pmtu.blackHoles;
      expect(sim.pmtu.currentPmtu === 1500 || sim.pmtu.phase !== 'complete').toBe(true);
    }
    console.log(`50% loss spells on a clean path: ${faked} black holes faked in 10 x 10 spells`);
    expect(faked).toBe(0);
  });

  it('never reports a PMTU above the path once the search completes (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1200, max: 9000 }), fc.constantFrom(1500, 9000), (path, link) => {
        const sim = new PathSim({ family: 4, maxMtuBytes: link }, path);
        sim.run(30_000);
        expect(sim.pmtu.phase).toBe('complete');
        expect(sim.pmtu.currentPmtu).toBeLessThanOrEqual(Math.max(path, 1200));
        expect(sim.pmtu.currentPmtu).toBeGreaterThanOrEqual(Math.min(path, link) >= 1280 ? 1280 : 1200);
      }),
      { numRuns: 50 },
    );
  });
});

describe('PMTU timeline (printed for the report)', () => {
  it('1500 -> 1280 at 30 s', () => {
    const sim = new PathSim({ ...V4, probeIntervalMs: 100 }, 1500);
    sim.run(30_000);
    sim.pathMtuBytes = 1280;
    sim.run(45_000);
    const lines = sim.changes.map((c) => `${c.atMs} ms: ${c.fromBytes} -> ${c.toBytes} (${c.reason})`);
    if (process.env.PMTU_TIMELINE) console.log(lines.join('\n'), `\nprobes sent ${sim.pmtu.probesSent}`);
    expect(lines.length).toBeGreaterThanOrEqual(2);
  });

  // VOPR long seed 93000095: small probes read 26-32% lost over the run, and 11 confirmations lost
  // in a row were blamed on the size (1500 -> 1200) at the point estimate, where the path's round
  // trips were losing more than it. The estimate's upper bound asks for more in a row.
  it('a lossy path: a run of lost confirmations that the loss, at its upper bound, could explain is not a black hole', () => {
    const pmtu = new PmtuDiscovery(V4, 0);
    expect(pmtu.nextProbeSize(0)).toBe(1500);
    pmtu.onProbeAcked(1500, 20);
    expect(pmtu.phase).toBe('complete');
    let i = 0;
    let confirmationsLost = 0;
    let t = 0;
    const step = (): void => {
      t += 100;
      pmtu.onSmallProbeSent(t);
      if (i++ % 25 >= 7) pmtu.onPathHeard(t); // 7 of every 25 small probes (28%) never come back
      const before = pmtu.probesLost;
      pmtu.nextProbeSize(t); // confirmations go every second and are never answered
      confirmationsLost += pmtu.probesLost - before;
    };
    while (confirmationsLost < 11) step();
    // At the point estimate (28%: 11 in a row explain it with probability < 1e-6) this was a black hole.
    expect(pmtu.blackHoles).toBe(0);
    expect(pmtu.currentPmtu).toBe(1500);
    // A real black hole on that path is still found, a few confirmations later.
    while (confirmationsLost < 20 && pmtu.blackHoles === 0) step();
    expect(pmtu.blackHoles).toBe(1);
    console.log(`black hole called after ${confirmationsLost} confirmations lost in a row`);
  });
});
