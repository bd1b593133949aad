// TUN through the native addon, inside a network namespace this test creates (needs root).
//
// The device is opened in the root namespace and moved into brt-io-<pid> (the fd keeps
// working), so every packet stays inside the namespace: `ping` there sends echo requests into
// the TUN, this process reads them through the addon, writes crafted echo replies back, and
// ping must succeed. The namespace and devices are deleted in afterAll, also on failure.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BraidError } from '../../src/core/errors.ts';
import { nativeLoadError, tryLoadNative } from '../../src/io/native.ts';
import { openTun, type PacketBatch, type TunDevice } from '../../src/io/tun.ts';

const isRoot = process.getuid?.() === 0;
const native = tryLoadNative();
const skipReason = !isRoot
  ? 'needs root (creates a network namespace and a TUN device)'
  : !native
    ? `native addon missing: ${nativeLoadError()?.message}`
    : !existsSync('/dev/net/tun')
      ? 'no /dev/net/tun on this kernel'
      : undefined;
if (skipReason) console.warn(`skipping TUN tests: ${skipReason}`);

const NETNS = `brt-io-${process.pid}`;
const TUN_NAME = `brt-t${process.pid}`.slice(0, 15);
const TUN_NAME_2 = `brt-u${process.pid}`.slice(0, 15);
const LOCAL = '10.199.77.1';
const PEER = '10.199.77.2'; // the other end of the /30: routed into the TUN
const EXEC_TIMEOUT_MS = 10_000;

function run(
  command: string,
  args: readonly string[],
  timeoutMs = EXEC_TIMEOUT_MS,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function ipv4Text(packet: Uint8Array, offset: number): string {
  return `${packet[offset]}.${packet[offset + 1]}.${packet[offset + 2]}.${packet[offset + 3]}`;
}

function checksum(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i < end; i += 2) sum += (bytes[i] << 8) + (i + 1 < end ? bytes[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The echo reply a host at the request's destination would send back. */
function echoReplyFor(request: Uint8Array): Buffer {
  const reply = Buffer.from(request);
  const headerBytes = (reply[0] & 0x0f) * 4;
  const source = reply.subarray(12, 16);
  const destination = reply.subarray(16, 20);
  const swapped = Buffer.concat([destination, source]);
  swapped.copy(reply, 12);
  reply[8] = 64; // TTL
  reply.writeUInt16BE(0, 10);
  reply.writeUInt16BE(checksum(reply, 0, headerBytes), 10);
  reply[headerBytes] = 0; // ICMP echo reply
  reply.writeUInt16BE(0, headerBytes + 2);
  reply.writeUInt16BE(checksum(reply, headerBytes, reply.length), headerBytes + 2);
  return reply;
}

function isIcmpEchoRequest(packet: Uint8Array): boolean {
  return packet.length >= 28 && packet[0] >> 4 === 4 && packet[9] === 1 && packet[(packet[0] & 0x0f) * 4] === 8;
}

async function linkExists(name: string, netns?: string): Promise<boolean> {
  return (await run('ip', [...(netns ? ['-n', netns] : []), 'link', 'show', 'dev', name])).ok;
}

describe.skipIf(skipReason !== undefined)('TUN device (root, in netns brt-io-<pid>)', () => {
  const devices: TunDevice[] = [];

  beforeAll(async () => {
    const added = await run('ip', ['netns', 'add', NETNS]);
    if (!added.ok) throw new Error(`ip netns add ${NETNS}: ${added.stderr.trim()}`);
  });

  afterAll(async () => {
    for (const device of devices) device.close(); // closing the only fd deletes the device
    await run('ip', ['netns', 'del', NETNS]);
    // In case a device never made it into the namespace.
    for (const name of [TUN_NAME, TUN_NAME_2]) await run('ip', ['link', 'del', 'dev', name]);
  });

  it('reads ICMP echo requests from ping and answers them through the TUN', { timeout: 20_000 }, async () => {
    const tun = await openTun({ name: TUN_NAME, mtuBytes: 1400, addressCidr: `${LOCAL}/30`, netns: NETNS });
    devices.push(tun);
    expect(tun.name).toBe(TUN_NAME);
    expect(tun.mtuBytes).toBe(1400);
    const shown = await run('ip', ['-n', NETNS, '-o', 'addr', 'show', 'dev', TUN_NAME]);
    expect(shown.stdout).toContain(`${LOCAL}/30`);
    expect((await run('ip', ['-n', NETNS, 'link', 'show', 'dev', TUN_NAME])).stdout).toMatch(/mtu 1400/);

    const requests: { from: string; to: string; lengthBytes: number }[] = [];
    let repliesWritten = 0;
    tun.onPackets((batch: PacketBatch) => {
      for (let i = 0; i < batch.count; i++) {
        const packet = batch.packet(i);
        expect(packet.length).toBe(batch.lengthBytes(i));
        if (!isIcmpEchoRequest(packet)) continue; // IPv6 router solicitations and the like
        requests.push({ from: ipv4Text(packet, 12), to: ipv4Text(packet, 16), lengthBytes: packet.length });
        if (tun.write(echoReplyFor(packet))) repliesWritten++;
      }
    });

    const ping = await run('ip', ['netns', 'exec', NETNS, 'ping', '-n', '-c', '3', '-i', '0.2', '-W', '2', '-s', '56', PEER]);
    expect(ping.ok, `ping failed:\n${ping.stdout}${ping.stderr}`).toBe(true);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
    expect(requests.length).toBe(3);
    expect(requests.every((r) => r.from === LOCAL && r.to === PEER && r.lengthBytes === 84)).toBe(true);
    expect(repliesWritten).toBe(3);
    expect(tun.counters.rxPackets).toBeGreaterThanOrEqual(3);
    expect(tun.counters.txPackets).toBe(3);
  });

  it('reports a fatal read error when the device is deleted under it', { timeout: 15_000 }, async () => {
    const tun = await openTun({ name: TUN_NAME_2, mtuBytes: 1280, netns: NETNS });
    devices.push(tun);
    const errors: Error[] = [];
    tun.onError((error) => errors.push(error));
    tun.onPackets(() => undefined);
    expect((await run('ip', ['-n', NETNS, 'link', 'del', 'dev', TUN_NAME_2])).ok).toBe(true);
    const deadline = Date.now() + 5_000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(errors.length).toBe(1);
    expect((errors[0] as Error & { code?: string }).code).toMatch(/^EBAD/);
    // Writes to a dead device are per-packet failures: false and a counter, no throw.
    expect(tun.write(Buffer.alloc(28))).toBe(false);
    expect(tun.counters.txDropped).toBe(1);
    tun.close();
    tun.close();
  });

  it('fails with TUN_ADDRESS_FAILED and removes the device when addressing fails', async () => {
    const attempt = async (options: Parameters<typeof openTun>[0]): Promise<BraidError> => {
      try {
        const tun = await openTun(options);
        devices.push(tun);
      } catch (error) {
        return error as BraidError;
      }
      throw new Error('expected openTun to fail');
    };
    const badCidr = await attempt({ name: TUN_NAME_2, mtuBytes: 1400, addressCidr: '10.1.2.3' });
    expect(badCidr).toBeInstanceOf(BraidError);
    expect(badCidr.code).toBe('BRAID_TUN_ADDRESS_FAILED');
    expect(badCidr.message).toMatch(/is not ADDRESS\/PREFIX/);

    const noNetns = await attempt({ name: TUN_NAME_2, mtuBytes: 1400, netns: `${NETNS}-missing` });
    expect(noNetns.code).toBe('BRAID_TUN_ADDRESS_FAILED');
    expect(noNetns.message).toMatch(new RegExp(`^TUN ${TUN_NAME_2}: ip link set dev ${TUN_NAME_2} netns`));
    expect(noNetns.message.includes('\n')).toBe(false);
    expect(await linkExists(TUN_NAME_2)).toBe(false);

    const badMtu = await attempt({ name: TUN_NAME_2, mtuBytes: 10, netns: NETNS });
    expect(badMtu.code).toBe('BRAID_TUN_OPEN_FAILED');
    expect(badMtu.message).toMatch(/mtuBytes must be an integer in \[68, 65535\]/);
  });

  it.skipIf(!existsSync('/usr/bin/setpriv'))(
    'says "needs root or CAP_NET_ADMIN" without the capability',
    { timeout: 30_000 },
    async () => {
      const child = fileURLToPath(new URL('./helpers/open-tun-child.ts', import.meta.url));
      const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));
      // Root without CAP_NET_ADMIN: /dev/net/tun opens, TUNSETIFF is refused with EPERM.
      const result = await run(
        'setpriv',
        ['--bounding-set=-net_admin', process.execPath, runTs, child, TUN_NAME_2],
        25_000,
      );
      const outcome = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}') as {
        ok?: boolean;
        code?: string;
        osCode?: string;
        message?: string;
      };
      expect(outcome).toEqual({
        ok: false,
        code: 'BRAID_TUN_OPEN_FAILED',
        osCode: 'EPERM',
        message: `cannot open TUN ${TUN_NAME_2}: needs root or CAP_NET_ADMIN (ioctl(TUNSETIFF) ${TUN_NAME_2}: Operation not permitted (EPERM))`,
      });
    },
  );
});
