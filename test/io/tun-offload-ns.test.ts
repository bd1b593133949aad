// TUN offloads with the real kernel (root): two TUNs opened with offload, each in its own network
// namespace (brt-ofa-<pid>, brt-ofb-<pid>), and this process forwarding between them the way an
// edge does: the reader splits what the sending kernel's TSO hands over, the writer coalesces into
// the receiving kernel's TUN. A TCP transfer from a to b must arrive byte for byte (SHA-256 on
// both sides), and both offloads must have been used. Namespaces and devices go in afterAll, also
// on failure; every child process is bounded in time.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeLoadError, tryLoadNative } from '../../src/io/native.ts';
import { openTun, type PacketBatch, type TunDevice } from '../../src/io/tun.ts';

const isRoot = process.getuid?.() === 0;
const native = tryLoadNative();
const skipReason = !isRoot
  ? 'needs root (creates network namespaces and TUN devices)'
  : !native
    ? `native addon missing: ${nativeLoadError()?.message}`
    : native.TUN_WRITE_BATCH_MAX === undefined
      ? 'addon built before offloads'
      : !existsSync('/dev/net/tun')
        ? 'no /dev/net/tun on this kernel'
        : undefined;
if (skipReason) console.warn(`skipping TUN offload namespace tests: ${skipReason}`);

const NS_A = `brt-ofa-${process.pid}`;
const NS_B = `brt-ofb-${process.pid}`;
const TUN_A = `brt-oa${process.pid}`.slice(0, 15);
const TUN_B = `brt-ob${process.pid}`.slice(0, 15);
const ADDR_A = '10.199.88.1';
const ADDR_B = '10.199.88.2';
const PORT = 5299;
const TRANSFER_BYTES = 8 * 1024 * 1024;
const CHILD_TIMEOUT_MS = 30_000;

function run(command: string, args: readonly string[], timeoutMs = 10_000): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

// Receives one connection to its end and prints "<bytes> <sha256>".
const SERVER = `
import hashlib, socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('${ADDR_B}', ${PORT})); s.listen(1); s.settimeout(25)
c, _ = s.accept(); c.settimeout(25)
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest())
`;
// Sends TRANSFER_BYTES of seeded random bytes (connecting until the server listens), prints the same.
const CLIENT = `
import hashlib, random, socket, time
data = random.Random(7).randbytes(${TRANSFER_BYTES})
deadline = time.time() + 10
while True:
    try:
        c = socket.create_connection(('${ADDR_B}', ${PORT}), timeout=5); break
    except OSError:
        if time.time() > deadline: raise
        time.sleep(0.05)
c.settimeout(25); c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
print(len(data), hashlib.sha256(data).hexdigest())
`;

describe.skipIf(skipReason !== undefined)('TUN offloads between two namespaces (root)', () => {
  const devices: TunDevice[] = [];

  beforeAll(async () => {
    for (const ns of [NS_A, NS_B]) {
      const added = await run('ip', ['netns', 'add', ns]);
      if (!added.ok) throw new Error(`ip netns add ${ns}: ${added.stderr.trim()}`);
    }
  });

  afterAll(async () => {
    for (const device of devices) device.close();
    for (const ns of [NS_A, NS_B]) await run('ip', ['netns', 'del', ns]);
    for (const name of [TUN_A, TUN_B]) await run('ip', ['link', 'del', 'dev', name]);
  });

  it('carries a TCP transfer byte for byte through split reads and coalesced writes', { timeout: 60_000 }, async () => {
    const a = await openTun({ name: TUN_A, mtuBytes: 1400, addressCidr: `${ADDR_A}/24`, netns: NS_A, offload: true });
    devices.push(a);
    const b = await openTun({ name: TUN_B, mtuBytes: 1400, addressCidr: `${ADDR_B}/24`, netns: NS_B, offload: true });
    devices.push(b);
    expect(a.offload).toBe(true);
    expect(b.offload).toBe(true);
    let largest = 0;
    const forward = (to: TunDevice) => (batch: PacketBatch) => {
      for (let i = 0; i < batch.count; i++) {
        largest = Math.max(largest, batch.lengthBytes(i));
        to.queueWrite!(batch.packet(i));
      }
      to.flushWrites!();
    };
    a.onPackets(forward(b));
    b.onPackets(forward(a));

    const server = run('ip', ['netns', 'exec', NS_B, 'python3', '-c', SERVER], CHILD_TIMEOUT_MS);
    const client = await run('ip', ['netns', 'exec', NS_A, 'python3', '-c', CLIENT], CHILD_TIMEOUT_MS);
    const received = await server;
    expect(client.ok, `client: ${client.stderr}`).toBe(true);
    expect(received.ok, `server: ${received.stderr}`).toBe(true);
    const sent = client.stdout.trim();
    expect(sent).toMatch(new RegExp(`^${TRANSFER_BYTES} [0-9a-f]{64}$`));
    expect(received.stdout.trim()).toBe(sent);

    // The reader never hands on more than an MTU: super-segments were split.
    expect(largest).toBeLessThanOrEqual(1400);
    const readStats = a.offloadStats!()!;
    expect(readStats.vnet).toBe(true);
    expect(readStats.superSegments).toBeGreaterThan(0);
    expect(readStats.segments).toBeGreaterThan(readStats.superSegments);
    expect(readStats.droppedHeader + readStats.droppedPacket + readStats.droppedUnsupported).toBe(0);
    // The receiving side got coalesced writes.
    expect(b.counters.txSuperSegments).toBeGreaterThan(0);
    expect(b.counters.txCoalescedPackets).toBeGreaterThan(b.counters.txSuperSegments!);
    expect(b.counters.txDropped).toBe(0);
  });

  it('counts garbage written to an offload TUN as refused, without a crash', { timeout: 20_000 }, async () => {
    const tun = devices[1]!;
    const before = tun.counters.txDropped;
    let x = 99;
    const refusedAtOnce = [Buffer.alloc(0), Buffer.alloc(70_000)].filter((p) => !tun.queueWrite!(p)).length;
    expect(refusedAtOnce).toBe(2);
    for (let i = 0; i < 300; i++) {
      const p = Buffer.alloc(1 + (i % 200));
      for (let k = 0; k < p.length; k++) {
        x = (x * 1103515245 + 12345) >>> 0;
        p[k] = x >>> 24;
      }
      tun.queueWrite!(p);
    }
    const refused = tun.flushWrites!();
    expect(refused).toBeGreaterThan(0); // the kernel refuses what is not IP
    expect(tun.counters.txDropped - before).toBe(refused + refusedAtOnce);
    expect(tun.counters.lastTxError).toMatch(/^E[A-Z]+$/);
  });
});
