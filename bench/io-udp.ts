// Micro-benchmark: UDP packets/s on loopback, sender and receiver in one process (the shape of
// an edge: one event loop does both), 1400-byte datagrams, 2 s per variant, measured as 4 rounds
// of 500 ms interleaved across the variants (after a 200 ms warm-up each) and reported as the
// median round: on a shared 2-core VM single 2 s runs varied by 2x between runs.
//   io-udp-addon          NativeUdpLink.send per packet (sendmsg + TOS cmsg), batched recvmmsg reader
//   io-udp-addon-sendmmsg addon udpSendBatch, 64 per sendmmsg, same reader
//   io-udp-dgram          node:dgram send / 'message' (the peer we compare against)
// A window of packets in flight keeps the sender from overrunning the receiver, so the figure is
// delivered packets/s, not sent packets/s. Usage: node bin/run-ts.js bench/io-udp.ts
// Prints one JSON object per figure as the last stdout lines (DESIGN.md section 6).

import dgram from 'node:dgram';
import { loadNative } from '../src/io/native.ts';
import { DEFAULT_SOCKET_BUFFER_BYTES, NativeUdpLink } from '../src/io/udp.ts';

const DATAGRAM_BYTES = 1400;
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 2_000);
const ROUNDS = 4;
const ROUND_MS = DURATION_MS / ROUNDS;
const WARMUP_MS = 200;
const WINDOW_PACKETS = 512; // 700 KB in flight: well under the 4 MiB receive buffer
const BURST_PACKETS = 64; // sends per event-loop turn before yielding to the reader
const STALL_MS = 100; // a window that does not move for this long is counted as lost
const HARD_LIMIT_MS = ROUND_MS + 5_000; // per round, in case the receiver never answers
const LOOPBACK = '127.0.0.1';
const LOOPBACK_U32 = 0x7f000001;

interface Variant {
  /** Sends up to `budget` packets; returns how many went out. */
  send(budget: number): number;
  /** Routes received-packet counts to onReceived (replacing the previous round's counter). */
  start(onReceived: (count: number) => void): void;
  /** Ends a round: received packets are ignored until the next start. */
  stop(): void;
  close(): void;
}

interface Result {
  packetsPerSecond: number;
  lost: number;
  sendFailures: number;
}

function measure(variant: Variant, durationMs: number): Promise<Result> {
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    let lost = 0;
    let sendFailures = 0;
    let lastProgressAt = performance.now();
    let lastReceived = 0;
    const startedAt = performance.now();
    let done = false;
    variant.start((count) => {
      received += count;
    });
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(hardLimit);
      const elapsedS = (performance.now() - startedAt) / 1000;
      variant.stop();
      resolve({ packetsPerSecond: Math.round(received / elapsedS), lost, sendFailures });
    };
    const hardLimit = setTimeout(finish, HARD_LIMIT_MS);
    const pump = (): void => {
      if (done) return;
      const now = performance.now();
      if (now - startedAt >= durationMs) {
        finish();
        return;
      }
      if (received !== lastReceived) {
        lastReceived = received;
        lastProgressAt = now;
      } else if (now - lastProgressAt > STALL_MS) {
        lost += sent - received - lost; // whatever is still in flight is not coming
        lastProgressAt = now;
      }
      const inFlight = sent - received - lost;
      const budget = Math.min(BURST_PACKETS, WINDOW_PACKETS - inFlight);
      if (budget > 0) {
        const out = variant.send(budget);
        sent += out;
        sendFailures += budget - out;
      }
      setImmediate(pump);
    };
    setImmediate(pump);
  });
}

function addonPerPacket(): Variant {
  const native = loadNative();
  const receiver = NativeUdpLink.open({ bindAddress: LOOPBACK, port: 0 }, native);
  const sender = NativeUdpLink.open({ bindAddress: LOOPBACK, port: 0 }, native);
  const payload = Buffer.alloc(DATAGRAM_BYTES, 0x5a);
  const to = { address: LOOPBACK, port: receiver.port };
  return {
    send(budget) {
      let out = 0;
      for (let i = 0; i < budget; i++) if (sender.send(payload, to, 46)) out++;
      return out;
    },
    start(onReceived) {
      receiver.onDatagrams((batch) => onReceived(batch.count));
    },
    stop() {
      receiver.onDatagrams(() => undefined);
    },
    close() {
      receiver.close();
      sender.close();
    },
  };
}

function addonSendmmsg(): Variant {
  const native = loadNative();
  const receiver = NativeUdpLink.open({ bindAddress: LOOPBACK, port: 0 }, native);
  const sender = native.udpOpen({
    bindAddress: LOOPBACK,
    port: 0,
    sndbufBytes: DEFAULT_SOCKET_BUFFER_BYTES,
  });
  const batchMax = native.BATCH_MAX;
  const slab = Buffer.alloc(DATAGRAM_BYTES * batchMax, 0x5a);
  const offsets = Uint32Array.from({ length: batchMax }, (_, i) => i * DATAGRAM_BYTES);
  const lengths = new Uint32Array(batchMax).fill(DATAGRAM_BYTES);
  const addrs = new Uint32Array(batchMax).fill(LOOPBACK_U32);
  const ports = new Uint16Array(batchMax).fill(receiver.port);
  const toss = new Uint8Array(batchMax).fill(46 << 2);
  return {
    send(budget) {
      const count = Math.min(budget, batchMax);
      const out = native.udpSendBatch(sender.fd, slab, count, offsets, lengths, addrs, ports, toss);
      return out < 0 ? 0 : out;
    },
    start(onReceived) {
      receiver.onDatagrams((batch) => onReceived(batch.count));
    },
    stop() {
      receiver.onDatagrams(() => undefined);
    },
    close() {
      receiver.close();
      native.closeFd(sender.fd);
    },
  };
}

async function nodeDgram(): Promise<Variant> {
  const bind = (socket: dgram.Socket): Promise<void> =>
    new Promise((resolve) => socket.bind({ address: LOOPBACK, port: 0 }, resolve));
  const options = {
    type: 'udp4' as const,
    recvBufferSize: DEFAULT_SOCKET_BUFFER_BYTES,
    sendBufferSize: DEFAULT_SOCKET_BUFFER_BYTES,
  };
  const receiver = dgram.createSocket(options);
  const sender = dgram.createSocket(options);
  await Promise.all([bind(receiver), bind(sender)]);
  const port = receiver.address().port;
  const payload = Buffer.alloc(DATAGRAM_BYTES, 0x5a);
  return {
    send(budget) {
      // The payload is never modified, so it is safe to hand to dgram without a copy.
      for (let i = 0; i < budget; i++) sender.send(payload, port, LOOPBACK);
      return budget;
    },
    start(onReceived) {
      receiver.removeAllListeners('message');
      receiver.on('message', () => onReceived(1));
    },
    stop() {
      receiver.removeAllListeners('message');
      receiver.on('message', () => undefined);
    },
    close() {
      receiver.close();
      sender.close();
    },
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : Math.round((sorted[mid - 1] + sorted[mid]) / 2);
}

/** Warm-up, then ROUNDS interleaved rounds; the median round per variant. */
async function runAll(variants: readonly Variant[]): Promise<Result[]> {
  for (const variant of variants) await measure(variant, WARMUP_MS);
  const rounds: Result[][] = variants.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, variant] of variants.entries()) {
      // Let the previous round's stragglers drain before timing the next one.
      await new Promise((resolve) => setTimeout(resolve, 20));
      rounds[index].push(await measure(variant, ROUND_MS));
    }
  }
  for (const variant of variants) variant.close();
  return rounds.map((results) => ({
    packetsPerSecond: median(results.map((r) => r.packetsPerSecond)),
    lost: results.reduce((sum, r) => sum + r.lost, 0),
    sendFailures: results.reduce((sum, r) => sum + r.sendFailures, 0),
  }));
}

function line(name: string, result: Result): void {
  process.stdout.write(
    `${name.padEnd(24)} ${result.packetsPerSecond.toLocaleString('en-US').padStart(12)} pkt/s` +
      `  (${DATAGRAM_BYTES} B, median of ${ROUNDS} x ${ROUND_MS} ms, lost ${result.lost}, send failures ${result.sendFailures})\n`,
  );
}

const [addon, mmsg, node] = await runAll([addonPerPacket(), addonSendmmsg(), await nodeDgram()]);
line('addon send+recvmmsg', addon);
line('addon sendmmsg+recvmmsg', mmsg);
line('node:dgram', node);
const figures = [
  { bench: 'io-udp-addon', value: addon.packetsPerSecond, unit: 'pkt/s', peers: { 'node-dgram': node.packetsPerSecond } },
  { bench: 'io-udp-addon-sendmmsg', value: mmsg.packetsPerSecond, unit: 'pkt/s', peers: { 'node-dgram': node.packetsPerSecond } },
  { bench: 'io-udp-dgram', value: node.packetsPerSecond, unit: 'pkt/s' },
];
for (const figure of figures) process.stdout.write(`${JSON.stringify(figure)}\n`);
