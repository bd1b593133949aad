// The Linux kernel as the reference parser for src/core/inner/icmp-too-big.ts (root only): in a
// brt- namespace, the ICMP Frag Needed (IPv4) and Packet Too Big (IPv6) we build, written into a
// TUN, must be accepted by the kernel's ICMP code (checksums, pseudo-header, quoting) and lower
// the route's PMTU to the announced MTU for the socket that sent the quoted packet; the same
// message with one byte changed must be rejected as a checksum error. Likewise the kernel must
// answer a SYN whose MSS we clamped (a wrong TCP checksum gets no SYN-ACK) and reassemble the
// IPv4 fragments we cut. The namespace (and the TUNs in it) is deleted in afterAll, also on failure.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryLoadNative } from '../../src/io/native.ts';

const isRoot = process.getuid?.() === 0;
const ready = isRoot && tryLoadNative() !== undefined && existsSync('/dev/net/tun');
if (!ready) console.warn('skipping the kernel ICMP test: needs root, the addon and /dev/net/tun');
const NETNS = `brt-tb-${process.pid}`;
const child = fileURLToPath(new URL('./helpers/too-big-child.ts', import.meta.url));
const runTs = fileURLToPath(new URL('../../bin/run-ts.js', import.meta.url));

function run(command: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 20_000 }, (error, stdout, stderr) => resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr) }));
  });
}

interface Seen {
  mtu: string;
  csumErrors: number;
}

describe.skipIf(!ready)('too-big messages, MSS clamp and fragments, as the kernel reads them (root)', () => {
  beforeAll(async () => {
    await run('ip', ['netns', 'del', NETNS]);
    const r = await run('ip', ['netns', 'add', NETNS]);
    if (!r.ok) throw new Error(r.stderr);
    await run('ip', ['-n', NETNS, 'link', 'set', 'lo', 'up']);
  });
  afterAll(async () => {
    await run('ip', ['netns', 'del', NETNS]);
  });

  for (const family of ['4', '6'] as const) {
    it(`IPv${family}: a broken checksum is rejected, ours lowers the PMTU to the announced MTU`, async () => {
      const r = await run('ip', ['netns', 'exec', NETNS, process.execPath, runTs, child, `brt-tb${family}`, family]);
      expect(r.ok, r.stderr).toBe(true);
      const seen = JSON.parse(r.stdout.trim()) as { before: Seen; afterBroken: Seen; afterGood: Seen; announcedMtu: number };
      expect(seen.before.mtu).toBe('none');
      expect(seen.afterBroken.mtu).toBe('none');
      expect(seen.afterBroken.csumErrors).toBe(seen.before.csumErrors + 1);
      expect(seen.afterGood.mtu).toBe(String(seen.announcedMtu));
      expect(seen.afterGood.csumErrors).toBe(seen.afterBroken.csumErrors);
    });

    it(`IPv${family}: the kernel answers a SYN whose MSS we clamped (its TCP checksum holds)`, async () => {
      const r = await run('ip', ['netns', 'exec', NETNS, process.execPath, runTs, child, `brt-ts${family}`, family, 'mss']);
      expect(r.ok, r.stderr).toBe(true);
      expect(JSON.parse(r.stdout.trim())).toEqual({ clamped: true, mss: 1200, synAck: true });
    });
  }

  it('IPv4: the kernel reassembles our inner fragments (written last first) into the datagram', async () => {
    const r = await run('ip', ['netns', 'exec', NETNS, process.execPath, runTs, child, 'brt-tf4', '4', 'frag']);
    expect(r.ok, r.stderr).toBe(true);
    expect(JSON.parse(r.stdout.trim())).toEqual({ fragments: 3, received: 2972, intact: true });
  });
});
