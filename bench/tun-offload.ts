// Micro-benchmark of issue 13's offloads in the I/O shell alone (no core, no crypto): CPU time of
// this process per packet, on and off, interleaved, so that a shared box's load moves both alike.
//   tun-offload-forward-cpu  two TUNs in namespaces brt-tob<pid>-a/b (root), this process
//                            forwarding between them as an edge's shell does (reader -> batch ->
//                            write); an iperf3 TCP transfer of BENCH_TUN_OFFLOAD_BYTES from a to b.
//                            On: super-segments split on read, coalesced writes (the kernel's TCP
//                            receive runs in our write syscall: one per super-segment instead of
//                            one per packet). Off: one read and one write per packet.
//   udp-gro-rx-cpu           loopback, a UDP GSO sender's 64-datagram sends to a reader with and
//                            without UDP_GRO; the receiving reader's CPU per datagram.
// CPU per packet, not Mbit/s: the figure does not depend on how much of the box we were given.
// Everything bounded in time; namespaces deleted at the end, also on failure.
// Usage: node bin/run-ts.js bench/tun-offload.ts (root for the TUN part). Prints one JSON object
// per figure as the last stdout lines (DESIGN.md section 6); notes to $BENCH_NOTES_FILE.

import { execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { loadNative } from '../src/io/native.ts';
import { openTun, type PacketBatch, type TunDevice } from '../src/io/tun.ts';

const native = loadNative();
const ROUNDS = 3;
const TRANSFER_BYTES = Number(process.env.BENCH_TUN_OFFLOAD_BYTES ?? 400_000_000);
const TRANSFER_TIMEOUT_MS = 60_000;
const GRO_DATAGRAMS = 400_000;
const NS_A = `brt-tob${process.pid}-a`;
const NS_B = `brt-tob${process.pid}-b`;
const log = (msg: string): void => void process.stderr.write(`[tun-offload] ${msg}\n`);

function run(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (error, stdout, stderr) => resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr) }));
  });
}

const cpuUs = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

/** One transfer through a forwarding pair; returns this process's CPU per forwarded packet (us). */
async function forwardRound(offload: boolean, round: number): Promise<{ usPerPacket: number; msPer100MB: number; packets: number; mbps: number; superRead: number; superWritten: number }> {
  const tag = `${offload ? 'n' : 'f'}${round}`;
  const a = await openTun({ name: `brt-tobA${tag}`, mtuBytes: 1420, addressCidr: '10.199.66.1/24', netns: NS_A, offload });
  const b = await openTun({ name: `brt-tobB${tag}`, mtuBytes: 1420, addressCidr: '10.199.66.2/24', netns: NS_B, offload });
  let packets = 0;
  const forward = (to: TunDevice) => (batch: PacketBatch): void => {
    packets += batch.count;
    if (offload) {
      for (let i = 0; i < batch.count; i++) to.queueWrite!(batch.packet(i));
      to.flushWrites!();
    } else {
      for (let i = 0; i < batch.count; i++) to.write(batch.packet(i));
    }
  };
  try {
    a.onPackets(forward(b));
    b.onPackets(forward(a));
    const server = spawn('ip', ['netns', 'exec', NS_B, 'iperf3', '-s', '-1', '-B', '10.199.66.2'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const c0 = cpuUs();
    const p0 = packets;
    const client = await run('ip', ['netns', 'exec', NS_A, 'iperf3', '-c', '10.199.66.2', '-n', String(TRANSFER_BYTES), '-J'], TRANSFER_TIMEOUT_MS);
    const used = cpuUs() - c0;
    const n = packets - p0;
    server.kill();
    if (!client.ok) throw new Error(`iperf3 failed: ${client.stderr.trim() || client.stdout.slice(-300)}`);
    const report = JSON.parse(client.stdout) as { end: { sum_received: { bits_per_second: number } } };
    // Per byte too: with offload the receiving kernel acks per super-segment, so fewer ACKs cross.
    return { usPerPacket: used / n, msPer100MB: used / 1000 / (TRANSFER_BYTES / 1e8), packets: n, mbps: report.end.sum_received.bits_per_second / 1e6, superRead: a.offloadStats?.()?.superSegments ?? 0, superWritten: b.counters.txSuperSegments ?? 0 };
  } finally {
    a.close();
    b.close();
  }
}

async function groRound(gro: boolean): Promise<{ usPerDatagram: number; trains: number }> {
  const tx = native.udpOpen({ bindAddress: '127.0.0.1', port: 0, sndbufBytes: 8 << 20 });
  const rx = native.udpOpen({ bindAddress: '127.0.0.1', port: 0, gro, rcvbufBytes: 32 << 20 });
  let got = 0;
  const reader = native.startReader(rx.fd, 'udp', (_slab, count) => {
    got += count;
  });
  const n = 64;
  const size = 1400;
  const slab = Buffer.alloc(n * size, 7);
  const offsets = Uint32Array.from({ length: n }, (_, i) => i * size);
  const lengths = new Uint32Array(n).fill(size);
  const addrs = new Uint32Array(n).fill(0x7f000001);
  const ports = new Uint16Array(n).fill(rx.port);
  let sent = 0;
  let rxUs = 0;
  try {
    // Bursts of 8 sends (512 datagrams), then only the receive drain is timed.
    while (sent < GRO_DATAGRAMS) {
      for (let k = 0; k < 8; k++) sent += Math.max(0, native.udpSendBatch(tx.fd, slab, n, offsets, lengths, addrs, ports, null, 0, true));
      const c0 = cpuUs();
      const before = got;
      const deadline = Date.now() + 500;
      while (got < sent && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      rxUs += cpuUs() - c0;
      if (got === before) throw new Error('the receiver got nothing for 500 ms');
    }
    return { usPerDatagram: rxUs / got, trains: native.readerOffloadStats?.(reader).superSegments ?? 0 };
  } finally {
    native.stopReader(reader);
    native.closeFd(tx.fd);
    native.closeFd(rx.fd);
  }
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const load0 = loadavg()[0]!;
const figures: object[] = [];
const notes: string[] = [];

const gro = { on: [] as number[], off: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  for (const on of [false, true]) {
    const res = await groRound(on);
    (on ? gro.on : gro.off).push(res.usPerDatagram);
    log(`udp gro ${on ? 'on' : 'off'}: ${res.usPerDatagram.toFixed(3)} us CPU per datagram (${res.trains} trains)`);
  }
}
figures.push({ bench: 'udp-gro-rx-cpu', value: Number(median(gro.on).toFixed(3)), unit: 'us/datagram', peers: { 'gro off': Number(median(gro.off).toFixed(3)) } });
notes.push(`- UDP receive, loopback, 1400-byte datagrams from a GSO sender (64 per send): the reader's CPU per datagram, median of ${ROUNDS}: GRO on ${median(gro.on).toFixed(3)} us, off ${median(gro.off).toFixed(3)} us (rounds on ${gro.on.map((x) => x.toFixed(3)).join(' / ')}, off ${gro.off.map((x) => x.toFixed(3)).join(' / ')}).`);

if (process.getuid?.() === 0) {
  const fwd = { on: [] as number[], off: [] as number[] };
  const perMB = { on: [] as number[], off: [] as number[] };
  const rates: string[] = [];
  try {
    for (const ns of [NS_A, NS_B]) {
      const added = await run('ip', ['netns', 'add', ns]);
      if (!added.ok) throw new Error(`ip netns add ${ns}: ${added.stderr.trim()}`);
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const on of [false, true]) {
        const res = await forwardRound(on, r);
        (on ? fwd.on : fwd.off).push(res.usPerPacket);
        (on ? perMB.on : perMB.off).push(res.msPer100MB);
        rates.push(`${on ? 'on' : 'off'} ${res.mbps.toFixed(0)}`);
        log(`tun offload ${on ? 'on' : 'off'}: ${res.usPerPacket.toFixed(3)} us CPU per packet forwarded (${res.packets} packets, ${res.mbps.toFixed(0)} Mbit/s, super-segments read ${res.superRead}, written ${res.superWritten})`);
      }
    }
  } finally {
    for (const ns of [NS_A, NS_B]) await run('ip', ['netns', 'del', ns]);
  }
  figures.push({ bench: 'tun-offload-forward-cpu', value: Number(median(fwd.on).toFixed(3)), unit: 'us/packet', peers: { 'offload off': Number(median(fwd.off).toFixed(3)) } });
  notes.push(
    `- TUN forwarding between two namespaces, iperf3 TCP ${TRANSFER_BYTES / 1e6} MB a -> b per round, TUN MTU 1420: this process's CPU per packet forwarded (read, batch, write; the receiving kernel's TCP work runs inside our writes), median of ${ROUNDS}: offload on ${median(fwd.on).toFixed(3)} us, off ${median(fwd.off).toFixed(3)} us (rounds on ${fwd.on.map((x) => x.toFixed(3)).join(' / ')}, off ${fwd.off.map((x) => x.toFixed(3)).join(' / ')}); per 100 MB carried: on ${median(perMB.on).toFixed(0)} ms, off ${median(perMB.off).toFixed(0)} ms of CPU. Forwarding rate, Mbit/s by round: ${rates.join(', ')}.`,
  );
} else {
  log('not root: the TUN forwarding part is skipped');
}
notes.push(`- load average (1 min) at start / end: ${load0.toFixed(2)} / ${loadavg()[0]!.toFixed(2)}`);
const notesFile = process.env.BENCH_NOTES_FILE;
if (notesFile) writeFileSync(notesFile, `${notes.join('\n')}\n`);
process.stdout.write(`\n${notes.join('\n')}\n\n`);
for (const figure of figures) process.stdout.write(`${JSON.stringify(figure)}\n`);
