// TUN queues (tun.queues, native/src/tun-queues.h): the steering rule on crafted packets, and with
// the real kernel (root) what it is for: a sparse flow's packet does not wait behind a bulk flow's
// backlog in the TUN. The namespace test sends 900 datagrams of one flow and then one of another
// into a TUN that nobody reads yet, then starts reading: with 8 queues the second flow's datagram
// comes within the first two batches; with 1 queue (the control) it comes last. The namespace
// (brt-tq-<pid>) goes in afterAll, also on failure; the sender is bounded in time.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeLoadError, tryLoadNative } from '../../src/io/native.ts';
import { openTun, type TunDevice } from '../../src/io/tun.ts';

const native = tryLoadNative();
const ruleSkip = !native ? `native addon missing: ${nativeLoadError()?.message}` : native.tunQueueOfForTest === undefined ? 'addon built before TUN queues' : undefined;
if (ruleSkip) console.warn(`skipping TUN queue rule tests: ${ruleSkip}`);
const isRoot = process.getuid?.() === 0;
const nsSkip = ruleSkip ?? (!isRoot ? 'needs root (creates a network namespace and TUN devices)' : !existsSync('/dev/net/tun') ? 'no /dev/net/tun on this kernel' : undefined);
if (nsSkip && !ruleSkip) console.warn(`skipping TUN queue namespace test: ${nsSkip}`);

const QUEUES = 8;
const EF = 46;

function ipv4(opts: { src: string; dst: string; proto: number; dscp?: number; sport?: number; dport?: number; fragOffset?: number; totalBytes?: number }): Buffer {
  const len = opts.totalBytes ?? 48;
  const p = Buffer.alloc(len);
  p[0] = 0x45;
  p[1] = (opts.dscp ?? 0) << 2;
  p.writeUInt16BE(len, 2);
  p.writeUInt16BE(opts.fragOffset ?? 0, 6);
  p[8] = 64;
  p[9] = opts.proto;
  Buffer.from(opts.src.split('.').map(Number)).copy(p, 12);
  Buffer.from(opts.dst.split('.').map(Number)).copy(p, 16);
  if (len >= 24) {
    p.writeUInt16BE(opts.sport ?? 0, 20);
    p.writeUInt16BE(opts.dport ?? 0, 22);
  }
  return p;
}

function ipv6(opts: { src: number; dst: number; next: number; dscp?: number; sport?: number; dport?: number }): Buffer {
  const p = Buffer.alloc(60);
  p.writeUInt32BE((6 << 28) | ((opts.dscp ?? 0) << 22), 0);
  p.writeUInt16BE(20, 4);
  p[6] = opts.next;
  p[7] = 64;
  p.writeUInt16BE(0xfd99, 8);
  p.writeUInt32BE(opts.src, 20);
  p.writeUInt16BE(0xfd99, 24);
  p.writeUInt32BE(opts.dst, 36);
  p.writeUInt16BE(opts.sport ?? 0, 40);
  p.writeUInt16BE(opts.dport ?? 0, 42);
  return p;
}

describe.skipIf(ruleSkip !== undefined)('TUN queue steering rule', () => {
  const queueOf = (p: Buffer, queues = QUEUES): number => native!.tunQueueOfForTest!(p, queues);

  it('puts realtime DSCPs in queue 0 and nothing else there', () => {
    for (const dscp of [EF, 48, 56, 34, 24]) {
      expect(queueOf(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, dscp, sport: 5000, dport: 6000 }))).toBe(0);
      expect(queueOf(ipv6({ src: 1, dst: 2, next: 17, dscp, sport: 5000, dport: 6000 }))).toBe(0);
    }
    for (let port = 1000; port < 1400; port++) {
      expect(queueOf(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, dscp: port % 2 === 0 ? 0 : 10, sport: port, dport: 443 }))).toBeGreaterThan(0);
    }
  });

  it('keeps both directions of a flow in one queue, and spreads flows over queues 1..7', () => {
    const counts = new Array<number>(QUEUES).fill(0);
    for (let port = 20000; port < 20700; port++) {
      const out = queueOf(ipv4({ src: '10.1.0.5', dst: '10.2.0.9', proto: 6, sport: port, dport: 5201 }));
      const back = queueOf(ipv4({ src: '10.2.0.9', dst: '10.1.0.5', proto: 6, sport: 5201, dport: port }));
      expect(back).toBe(out);
      counts[out]!++;
      const out6 = queueOf(ipv6({ src: 5, dst: 9, next: 17, sport: port, dport: 53 }));
      expect(queueOf(ipv6({ src: 9, dst: 5, next: 17, sport: 53, dport: port }))).toBe(out6);
    }
    expect(counts[0]).toBe(0);
    // 700 flows over 7 queues: 100 each on average; every queue gets a fair share.
    for (let q = 1; q < QUEUES; q++) expect(counts[q]).toBeGreaterThan(50);
  });

  it('keeps a fragmented datagram in one queue, and sends short or non-IP packets to queue 0', () => {
    // The first fragment (MF set) carries the ports, a later one payload bytes where ports would be:
    // both hash without them, so the datagram's fragments cannot pass each other between queues.
    const first = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 4000, dport: 4001, fragOffset: 0x2000 });
    const later = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 0x1111, dport: 0x2222, fragOffset: 185 });
    expect(queueOf(first)).toBeGreaterThan(0);
    expect(queueOf(later)).toBe(queueOf(first));
    const whole = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 4000, dport: 4001 });
    const spread = new Set([4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008].map((d) => queueOf(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 4000, dport: d }))));
    expect(spread.size, 'unfragmented datagrams of other ports hash apart').toBeGreaterThan(1);
    expect(queueOf(whole)).toBeGreaterThan(0);
    expect(queueOf(Buffer.from([0x45, 0]))).toBe(0);
    expect(queueOf(Buffer.alloc(0))).toBe(0);
    expect(queueOf(Buffer.from([0x20, 0, 0, 0]))).toBe(0);
    expect(queueOf(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', proto: 6, sport: 1, dport: 2 }), 1)).toBe(0);
  });
});

const NS = `brt-tq-${process.pid}`;
const ADDR = '10.199.77.1';
const PEER = '10.199.77.2';
const BULK_DATAGRAMS = 900;
const SEND_TIMEOUT_MS = 15_000;

function run(command: string, args: readonly string[], timeoutMs = 10_000): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** UDP source port 40000 to `port` from ADDR: the first packet of the flow the TUN will see. */
function udpHeader(sport: number, dport: number): Buffer {
  return ipv4({ src: ADDR, dst: PEER, proto: 17, sport, dport, totalBytes: 128 });
}

describe.skipIf(nsSkip !== undefined)('TUN queues with the real kernel (root)', () => {
  beforeAll(async () => {
    await run('ip', ['netns', 'del', NS]);
    const made = await run('ip', ['netns', 'add', NS]);
    if (!made.ok) throw new Error(`ip netns add ${NS}: ${made.stderr}`);
  });
  afterAll(async () => {
    await run('ip', ['netns', 'del', NS]);
  });

  // Which position the sparse flow's datagram reads at, with this many queues.
  async function sparsePosition(queues: number, bulkPort: number, sparsePort: number): Promise<{ position: number; total: number; bulkInOrder: boolean; queues: number }> {
    const name = `brt-tq${queues}-${process.pid}`.slice(0, 15);
    const tun: TunDevice = await openTun({ name, mtuBytes: 1400, addressCidr: `${ADDR}/24`, netns: NS, txQueueLen: 2000, queues });
    try {
      const sender = [
        'import socket',
        'a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
        `a.bind(('${ADDR}', 40000))`,
        `for i in range(${BULK_DATAGRAMS}): a.sendto(b'A' + i.to_bytes(4, 'big') + bytes(95), ('${PEER}', ${bulkPort}))`,
        'b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
        `b.bind(('${ADDR}', 40001))`,
        `b.sendto(b'B' + bytes(99), ('${PEER}', ${sparsePort}))`,
      ].join('\n');
      const sent = await run('ip', ['netns', 'exec', NS, 'python3', '-c', sender], SEND_TIMEOUT_MS);
      if (!sent.ok) throw new Error(`sender: ${sent.stderr}`);
      const marks: string[] = [];
      let lastBulk = -1;
      let bulkInOrder = true;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${marks.length} of ${BULK_DATAGRAMS + 1} datagrams`)), 5_000);
        tun.onPackets((batch) => {
          for (let i = 0; i < batch.count; i++) {
            const p = batch.packet(i);
            // 20-byte IPv4 header, 8-byte UDP header, then our payload; other packets (IPv6
            // router solicitations) are not ours.
            if (p.length !== 128 || p[9] !== 17) continue;
            const tag = String.fromCharCode(p[28]!);
            if (tag === 'A') {
              const seq = new DataView(p.buffer, p.byteOffset, p.length).getUint32(29);
              if (seq !== lastBulk + 1) bulkInOrder = false;
              lastBulk = seq;
            }
            marks.push(tag);
          }
          if (marks.length >= BULK_DATAGRAMS + 1) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      return { position: marks.indexOf('B'), total: marks.length, bulkInOrder, queues: tun.queues ?? 1 };
    } finally {
      tun.close();
    }
  }

  it('the kernel puts every packet in the queue the rule names (the eBPF program agrees with tun_queue_of)', async () => {
    const addon = native!;
    const name = `brt-tqr-${process.pid}`.slice(0, 15);
    const opened = addon.tunOpen(name, 1400, true, QUEUES);
    const fds = opened.fds ?? [opened.fd];
    const readers: ReturnType<typeof addon.startReader>[] = [];
    try {
      expect(opened.queues, opened.queuesError).toBe(QUEUES);
      for (const args of [['link', 'set', 'dev', name, 'netns', NS], ['-n', NS, 'link', 'set', 'dev', name, 'up'], ['-n', NS, 'addr', 'add', `${ADDR}/24`, 'dev', name]]) {
        const r = await run('ip', args);
        if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
      }
      let agree = 0;
      const disagree: string[] = [];
      const perQueue = new Array<number>(QUEUES).fill(0);
      fds.forEach((fd, q) => {
        readers.push(
          addon.startReader(fd, 'tun', (slab, count, lengths) => {
            for (let i = 0; i < count; i++) {
              const p = slab.subarray(i * addon.SLOT_BYTES, i * addon.SLOT_BYTES + lengths[i]!);
              if (p[0]! >> 4 !== 4) continue; // the namespace's own IPv6 chatter
              perQueue[q]!++;
              const want = addon.tunQueueOfForTest!(p, QUEUES);
              if (want === q) agree++;
              else disagree.push(`queue ${q}, rule ${want}: ${p.subarray(0, 28).toString('hex')}`);
            }
          }),
        );
      });
      // 300 UDP flows, TCP SYNs to 50 ports (nothing answers: they retransmit, same queue), and
      // pings with and without DSCP EF (TOS 184).
      const sender = [
        'import socket',
        'u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
        `for i in range(300): u.sendto(b'x' * (i % 50), ('${PEER}', 1000 + i))`,
        'for i in range(50):',
        '    t = socket.socket(); t.setblocking(False)',
        `    t.connect_ex(('${PEER}', 2000 + i))`,
      ].join('\n');
      const sent = await run('ip', ['netns', 'exec', NS, 'python3', '-c', sender], SEND_TIMEOUT_MS);
      if (!sent.ok) throw new Error(`sender: ${sent.stderr}`);
      await run('ip', ['netns', 'exec', NS, 'ping', '-c', '3', '-i', '0.05', '-W', '0.1', '-Q', '184', PEER], SEND_TIMEOUT_MS);
      await run('ip', ['netns', 'exec', NS, 'ping', '-c', '3', '-i', '0.05', '-W', '0.1', PEER], SEND_TIMEOUT_MS);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(disagree).toEqual([]);
      expect(agree).toBeGreaterThanOrEqual(300 + 50 + 6);
      expect(perQueue[0], 'the EF pings').toBeGreaterThanOrEqual(3);
      // The flows spread: every hashed queue got some.
      for (let q = 1; q < QUEUES; q++) expect(perQueue[q], `queue ${q}`).toBeGreaterThan(10);
    } finally {
      for (const r of readers) addon.stopReader(r);
      for (const fd of fds) addon.closeFd(fd);
    }
  });

  it('falls back to one queue, saying why, where the eBPF program may not load (no CAP_BPF)', { timeout: 30_000 }, async (ctx) => {
    if (!existsSync('/usr/bin/setpriv')) {
      console.warn('skipping the CAP_BPF fallback test: no setpriv (util-linux)');
      ctx.skip();
    }
    const child = fileURLToPath(new URL('./helpers/open-tun-child.ts', import.meta.url));
    const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
    const name = `brt-tqc-${process.pid}`.slice(0, 15);
    const outcome = async (drop: boolean): Promise<{ ok?: boolean; queues?: number; queuesError?: string }> => {
      const args = [...(drop ? ['--inh-caps=-bpf,-sys_admin', '--bounding-set=-bpf,-sys_admin'] : []), process.execPath, runTs, child, name, String(QUEUES)];
      const r = await run('setpriv', args, 25_000);
      return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { ok?: boolean; queues?: number; queuesError?: string };
    };
    expect(await outcome(true)).toEqual({ ok: true, queues: 1, queuesError: 'bpf(BPF_PROG_LOAD): Operation not permitted' });
    expect(await outcome(false)).toEqual({ ok: true, queues: QUEUES });
  });

  it('a sparse flow reads within two batches of a 900-datagram backlog with 8 queues, last with 1', async () => {
    const queueOf = (p: Buffer): number => native!.tunQueueOfForTest!(p, QUEUES);
    const bulkPort = 7000;
    const bulkQueue = queueOf(udpHeader(40000, bulkPort));
    let sparsePort = 7001;
    while (queueOf(udpHeader(40001, sparsePort)) === bulkQueue) sparsePort++;
    const eight = await sparsePosition(QUEUES, bulkPort, sparsePort);
    const one = await sparsePosition(1, bulkPort, sparsePort);
    expect(eight.queues).toBe(QUEUES);
    expect(one.queues).toBe(1);
    for (const r of [eight, one]) {
      expect(r.total).toBe(BULK_DATAGRAMS + 1);
      expect(r.bulkInOrder).toBe(true);
    }
    expect(one.position, 'one queue: the sparse datagram waits behind the whole backlog').toBe(BULK_DATAGRAMS);
    expect(eight.position, `eight queues: the sparse datagram read at ${eight.position}`).toBeLessThan(2 * native!.BATCH_MAX);
  });
});
