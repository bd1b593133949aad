/**
 * `classes.<name>.strategy: bond` (issue 17): accepted for the classes that may bond, off by
 * default, a bad value and voice each give one line naming the field, with the reason.
 */
import { describe, expect, it } from 'vitest';
import { classOverrides, classPolicies, parseConfigText } from '../../src/control/config.ts';
import { CLASS_NAMES } from '../../src/core/steer/classes.ts';
import { DEFAULT_QUEUE_POLICIES, EQUALIZE_QUEUE_MS, LinkScheduler, checkQueuePolicy, type ClassQueuePolicy } from '../../src/core/qos/index.ts';
import { BraidError } from '../../src/core/errors.ts';

const BASE = `
site: branch-1
insecurePlaintext: true
tun: { address: 10.99.0.1/24 }
links:
  - { name: mpls, interface: eth1, port: 51900 }
  - { name: inet, interface: eth2, port: 51901 }
peers:
  - name: hub
    endpoints: { mpls: 192.0.2.20:51900, inet: 198.51.100.7:51901 }
`;

function fails(text: string): BraidError {
  try {
    parseConfigText(text, 'braid.yaml');
  } catch (e) {
    if (e instanceof BraidError) return e;
    throw e;
  }
  throw new Error('the config was accepted');
}

describe('strategy: bond in the config', () => {
  it('is off by default: no class bonds', () => {
    const cfg = parseConfigText(BASE, 'braid.yaml');
    expect(classPolicies(cfg).filter((p) => p.strategy === 'bond')).toEqual([]);
  });

  it('bulk and default bond when the site opts in, with an optional delay gap', () => {
    const cfg = parseConfigText(`${BASE}classes:\n  bulk: { strategy: bond, bond: { maxDelayGapMs: 40 } }\n  default: { strategy: bond }\n`, 'braid.yaml');
    const p = classPolicies(cfg);
    expect(p.find((c) => c.name === 'bulk')).toMatchObject({ strategy: 'bond', bondMaxDelayGapMs: 40 });
    expect(p.find((c) => c.name === 'default')!.strategy).toBe('bond');
    expect(p.find((c) => c.name === 'default')!.bondMaxDelayGapMs).toBeUndefined();
  });

  it('bond.equalizeDelay reaches the class policy; off unless set', () => {
    const cfg = parseConfigText(`${BASE}classes:\n  bulk: { strategy: bond, bond: { equalizeDelay: true } }\n  default: { strategy: bond, bond: { maxDelayGapMs: 30 } }\n`, 'braid.yaml');
    const p = classPolicies(cfg);
    expect(p.find((c) => c.name === 'bulk')).toMatchObject({ strategy: 'bond', bondEqualizeDelay: true });
    expect(p.find((c) => c.name === 'bulk')!.bondMaxDelayGapMs).toBeUndefined();
    expect(p.find((c) => c.name === 'default')!.bondEqualizeDelay).toBeUndefined();
    expect(fails(`${BASE}classes:\n  bulk: { strategy: bond, bond: { equalizeDelay: yes please } }\n`).message).toMatch(/classes\.bulk\.bond\.equalizeDelay/);
  });

  it('an equalizing class gets a queue of EQUALIZE_QUEUE_MS unless its queue is configured (a real LinkScheduler takes that much)', () => {
    // What the Endpoint builds per shaped link: the defaults, then the config's overrides.
    const queuedMs = (yaml: string, name: 'bulk' | 'default'): number => {
      const { queues } = classOverrides(parseConfigText(`${BASE}${yaml}`, 'braid.yaml'));
      const classes: ClassQueuePolicy[] = CLASS_NAMES.map((n, i) => ({ ...DEFAULT_QUEUE_POLICIES[i]!, ...queues[n] }));
      classes.forEach((c, i) => checkQueuePolicy(c, CLASS_NAMES[i]!));
      const rateBps = 100e6;
      const s = new LinkScheduler<{ sizeBytes: number }>({ rateBps, classes }, 0);
      let n = 0;
      while (n < 20_000 && s.enqueue(0, CLASS_NAMES.indexOf(name), { sizeBytes: 1400 })) n++;
      return (n * 1400 * 8) / (rateBps / 1000);
    };
    const bond = 'classes:\n  bulk: { strategy: bond, bond: { equalizeDelay: true } }\n  default: { strategy: bond }\n';
    expect(queuedMs(bond, 'bulk')).toBeGreaterThan(EQUALIZE_QUEUE_MS - 2);
    expect(queuedMs(bond, 'bulk')).toBeLessThan(EQUALIZE_QUEUE_MS + 2);
    expect(queuedMs(bond, 'default')).toBeLessThan(102); // not equalizing: the 100 ms default
    // The operator's own bound wins.
    expect(queuedMs('classes:\n  bulk: { strategy: bond, bond: { equalizeDelay: true }, queue: { maxBytes: 1250000 } }\n', 'bulk')).toBeLessThan(101);
  });

  it('a bad strategy is one line naming the field and the values', () => {
    const e = fails(`${BASE}classes:\n  bulk: { strategy: bonded }\n`);
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.message).toMatch(/classes\.bulk\.strategy: expected best, balance, duplicate or bond, got "bonded"/);
  });

  it('voice may not bond, and the line says why', () => {
    const e = fails(`${BASE}classes:\n  voice: { strategy: bond }\n`);
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.message).toMatch(/classes\.voice\.strategy: voice may not bond: .*delay/);
    expect(e.fix).toMatch(/best or duplicate/);
  });

  it('control may not bond either', () => {
    const e = fails(`${BASE}classes:\n  control: { strategy: bond }\n`);
    expect(e.message).toMatch(/classes\.control\.strategy: control may not bond/);
  });

  it('a delay gap beyond the resequencing cap is refused', () => {
    const e = fails(`${BASE}classes:\n  bulk: { strategy: bond, bond: { maxDelayGapMs: 5000 } }\n`);
    expect(e.message).toMatch(/classes\.bulk\.bond\.maxDelayGapMs/);
  });
});
