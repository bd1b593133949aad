// The IPv6 underlay on loopback (::1, no root): IPv6 sockets, dual-stack '::' sockets carrying
// IPv4 peers as v4-mapped addresses (plain IPv4 above the link), per-packet traffic class, batched
// sends with GSO to both families, and refusals for destinations a socket cannot reach. As root,
// DF on both families in a brt- namespace: a datagram bigger than the veth MTU fails with EMSGSIZE
// instead of leaving as fragments (the namespace is deleted in afterAll, also on failure).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { nativeLoadError, tryLoadNative } from '../../src/io/native.ts';
import { NativeUdpLink, NodeDgramLink, SendBatch, dscpToTos, type DatagramBatch, type UdpLink } from '../../src/io/udp.ts';

const native = tryLoadNative();
if (!native) console.warn(`skipping native IPv6 UDP tests: ${nativeLoadError()?.message}`);
const isRoot = process.getuid?.() === 0;

interface Got {
  seq: number;
  family: 4 | 6;
  from: string;
  fromU32: number;
  from6: string;
  port: number;
  tos: number;
}

function collect(link: UdpLink, into: Got[]): void {
  link.onDatagrams((batch: DatagramBatch) => {
    for (let i = 0; i < batch.count; i++) {
      into.push({
        seq: ((d) => new DataView(d.buffer, d.byteOffset, d.length).getUint32(0))(batch.datagram(i)),
        family: batch.fromFamily(i),
        from: batch.fromAddress(i),
        fromU32: batch.fromAddressU32(i),
        from6: Buffer.from(batch.fromAddress6(i)).toString('hex'),
        port: batch.fromPort(i),
        tos: batch.tos(i),
      });
    }
  });
}

function dg(seq: number, bytes = 100): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUInt32BE(seq, 0);
  return b;
}

function until(predicate: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (predicate()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(check, 1);
    };
    check();
  });
}

const opened: UdpLink[] = [];
afterEach(() => {
  for (const l of opened.splice(0)) l.close();
});
function open(options: Partial<Parameters<typeof NativeUdpLink.open>[0]> & { bindAddress: string }): NativeUdpLink {
  const link = NativeUdpLink.open({ port: 0, ...options }, native);
  opened.push(link);
  return link;
}

describe.skipIf(!native)('native UDP link over IPv6', () => {
  it('::1 to ::1: source family, address, port and traffic class arrive', async () => {
    const a = open({ bindAddress: '::1' });
    const b = open({ bindAddress: '::1', recvTos: true });
    expect(a.family).toBe(6);
    expect(a.dualStack).toBe(false);
    const got: Got[] = [];
    collect(b, got);
    for (const [seq, dscp] of [0, 46, 10].entries()) expect(a.send(dg(seq), { address: '::1', port: b.port }, dscp)).toBe(true);
    await until(() => got.length === 3, 'three datagrams');
    expect(got.map((g) => g.seq)).toEqual([0, 1, 2]);
    expect(got.every((g) => g.family === 6 && g.from === '::1' && g.fromU32 === 0 && g.port === a.port)).toBe(true);
    expect(got[0]!.from6).toBe('00000000000000000000000000000001');
    expect(got.map((g) => g.tos)).toEqual([0, 46, 10].map(dscpToTos));
  });

  it("a dual-stack '::' socket talks to IPv4 peers as plain IPv4 and to IPv6 peers, on one socket", async () => {
    const dual = open({ bindAddress: '::', recvTos: true });
    expect(dual.dualStack).toBe(true);
    const v4 = open({ bindAddress: '127.0.0.1', recvTos: true });
    const v6 = open({ bindAddress: '::1' });
    const atDual: Got[] = [];
    const atV4: Got[] = [];
    const atV6: Got[] = [];
    collect(dual, atDual);
    collect(v4, atV4);
    collect(v6, atV6);
    expect(v4.send(dg(1), { address: '127.0.0.1', port: dual.port }, 46)).toBe(true);
    expect(v6.send(dg(2), { address: '::1', port: dual.port }, 0)).toBe(true);
    await until(() => atDual.length === 2, 'both families at the dual-stack socket');
    const fromV4 = atDual.find((g) => g.seq === 1)!;
    expect(fromV4).toMatchObject({ family: 4, from: '127.0.0.1', fromU32: 0x7f000001, port: v4.port, tos: dscpToTos(46) });
    expect(fromV4.from6).toBe('00000000000000000000ffff7f000001');
    expect(atDual.find((g) => g.seq === 2)).toMatchObject({ family: 6, from: '::1', port: v6.port });
    // And back: an IPv4 text destination goes out v4-mapped, with the IPv4 TOS.
    expect(dual.send(dg(3), { address: '127.0.0.1', port: v4.port }, 34)).toBe(true);
    expect(dual.send(dg(4), { address: '::1', port: v6.port }, 0)).toBe(true);
    await until(() => atV4.length === 1 && atV6.length === 1, 'replies');
    expect(atV4[0]).toMatchObject({ seq: 3, family: 4, from: '127.0.0.1', port: dual.port, tos: dscpToTos(34) });
    expect(atV6[0]).toMatchObject({ seq: 4, family: 6, port: dual.port });
  });

  it('sendBatch on a dual-stack socket: GSO runs to an IPv6 peer and to an IPv4 peer all arrive', async () => {
    const dual = open({ bindAddress: '::', gso: true });
    const v4 = open({ bindAddress: '127.0.0.1' });
    const v6 = open({ bindAddress: '::1' });
    const atV4: Got[] = [];
    const atV6: Got[] = [];
    collect(v4, atV4);
    collect(v6, atV6);
    const batch = new SendBatch();
    for (let i = 0; i < 40; i++) {
      const toV6 = i % 20 < 10;
      expect(batch.push(dg(i, 1200), toV6 ? { address: '::1', port: v6.port } : { address: '127.0.0.1', port: v4.port }, 0)).toBe(true);
    }
    expect(batch.ipv6Count).toBe(20);
    expect(dual.sendBatch(batch)).toBe(40);
    await until(() => atV4.length === 20 && atV6.length === 20, 'the batch');
    expect(atV6.map((g) => g.seq)).toEqual([...Array(10).keys(), ...Array.from({ length: 10 }, (_, i) => 20 + i)]);
    expect(atV4.every((g) => g.family === 4 && g.from === '127.0.0.1')).toBe(true);
    expect(dual.counters.txDropped).toBe(0);
  });

  it('refuses, as counted drops, destinations the socket cannot reach', async () => {
    const v4only = open({ bindAddress: '127.0.0.1' });
    expect(v4only.send(dg(0), { address: '::1', port: 9 }, 0)).toBe(false);
    expect(v4only.counters.lastTxError).toBe('EAFNOSUPPORT');
    const v6only = open({ bindAddress: '::', v6Only: true });
    expect(v6only.dualStack).toBe(false);
    expect(v6only.send(dg(0), { address: '127.0.0.1', port: 9 }, 0)).toBe(false);
    expect(v6only.counters.lastTxError).toBe('EAFNOSUPPORT');
    expect(v6only.send(dg(0), { address: 'not-an-address', port: 9 }, 0)).toBe(false);
    expect(v6only.counters.lastTxError).toBe('EINVAL');
    // A batch with one unreachable destination still sends the others.
    const sink = open({ bindAddress: '127.0.0.1' });
    const got: Got[] = [];
    collect(sink, got);
    const batch = new SendBatch();
    batch.push(dg(1), { address: '127.0.0.1', port: sink.port }, 0);
    batch.push(dg(2), { address: '::1', port: 9 }, 0);
    batch.push(dg(3), { address: '127.0.0.1', port: sink.port }, 0);
    expect(v4only.sendBatch(batch)).toBe(2);
    await until(() => got.length === 2, 'the reachable two');
    expect(got.map((g) => g.seq)).toEqual([1, 3]);
  });

  it('binding a bad address fails with the IPv6 form in the message', () => {
    expect(() => open({ bindAddress: '2001:db8::dead', port: 0 })).toThrow(/\[2001:db8::dead\]:0/);
  });
});

describe('node:dgram fallback over IPv6', () => {
  it('talks IPv6 and, dual stack, IPv4 as plain IPv4 text', async () => {
    const dual = await NodeDgramLink.open({ bindAddress: '::', port: 0 });
    const v4 = await NodeDgramLink.open({ bindAddress: '127.0.0.1', port: 0 });
    opened.push(dual, v4);
    const atDual: Got[] = [];
    const atV4: Got[] = [];
    collect(dual, atDual);
    collect(v4, atV4);
    expect(v4.send(dg(1), { address: '127.0.0.1', port: dual.port }, 0)).toBe(true);
    expect(dual.send(dg(2), { address: '::1', port: dual.port }, 0)).toBe(true);
    await until(() => atDual.length === 2, 'both');
    expect(atDual.find((g) => g.seq === 1)).toMatchObject({ family: 4, from: '127.0.0.1', fromU32: 0x7f000001 });
    expect(atDual.find((g) => g.seq === 2)).toMatchObject({ family: 6, from: '::1' });
    expect(dual.send(dg(3), { address: '127.0.0.1', port: v4.port }, 0)).toBe(true);
    await until(() => atV4.length === 1, 'reply');
    expect(v4.send(dg(4), { address: '::1', port: 9 }, 0)).toBe(false);
    expect(v4.counters.lastTxError).toBe('EAFNOSUPPORT');
    await expect(NodeDgramLink.open({ bindAddress: '::1', port: 0, dontFragment: true })).rejects.toThrow(/dontFragment/);
  });
});

// ---- DF, as root, in a namespace with a 1400-byte veth -------------------------------------

const NETNS = `brt-df-${process.pid}`;
const child = fileURLToPath(new URL('./helpers/udp-df-child.ts', import.meta.url));
const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
function run(command: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 20_000, env: process.env }, (error, stdout, stderr) => resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr) }));
  });
}

describe.skipIf(!native || !isRoot)('DF on the underlay (root, netns brt-df-<pid>)', () => {
  beforeAll(async () => {
    await run('ip', ['netns', 'del', NETNS]);
    for (const args of [
      ['netns', 'add', NETNS],
      ['-n', NETNS, 'link', 'add', 'brt-a', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'brt-b', 'mtu', '1400'],
      // No link-local address: no router solicitations or MLD reports that would count as tx packets.
      ['-n', NETNS, 'link', 'set', 'brt-a', 'addrgenmode', 'none'],
      ['-n', NETNS, 'link', 'set', 'brt-b', 'addrgenmode', 'none'],
      ['-n', NETNS, 'addr', 'add', '10.199.80.1/24', 'dev', 'brt-a'],
      ['-n', NETNS, 'addr', 'add', 'fd00:199:80::1/64', 'dev', 'brt-a', 'nodad'],
      ['-n', NETNS, 'link', 'set', 'brt-a', 'up'],
      ['-n', NETNS, 'link', 'set', 'brt-b', 'up'],
      ['-n', NETNS, 'neigh', 'add', '10.199.80.2', 'lladdr', '02:00:00:00:00:02', 'dev', 'brt-a'],
      ['-n', NETNS, 'neigh', 'add', 'fd00:199:80::2', 'lladdr', '02:00:00:00:00:02', 'dev', 'brt-a'],
    ]) {
      const r = await run('ip', args);
      if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
    }
    // Let the unsolicited MLD reports for the new address go out before counting.
    await new Promise((r) => setTimeout(r, 1500));
  });
  afterAll(async () => {
    await run('ip', ['netns', 'del', NETNS]);
  });

  const send = async (bind: string, to: string, bytes: number, dontFragment: boolean): Promise<{ sent: boolean; error?: string; txPackets: number }> => {
    const r = await run('ip', ['netns', 'exec', NETNS, process.execPath, runTs, child, bind, to, String(bytes), dontFragment ? 'df' : 'nodf']);
    expect(r.ok, r.stderr).toBe(true);
    return JSON.parse(r.stdout.trim()) as { sent: boolean; error?: string; txPackets: number };
  };

  for (const [family, bind, to, headerBytes] of [
    ['IPv4', '0.0.0.0', '10.199.80.2', 28],
    ['IPv6', '::', 'fd00:199:80::2', 48],
  ] as const) {
    it(`${family}: a datagram over the MTU fails with EMSGSIZE with DF, leaves as fragments without; one that fits goes`, async () => {
      const fits = await send(bind, to, 1400 - headerBytes, true);
      expect(fits).toMatchObject({ sent: true, txPackets: 1 });
      const tooBig = await send(bind, to, 1400 - headerBytes + 1, true);
      expect(tooBig).toMatchObject({ sent: false, error: 'EMSGSIZE', txPackets: 0 });
      const fragmented = await send(bind, to, 1400 - headerBytes + 1, false);
      expect(fragmented).toMatchObject({ sent: true, txPackets: 2 });
    });
  }
});
