// The TUN's kernel counters: parsed from a fake sysfs tree (every field, so a swapped field
// fails), and read from a real veth device in a brt- namespace this test creates (root only),
// compared with what `ip -s link` reports for it after traffic the test sends inside the
// namespace. The namespace is deleted in afterAll, also on failure.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counterDelta, DeviceCounterReader, type DeviceCounters } from '../../src/io/tun-stats.ts';
import { tryLoadNative } from '../../src/io/native.ts';
import { openTun } from '../../src/io/tun.ts';

function run(command: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 20_000 }, (error, stdout, stderr) => resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr) }));
  });
}

describe('DeviceCounterReader on a fake sysfs tree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brt-sysfs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (dev: string, values: Record<string, number>): void => {
    mkdirSync(join(dir, dev, 'statistics'), { recursive: true });
    for (const [k, v] of Object.entries(values)) writeFileSync(join(dir, dev, 'statistics', k), `${v}\n`);
  };

  it('reads each field from its own file, and re-reads fresh values through the kept descriptors', () => {
    write('braid0', { rx_packets: 11, tx_packets: 22, rx_dropped: 33, tx_dropped: 762041, rx_errors: 55, tx_errors: 66 });
    const r = new DeviceCounterReader('braid0', dir);
    expect(r.read()).toEqual({ rxPackets: 11, txPackets: 22, rxDropped: 33, txDropped: 762041, rxErrors: 55, txErrors: 66 });
    write('braid0', { tx_dropped: 2 ** 40 });
    expect(r.read()!.txDropped).toBe(2 ** 40);
    r.close();
  });

  it('a missing device reads as undefined; one that appears later is found', () => {
    const r = new DeviceCounterReader('later0', dir);
    expect(r.read()).toBeUndefined();
    write('later0', { rx_packets: 1, tx_packets: 2, rx_dropped: 3, tx_dropped: 4, rx_errors: 5, tx_errors: 6 });
    expect(r.read()?.txDropped).toBe(4);
    r.close();
  });

  it('counterDelta: what moved since the last read', () => {
    const a: DeviceCounters = { rxPackets: 10, txPackets: 10, rxDropped: 0, txDropped: 5, rxErrors: 0, txErrors: 0 };
    const b: DeviceCounters = { ...a, txPackets: 30, txDropped: 9 };
    expect(counterDelta(a, b)).toEqual({ rxPackets: 0, txPackets: 20, rxDropped: 0, txDropped: 4, rxErrors: 0, txErrors: 0 });
  });
});

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('skipping the namespace counter test: needs root (creates a namespace and a veth pair)');
const NETNS = `brt-stats-${process.pid}`;
const DEV = 'brt-d0';
const TUN = `brt-q${process.pid}`.slice(0, 15);
const child = fileURLToPath(new URL('./helpers/tun-stats-child.ts', import.meta.url));
const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));

describe.skipIf(!isRoot)('DeviceCounterReader on a veth device in a brt- namespace (root)', () => {
  beforeAll(async () => {
    await run('ip', ['netns', 'del', NETNS]);
    for (const args of [
      ['netns', 'add', NETNS],
      // A veth pair inside the namespace (this kernel kind has no dummy module), without IPv6
      // autoconfiguration so that only the test's packets move the counters.
      ['-n', NETNS, 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', 'brt-d1'],
      ['-n', NETNS, 'link', 'set', DEV, 'addrgenmode', 'none'],
      ['-n', NETNS, 'link', 'set', 'brt-d1', 'addrgenmode', 'none'],
      ['-n', NETNS, 'addr', 'add', '10.199.78.1/24', 'dev', DEV],
      ['-n', NETNS, 'link', 'set', DEV, 'up'],
      ['-n', NETNS, 'link', 'set', 'brt-d1', 'up'],
      ['-n', NETNS, 'neigh', 'add', '10.199.78.2', 'lladdr', '02:00:00:00:00:02', 'dev', DEV],
    ]) {
      const r = await run('ip', args);
      if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
    }
  });
  afterAll(async () => {
    await run('ip', ['netns', 'del', NETNS]);
    await run('ip', ['link', 'del', 'dev', TUN]); // in case the move into the namespace failed
  });

  const read = async (device: string, ...send: string[]): Promise<DeviceCounters> => {
    const r = await run('ip', ['netns', 'exec', NETNS, process.execPath, runTs, child, device, ...send]);
    expect(r.ok, r.stderr).toBe(true);
    return JSON.parse(r.stdout.trim()) as DeviceCounters;
  };

  it.skipIf(tryLoadNative() === undefined)('a TUN nobody reads: its queue overflows and TX dropped counts it (issue 13)', async () => {
    const tun = await openTun({ name: TUN, mtuBytes: 1400, addressCidr: '10.199.79.1/30', netns: NETNS });
    try {
      // 10.199.79.2 is routed into the TUN; this process never reads it, so the device's queue
      // (txqueuelen 500) fills and the rest are dropped by the kernel, invisible to Braid's counters.
      const after = await read(TUN, 'send', '800', '10.199.79.2');
      expect(after.txDropped).toBeGreaterThanOrEqual(800 - 500);
      expect(after.txErrors).toBe(0);
    } finally {
      tun.close();
    }
  });

  it('reads what `ip -s link` reports, after packets sent inside the namespace', async () => {
    const before = await read(DEV);
    // 10.199.78.2 has a static neighbour entry (no ARP): 5 datagrams go out through the device.
    await read(DEV, 'send', '5', '10.199.78.2');
    const after = await read(DEV);
    expect(after.txPackets - before.txPackets).toBe(5);
    const ip = await run('ip', ['-n', NETNS, '-j', '-s', 'link', 'show', 'dev', DEV]);
    const stats = (JSON.parse(ip.stdout) as Array<{ stats64: { rx: { packets: number; dropped: number; errors: number }; tx: { packets: number; dropped: number; errors: number } } }>)[0]!.stats64;
    expect(after).toEqual({
      rxPackets: stats.rx.packets,
      txPackets: stats.tx.packets,
      rxDropped: stats.rx.dropped,
      txDropped: stats.tx.dropped,
      rxErrors: stats.rx.errors,
      txErrors: stats.tx.errors,
    });
  });
});
