/**
 * `cipher: auto` (issue 13): the shell's answer to "does this machine have AES instructions",
 * read from /proc/cpuinfo text as the kernel writes it on x86 and arm64, and the config's default.
 */
import { describe, expect, it } from 'vitest';
import { cpuinfoHasAes } from '../../src/io/cpu-features.ts';
import { parseConfigText } from '../../src/control/config.ts';
import { BraidError } from '../../src/core/errors.ts';

const X86_FLAGS = 'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx lm constant_tsc pni ssse3 cx16 sse4_1 sse4_2 popcnt';
const x86 = (extra: string): string => [0, 1].map((n) => `processor\t: ${n}\nvendor_id\t: GenuineIntel\nflags\t\t: ${X86_FLAGS} ${extra}\n`).join('\n');

describe('AES instructions from /proc/cpuinfo', () => {
  it('x86: aes (AES-NI) and pclmulqdq (GHASH) on every CPU', () => {
    expect(cpuinfoHasAes(x86('pclmulqdq aes xsave avx'))).toBe(true);
    expect(cpuinfoHasAes(x86('xsave avx'))).toBe(false);
    // AES-NI without carry-less multiply leaves GCM's GHASH slow: not enough for auto.
    expect(cpuinfoHasAes(x86('aes xsave'))).toBe(false);
    // A flag that merely contains the letters does not count.
    expect(cpuinfoHasAes(x86('vaes_like pclmulqdq'))).toBe(false);
  });

  it('arm64: Features with aes and pmull', () => {
    const arm = (features: string): string => `processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: ${features}\nCPU implementer\t: 0x41\n`;
    expect(cpuinfoHasAes(arm('fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics'))).toBe(true);
    expect(cpuinfoHasAes(arm('fp asimd evtstrm crc32'))).toBe(false);
  });

  it('no flags line at all (an unknown format) counts as no AES: ChaCha20 is the safe side', () => {
    expect(cpuinfoHasAes('')).toBe(false);
    expect(cpuinfoHasAes('processor : 0\nmodel name : something\n')).toBe(false);
  });
});

describe('cipher in the config', () => {
  const BASE = 'site: branch-1\ninsecurePlaintext: true\ntun: { address: 10.99.0.1/24 }\nlinks:\n  - { name: mpls, interface: eth1 }\npeers:\n  - name: hub\n    endpoints: { mpls: 192.0.2.20:51900 }\n';

  it('defaults to auto; the explicit ciphers are still accepted', () => {
    expect(parseConfigText(BASE, 'braid.yaml').cipher).toBe('auto');
    expect(parseConfigText(`${BASE}cipher: aes-256-gcm\n`, 'braid.yaml').cipher).toBe('aes-256-gcm');
    expect(parseConfigText(`${BASE}cipher: chacha20-poly1305\n`, 'braid.yaml').cipher).toBe('chacha20-poly1305');
  });

  it('an unknown cipher is one line naming the field and the choices', () => {
    let error: unknown;
    try {
      parseConfigText(`${BASE}cipher: aes-128-gcm\n`, 'braid.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BraidError);
    const line = (error as BraidError).oneLine();
    expect(line).toMatch(/cipher/);
    expect(line).toMatch(/auto/);
    expect(line).not.toMatch(/\n/);
  });
});
