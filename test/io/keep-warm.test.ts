/**
 * Keep-warm (src/io/keep-warm.ts): the real start warm-up pair pulses each tick only while the
 * real edge's inner traffic is recent and did not pass since the last tick; idle edges and busy
 * ones pay nothing but the timer. Fake timers drive the ticks; the pulses go through the real pair
 * (its deliveries are the proof a pulse ran the data path).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { edgeConfigFrom } from '../../src/cli/up.ts';
import { parseConfigText } from '../../src/control/config.ts';
import { generateKeyPair } from '../../src/core/crypto/keys.ts';
import { SystemRng } from '../../src/io/clock.ts';
import { nativeAeadFactory } from '../../src/io/native-aead.ts';
import { warmUpDataPath, type DataPathWarmer } from '../../src/io/jit-warmup.ts';
import { KEEP_WARM_ACTIVE_MS, KeepWarm } from '../../src/io/keep-warm.ts';
import { readFileSync } from 'node:fs';
import { formatStatusText } from '../../src/cli/status.ts';
import type { EdgeStatus } from '../../src/control/control-socket.ts';
import { failoverSnapshot } from '../ui/fixtures.ts';
import { checkSchema } from '../cli/json-schema.ts';

const CONFIG = `
site: branch-1
privateKeyFile: /nonexistent/key
tun: { address: 10.99.0.1/24 }
links:
  - { name: mpls, interface: brt-none0, port: 51900 }
  - { name: inet, interface: brt-none1, port: 51901 }
peers:
  - name: hub
    publicKey: ${Buffer.from(generateKeyPair(new SystemRng()).publicKey).toString('base64')}
    endpoints: { mpls: 192.0.2.20:51900, inet: 198.51.100.7:51901 }
`;

let warmer: DataPathWarmer;
let clockMs = 0;
let inner = 0;

function pair(): DataPathWarmer {
  const cfg = parseConfigText(CONFIG, 'braid.yaml');
  return warmUpDataPath(edgeConfigFrom(cfg, generateKeyPair(new SystemRng()).privateKey, nativeAeadFactory()?.factory, true)).warmer;
}

/** Advances the fake timers and the injected clock together, 1 ms at a time. */
function advance(ms: number, everyMs?: (t: number) => void): void {
  for (let t = 0; t < ms; t++) {
    clockMs += 1;
    everyMs?.(t);
    vi.advanceTimersByTime(1);
  }
}

describe('keep-warm', () => {
  beforeEach(() => {
    warmer = pair(); // real timers: the warm-up reads the wall clock for its budget
    vi.useFakeTimers();
    clockMs = 0;
    inner = 0;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('does nothing on an edge that has carried no inner packet', () => {
    const kw = new KeepWarm(warmer, () => inner, { now: () => clockMs });
    kw.start();
    const delivered = warmer.delivered;
    advance(5000);
    expect(kw.stats()).toEqual({ pulses: 0, busyMs: 0, active: false });
    expect(warmer.delivered).toBe(delivered);
    kw.stop();
  });

  it('after an inner packet it pulses about once per ms, each pulse one packet through the pair, then stops when traffic has been gone for the active window', () => {
    const kw = new KeepWarm(warmer, () => inner, { now: () => clockMs });
    kw.start();
    inner = 1; // one ping
    advance(300); // the idle poll (250 ms) notices it
    expect(kw.stats().active).toBe(true);
    const delivered = warmer.delivered;
    const pulses = kw.stats().pulses;
    advance(1000);
    const ran = kw.stats().pulses - pulses;
    expect(ran).toBeGreaterThan(900);
    expect(ran).toBeLessThanOrEqual(1000);
    expect(warmer.delivered - delivered).toBe(ran); // every pulse delivered its packet
    advance(KEEP_WARM_ACTIVE_MS);
    expect(kw.stats().active).toBe(false);
    const stopped = kw.stats().pulses;
    advance(2000);
    expect(kw.stats().pulses).toBe(stopped);
    kw.stop();
  });

  it('a tick that finds real traffic since the last one does not pulse (a busy tunnel pays only the timer)', () => {
    const kw = new KeepWarm(warmer, () => inner, { now: () => clockMs });
    kw.start();
    inner = 1;
    advance(300);
    const pulses = kw.stats().pulses;
    advance(2000, () => inner++); // a packet every ms
    expect(kw.stats().pulses).toBe(pulses);
    expect(kw.stats().active).toBe(true);
    kw.stop();
  });

  it('sparse traffic keeps it active past the window; stop() ends it', () => {
    const kw = new KeepWarm(warmer, () => inner, { now: () => clockMs });
    kw.start();
    advance(2 * KEEP_WARM_ACTIVE_MS, (t) => {
      if (t % 1000 === 0) inner++; // a ping a second
    });
    expect(kw.stats().active).toBe(true);
    kw.stop();
    const pulses = kw.stats().pulses;
    advance(100);
    expect(kw.stats().pulses).toBe(pulses);
  });

  it('braid status shows it (text and --json, schema-checked)', () => {
    const schema = JSON.parse(readFileSync(new URL('../../docs/status-schema.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    const on: EdgeStatus = { ...failoverSnapshot(), keepWarm: { enabled: true, active: true, pulses: 12345, busyMs: 493.8 } };
    const checked = checkSchema(schema, { version: 1, status: on });
    expect(checked.errors).toEqual([]);
    expect(checked.undocumented).toEqual([]);
    expect(formatStatusText(on)).toMatch(/\n {2}keep-warm: active: 12,345 pulses, 0\.5 s of CPU so far\n/);
    const off: EdgeStatus = { ...failoverSnapshot(), keepWarm: { enabled: false, active: false, pulses: 0, busyMs: 0 } };
    expect(formatStatusText(off)).toMatch(/\n {2}keep-warm: off\n/);
    expect(formatStatusText(failoverSnapshot())).not.toMatch(/keep-warm/);
  });

  it('/metrics exports its pulses and their time, and 0 without it', async () => {
    const { BraidMetrics } = await import('../../src/control/metrics.ts');
    const { parseExposition } = await import('../control/prom-text.ts');
    const status = (): EdgeStatus => ({ ...failoverSnapshot(), keepWarm: { enabled: true, active: true, pulses: 4321, busyMs: 1500 } });
    vi.useRealTimers(); // the render yields between slices on real timers
    const m = parseExposition(await new BraidMetrics(status).render());
    expect(m.value('braid_keepwarm_pulses_total', { site: 'branch-1' })).toBe(4321);
    expect(m.value('braid_keepwarm_seconds_total', { site: 'branch-1' })).toBe(1.5);
    expect(m.types.get('braid_keepwarm_pulses_total')).toBe('counter');
    const none = parseExposition(await new BraidMetrics(failoverSnapshot).render());
    expect(none.value('braid_keepwarm_pulses_total', { site: 'branch-1' }) ?? 0).toBe(0);
  });
});
