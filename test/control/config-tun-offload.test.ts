// tun.offload: auto (default) or off, refused otherwise with the field and what it expected.
import { describe, expect, it } from 'vitest';
import { BraidError } from '../../src/core/errors.ts';
import { parseConfigText } from '../../src/control/config.ts';

const config = (offloadLine: string): string =>
  `site: a\ninsecurePlaintext: true\ntun:\n  address: 10.0.0.1/30\n${offloadLine}links:\n  - name: x\n    interface: lo\npeers:\n  - name: b\n    endpoints:\n      x: 127.0.0.1:51900\n`;

describe('config tun.offload', () => {
  it('defaults to auto and takes off', () => {
    expect(parseConfigText(config(''), 't').tun.offload).toBe('auto');
    expect(parseConfigText(config('  offload: auto\n'), 't').tun.offload).toBe('auto');
    expect(parseConfigText(config('  offload: off\n'), 't').tun.offload).toBe('off');
  });

  it('refuses anything else, naming the field and the two values', () => {
    for (const bad of ['on', 'true', '"yes"', '1']) {
      let error: unknown;
      try {
        parseConfigText(config(`  offload: ${bad}\n`), 't');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(BraidError);
      const message = (error as BraidError).message;
      expect(message).toContain('tun.offload');
      expect(message).toContain('expected "auto" (TUN offloads when the kernel has them) or "off"');
    }
  });
});
