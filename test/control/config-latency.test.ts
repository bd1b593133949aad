// latency.keepWarm: auto (default) or off, refused otherwise with the field and what it expected.
import { describe, expect, it } from 'vitest';
import { BraidError } from '../../src/core/errors.ts';
import { parseConfigText } from '../../src/control/config.ts';

const config = (latency: string): string =>
  `site: a\ninsecurePlaintext: true\ntun:\n  address: 10.0.0.1/30\n${latency}links:\n  - name: x\n    interface: lo\npeers:\n  - name: b\n    endpoints:\n      x: 127.0.0.1:51900\n`;

describe('config latency.keepWarm', () => {
  it('defaults to auto and takes off', () => {
    expect(parseConfigText(config(''), 't').latency.keepWarm).toBe('auto');
    expect(parseConfigText(config('latency: {}\n'), 't').latency.keepWarm).toBe('auto');
    expect(parseConfigText(config('latency:\n  keepWarm: off\n'), 't').latency.keepWarm).toBe('off');
  });

  it('refuses anything else and unknown keys, naming the field', () => {
    for (const [bad, says] of [
      ['latency:\n  keepWarm: on\n', 'expected "auto" (keep the data path warm while the tunnel is in use) or "off"'],
      ['latency:\n  keepWarm: false\n', 'expected "auto"'],
      ['latency:\n  keepwarm: off\n', 'keepwarm'],
    ] as const) {
      let error: unknown;
      try {
        parseConfigText(config(bad), 't');
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(BraidError);
      const message = (error as BraidError).message;
      expect(message).toContain('latency');
      expect(message).toContain(says);
    }
  });
});
