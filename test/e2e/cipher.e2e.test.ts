/**
 * End-to-end (root), issue 13: `cipher: auto`, the default. Two real `braid up` processes in
 * namespaces (one link): with both ends on this machine's CPU, the session uses AES-256-GCM when
 * the CPU has AES instructions (/proc/cpuinfo), else ChaCha20-Poly1305; with site b told by
 * BRAID_CPUINFO that its CPU has none, both ends use ChaCha20-Poly1305. Ping crosses each time.
 * Skipped with a printed reason when not root.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTwoSites, type TwoSites } from '../../sim/e2e.ts';
import { isRoot } from '../../sim/netns.ts';
import { hasAesInstructions } from '../../src/io/cpu-features.ts';

const ROOT = isRoot();
if (!ROOT) console.warn('SKIP test/e2e/cipher.e2e.test.ts: needs root (network namespaces, TUN); CI runs it as root');

const dir = mkdtempSync(join(tmpdir(), 'braid-cipher-'));
/** A CPU without AES instructions, as /proc/cpuinfo would show it (an old Atom: no aes, no pclmulqdq). */
const NO_AES_CPUINFO = join(dir, 'cpuinfo');
writeFileSync(NO_AES_CPUINFO, 'processor\t: 0\nmodel name\t: Intel(R) Atom(TM) CPU N270\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov sse sse2 ss ht tm pbe nx constant_tsc pni ssse3\n\n');

async function sessionCiphers(h: TwoSites): Promise<[string | undefined, string | undefined]> {
  const [a, b] = [await h.status('a'), await h.status('b')];
  return [a.session.cipher, b.session.cipher];
}

describe.skipIf(!ROOT)('end-to-end: cipher: auto', () => {
  const started: TwoSites[] = [];
  afterAll(async () => {
    for (const h of started) await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("both ends auto on this machine: AES-256-GCM when its CPU has AES instructions, and the log says so", async () => {
    const h = await startTwoSites({ tag: `ca${process.pid % 10000}`, links: ['wan'] });
    started.push(h);
    const ping = await h.topo.execIn('a', ['ping', '-c', '3', '-i', '0.2', '-W', '2', h.b.tunAddress]);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
    const expected = hasAesInstructions() ? 'aes-256-gcm' : 'chacha20-poly1305';
    expect(await sessionCiphers(h)).toEqual([expected, expected]);
    expect(h.a.output()).toMatch(/data cipher: auto/);
  }, 60_000);

  it('a side without AES instructions: both ends use ChaCha20-Poly1305', async () => {
    const h = await startTwoSites({ tag: `cb${process.pid % 10000}`, links: ['wan'], env: { b: { BRAID_CPUINFO: NO_AES_CPUINFO } } });
    started.push(h);
    const ping = await h.topo.execIn('a', ['ping', '-c', '3', '-i', '0.2', '-W', '2', h.b.tunAddress]);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
    expect(await sessionCiphers(h)).toEqual(['chacha20-poly1305', 'chacha20-poly1305']);
    expect(h.b.output()).toMatch(/no AES instructions here/);
  }, 60_000);

  it('explicit settings are honoured whatever the CPU: cipher: aes-256-gcm on both ends, one without AES instructions', async () => {
    const h = await startTwoSites({ tag: `cc${process.pid % 10000}`, links: ['wan'], env: { b: { BRAID_CPUINFO: NO_AES_CPUINFO } }, extraConfig: { cipher: 'aes-256-gcm' } });
    started.push(h);
    const ping = await h.topo.execIn('a', ['ping', '-c', '3', '-i', '0.2', '-W', '2', h.b.tunAddress]);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
    expect(await sessionCiphers(h)).toEqual(['aes-256-gcm', 'aes-256-gcm']);
  }, 60_000);
});
