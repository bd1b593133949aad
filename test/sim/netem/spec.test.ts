import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  emptyNetemSpec,
  formatNetemSpec,
  NetemSpecError,
  parseNetemSpec,
  type NetemSpec,
} from '../../../sim/netem/spec.ts';
import { BraidError, ErrorCode } from '../../../src/core/errors.ts';

/** parse(format(parse(text))) must equal parse(text), and the canonical text must be stable. */
function expectRoundTrip(text: string): NetemSpec {
  const spec = parseNetemSpec(text);
  const canonical = formatNetemSpec(spec);
  expect(parseNetemSpec(canonical), `${text} -> ${canonical}`).toStrictEqual(spec);
  expect(formatNetemSpec(parseNetemSpec(canonical))).toBe(canonical);
  return spec;
}

function errorOf(text: string): NetemSpecError {
  try {
    parseNetemSpec(text);
  } catch (e) {
    if (e instanceof NetemSpecError) return e;
    throw e;
  }
  throw new Error(`"${text}" parsed, expected a NetemSpecError`);
}

describe('parseNetemSpec: every option', () => {
  it('parses the empty spec as tc does: limit 1000, nothing else', () => {
    expect(parseNetemSpec('')).toStrictEqual(emptyNetemSpec());
    expect(parseNetemSpec('  netem  ')).toStrictEqual({ limitPackets: 1000, ecn: false });
  });

  it('delay TIME [JITTER [CORRELATION]] [distribution D]', () => {
    expect(parseNetemSpec('delay 30ms').delay).toStrictEqual({ delayMs: 30, jitterMs: 0, correlationRatio: 0, distribution: 'uniform' });
    expect(parseNetemSpec('delay 30ms 5ms').delay).toStrictEqual({ delayMs: 30, jitterMs: 5, correlationRatio: 0, distribution: 'uniform' });
    expect(parseNetemSpec('delay 1.5s 250us 25%').delay).toStrictEqual({ delayMs: 1500, jitterMs: 0.25, correlationRatio: 0.25, distribution: 'uniform' });
    for (const d of ['uniform', 'normal', 'pareto', 'paretonormal'] as const) {
      expect(parseNetemSpec(`delay 100ms 10ms distribution ${d}`).delay?.distribution).toBe(d);
      expect(parseNetemSpec(`distribution ${d} delay 100ms 10ms`).delay?.distribution).toBe(d);
    }
  });

  it('reads times as tc does: bare numbers are microseconds, units case-insensitive', () => {
    expect(parseNetemSpec('delay 2500').delay?.delayMs).toBe(2.5);
    expect(parseNetemSpec('delay 2SEC').delay?.delayMs).toBe(2000);
    expect(parseNetemSpec('delay 3msecs').delay?.delayMs).toBe(3);
    expect(parseNetemSpec('delay 40usec').delay?.delayMs).toBe(0.04);
    expect(parseNetemSpec('delay .5ms').delay?.delayMs).toBe(0.5);
    expect(parseNetemSpec('latency 7ms').delay?.delayMs).toBe(7);
  });

  it('loss [random] PERCENT [CORRELATION]', () => {
    expect(parseNetemSpec('loss 1%').loss).toStrictEqual({ model: 'random', lossRatio: 0.01, correlationRatio: 0 });
    expect(parseNetemSpec('loss random 0.3% 25%').loss).toStrictEqual({ model: 'random', lossRatio: 0.003, correlationRatio: 0.25 });
    expect(parseNetemSpec('drop 2').loss).toStrictEqual({ model: 'random', lossRatio: 0.02, correlationRatio: 0 });
  });

  it('loss state p13 [p31 [p32 [p23 [p14]]]] with iproute2 defaults', () => {
    expect(parseNetemSpec('loss state 2%').loss).toStrictEqual({ model: 'state', p13Ratio: 0.02, p31Ratio: 0.98, p32Ratio: 0, p23Ratio: 1, p14Ratio: 0 });
    expect(parseNetemSpec('loss state 1% 30% 5% 20% 0.5%').loss).toStrictEqual({
      model: 'state',
      p13Ratio: 0.01,
      p31Ratio: 0.3,
      p32Ratio: 0.05,
      p23Ratio: 0.2,
      p14Ratio: 0.005,
    });
  });

  it('loss gemodel p [r [1-h [1-k]]] with current iproute2 defaults (r = 1 - p)', () => {
    expect(parseNetemSpec('loss gemodel 1%').loss).toStrictEqual({ model: 'gemodel', pRatio: 0.01, rRatio: 0.99, oneMinusHRatio: 1, oneMinusKRatio: 0 });
    expect(parseNetemSpec('loss gemodel 1% 20% 70% 0.1%').loss).toStrictEqual({
      model: 'gemodel',
      pRatio: 0.01,
      rRatio: 0.2,
      oneMinusHRatio: 0.7,
      oneMinusKRatio: 0.001,
    });
  });

  it('duplicate, corrupt, reorder with correlation and gap, ecn, limit, seed', () => {
    const s = parseNetemSpec('limit 50 delay 10ms loss 1% ecn duplicate 1% 10% corrupt 0.1% reorder 25% 50% gap 5 seed 18446744073709551615');
    expect(s.limitPackets).toBe(50);
    expect(s.ecn).toBe(true);
    expect(s.duplicate).toStrictEqual({ ratio: 0.01, correlationRatio: 0.1 });
    expect(s.corrupt).toStrictEqual({ ratio: 0.001, correlationRatio: 0 });
    expect(s.reorder).toStrictEqual({ ratio: 0.25, correlationRatio: 0.5, gapPackets: 5 });
    expect(s.seed).toBe('18446744073709551615');
    expect(parseNetemSpec('delay 10ms reorder 25%').reorder?.gapPackets).toBe(1);
  });

  it('rate RATE [PACKETOVERHEAD [CELLSIZE [CELLOVERHEAD]]] with tc units', () => {
    expect(parseNetemSpec('rate 20mbit').rate).toStrictEqual({ rateBps: 20e6, packetOverheadBytes: 0, cellSizeBytes: 0, cellOverheadBytes: 0 });
    expect(parseNetemSpec('rate 1mbit 40 48 5').rate).toStrictEqual({ rateBps: 1e6, packetOverheadBytes: 40, cellSizeBytes: 48, cellOverheadBytes: 5 });
    expect(parseNetemSpec('rate 100kbit -14').rate?.packetOverheadBytes).toBe(-14);
    const bps = (text: string): number | undefined => parseNetemSpec(`rate ${text}`).rate?.rateBps;
    expect(bps('1000')).toBe(1000);
    expect(bps('8bit')).toBe(8);
    expect(bps('1kbit')).toBe(1000);
    expect(bps('1Kibit')).toBe(1024);
    expect(bps('1mibit')).toBe(1048576);
    expect(bps('2gbit')).toBe(2e9);
    expect(bps('1tbit')).toBe(1e12);
    expect(bps('1bps')).toBe(8);
    expect(bps('1kbps')).toBe(8000);
    expect(bps('1mbps')).toBe(8e6); // megabytes per second, as in tc
    expect(bps('1MiBps')).toBe(8 * 1048576);
    expect(bps('1GBPS')).toBe(8e9);
  });

  it('slot MIN [MAX] [packets N] [bytes N] and slot distribution D DELAY JITTER', () => {
    expect(parseNetemSpec('slot 1ms').slot).toStrictEqual({ kind: 'range', minDelayMs: 1, maxDelayMs: 1, maxPackets: 0, maxBytes: 0 });
    expect(parseNetemSpec('slot 800us 1.2ms packets 32 bytes 64kb').slot).toStrictEqual({
      kind: 'range',
      minDelayMs: 0.8,
      maxDelayMs: 1.2,
      maxPackets: 32,
      maxBytes: 65536,
    });
    // get_time64: bare slot times are nanoseconds.
    expect(parseNetemSpec('slot 500000').slot).toMatchObject({ minDelayMs: 0.5 });
    expect(parseNetemSpec('slot distribution pareto 2ms 1ms packets 4').slot).toStrictEqual({
      kind: 'distribution',
      distribution: 'pareto',
      delayMs: 2,
      jitterMs: 1,
      maxPackets: 4,
      maxBytes: 0,
    });
  });

  it('accepts tc abbreviations in iproute2 order ("d" is delay, "l" is limit)', () => {
    expect(parseNetemSpec('d 10ms lo 1% du 1% r 5% c 1% ra 1mbit l 20 g 3')).toStrictEqual(
      parseNetemSpec('delay 10ms loss 1% duplicate 1% reorder 5% corrupt 1% rate 1mbit limit 20 gap 3'),
    );
  });
});

describe('formatNetemSpec: round trips', () => {
  const texts = [
    '',
    'limit 0',
    'limit 100000',
    'delay 0ms',
    'delay 30ms',
    'delay 30ms 5ms',
    'delay 10ms 0ms 25%',
    'delay 100ms 20ms 25% distribution normal',
    'delay 100ms 20ms distribution pareto',
    'delay 100ms 20ms distribution paretonormal',
    'delay 1.5s 250us',
    'delay 2500',
    'delay 0.1us',
    'delay 1.234567ms 3.3333us',
    'loss 0%',
    'loss 100%',
    'loss random 0.05%',
    'loss 12.5% 33.3%',
    'loss 0.0001%',
    'loss state 1%',
    'loss state 1% 30% 5% 20% 0.5%',
    'loss gemodel 1%',
    'loss gemodel 1% 20%',
    'loss gemodel 0.25% 50% 100% 0%',
    'loss gemodel 1% 20% 70% 0.1% ecn',
    'duplicate 1%',
    'duplicate 1% 50%',
    'corrupt 0.1% 5%',
    'delay 10ms reorder 25%',
    'delay 10ms reorder 25% 50% gap 5',
    'delay 10ms reorder 0%',
    'rate 20mbit',
    'rate 1.5gbit',
    'rate 1Kibit',
    'rate 1.5Mibit -4 48 5',
    'rate 1mbps',
    'rate 123456789bit 0 0 -3',
    'rate 33.3kbit 0 53',
    'slot 1ms',
    'slot 1ms 3ms packets 10 bytes 64kb',
    'slot 123ns',
    'slot distribution normal 2ms 1ms bytes 1500',
    'seed 007',
    'delay 30ms 5ms distribution normal loss gemodel 1% 20% rate 20mbit',
    'limit 500 delay 300ms 15ms distribution normal loss gemodel 0.25% 50% 100% 0% rate 3mbit 40 48 5 duplicate 0.5% corrupt 0.01% slot 1ms',
  ];
  for (const text of texts) {
    it(`"${text}"`, () => {
      expectRoundTrip(text);
    });
  }

  it('prints canonical tc text', () => {
    expect(formatNetemSpec(parseNetemSpec('d 30000 5000 distribution normal lo gemodel 1% 20% rate 20000000'))).toBe(
      'delay 30ms 5ms distribution normal loss gemodel 1% 20% 100% 0% rate 20mbit',
    );
    expect(formatNetemSpec(parseNetemSpec('loss state 1%'))).toBe('loss state 1% 99% 0% 100% 0%');
    expect(formatNetemSpec(parseNetemSpec('delay 1500ms 0.5ms 10% distribution uniform'))).toBe('delay 1.5s 500us 10%');
    expect(formatNetemSpec(parseNetemSpec('limit 1000 delay 10ms reorder 25% gap 1'))).toBe('delay 10ms reorder 25%');
    expect(formatNetemSpec(parseNetemSpec('rate 1Kibit 0 48'))).toBe('rate 1.024kbit 0 48');
  });

  it('property: any spec built from valid option texts survives format and parse unchanged', () => {
    const percent = fc.oneof(
      fc.integer({ min: 0, max: 100 }).map((n) => `${n}%`),
      fc.integer({ min: 0, max: 100_000 }).map((n) => `${n / 1000}%`),
      fc.double({ min: 0, max: 100, noNaN: true }).filter((x) => x === 0 || x >= 1e-9).map((x) => `${x}`),
    );
    // Times from whole nanoseconds up to ~4000 s, written in every unit tc reads.
    const timeIn = (min: number) =>
      fc.tuple(fc.integer({ min, max: 4_000_000_000 }), fc.constantFrom('ms', 's', 'us', 'bare')).map(([ns, u]) =>
        u === 's' ? `${ns / 1e9}s` : u === 'ms' ? `${ns / 1e6}ms` : u === 'us' ? `${ns / 1e3}us` : `${Math.floor(ns / 1000)}`,
      );
    const time = timeIn(0);
    const positiveTime = timeIn(1000);
    const rate = fc.tuple(fc.double({ min: 1, max: 1e4, noNaN: true }), fc.constantFrom('bit', 'kbit', 'Kibit', 'mbit', 'gbit', 'bps', 'mbps')).map(
      ([v, u]) => `${v}${u}`,
    );
    const option = fc.oneof(
      fc.integer({ min: 0, max: 100_000 }).map((n) => `limit ${n}`),
      fc.tuple(percent, fc.option(percent)).map(([p, c]) => `loss ${p}${c === null ? '' : ` ${c}`}`),
      fc.array(percent, { minLength: 1, maxLength: 5 }).map((ps) => `loss state ${ps.join(' ')}`),
      fc.array(percent, { minLength: 1, maxLength: 4 }).map((ps) => `loss gemodel ${ps.join(' ')}`),
      fc.tuple(percent, fc.option(percent)).map(([p, c]) => `duplicate ${p}${c === null ? '' : ` ${c}`}`),
      fc.tuple(percent, fc.option(percent)).map(([p, c]) => `corrupt ${p}${c === null ? '' : ` ${c}`}`),
      fc
        .tuple(rate, fc.integer({ min: -100, max: 100 }), fc.integer({ min: 0, max: 100 }), fc.integer({ min: -10, max: 10 }), fc.integer({ min: 0, max: 3 }))
        .map(([r, overhead, cell, cellOverhead, extras]) => ['rate', r, overhead, cell, cellOverhead].slice(0, 2 + extras).join(' ')),
      fc.tuple(time, fc.option(fc.integer({ min: 1, max: 64 }))).map(([t, p]) => `slot ${t}${p === null ? '' : ` packets ${p}`}`),
    );
    const delay = fc.option(
      fc
        .tuple(positiveTime, positiveTime, fc.option(percent), fc.constantFrom('uniform', 'normal', 'pareto', 'paretonormal'), fc.option(fc.tuple(percent, fc.integer({ min: 1, max: 10 }))))
        .map(([d, j, c, dist, reorder]) =>
          [`delay ${d} ${j}${c === null ? '' : ` ${c}`} distribution ${dist}`, reorder === null || parseFloat(reorder[0]) === 0 ? '' : `reorder ${reorder[0]} gap ${reorder[1]}`].join(' '),
        ),
    );
    const specText = fc.tuple(delay, fc.uniqueArray(option, { maxLength: 6, selector: (o) => o.split(' ')[0]! })).map(([d, opts]) =>
      [d ?? '', ...opts].join(' ').trim(),
    );
    fc.assert(
      fc.property(specText, (text) => {
        expectRoundTrip(text);
      }),
      { numRuns: 400 },
    );
  });
});

describe('parseNetemSpec: errors name the token and what was expected', () => {
  const cases: Array<[string, string, string]> = [
    ['delay 10xs', '10xs', 'expected a time like 10ms'],
    ['delay', '', 'expected a time like 10ms'],
    ['delay 10ms 5qs', '5qs', 'expected a jitter time like 5ms'],
    ['delay 10ms 5ms 150%', '150%', 'expected a percentage from 0% to 100%'],
    ['delay 5000s', '5000s', 'at most 4294s'],
    ['delya 10ms', 'delya', 'expected an option'],
    ['delay 10ms delay 20ms', 'delay', 'already given'],
    ['loss', '', 'expected a loss percentage like 1%, or random, state or gemodel'],
    ['loss sometimes', 'sometimes', 'expected a loss percentage'],
    ['loss 1x', '1x', 'expected a percentage like 1%'],
    ['loss 1% loss 2%', 'loss', 'already given'],
    ['loss state', '', 'expected a transition percentage p13'],
    ['loss gemodel abc', 'abc', 'expected a transition percentage p'],
    ['rate', '', 'expected a rate like 20mbit'],
    ['rate fast', 'fast', 'expected a rate like 20mbit'],
    ['rate 10mbitz', '10mbitz', 'expected a rate like 20mbit'],
    ['rate 10%', '10%', 'a percentage of the device speed is not supported'],
    ['rate 1mbit 1.5', '1.5', 'expected a packet overhead in bytes'],
    ['rate 1e300tbit', '1e300tbit', 'below 2^64 bytes/s'],
    ['limit lots', 'lots', 'expected a packet count like 1000'],
    ['limit -1', '-1', 'expected a packet count like 1000'],
    ['distribution gaussian', 'gaussian', 'expected a distribution: uniform, normal, pareto or paretonormal'],
    ['distribution normal', 'distribution', 'expected a delay with jitter before a distribution'],
    ['delay 10ms distribution normal', 'distribution', 'expected a delay with jitter'],
    ['reorder 25%', 'reorder', 'expected a delay with reorder'],
    ['delay 10ms gap 5', 'gap', 'expected "reorder PERCENT" with gap'],
    ['ecn delay 10ms', 'ecn', 'expected a loss option with ecn'],
    ['slot', '', 'expected a slot time like 1ms, or "distribution"'],
    ['slot often', 'often', 'expected a slot time like 1ms'],
    ['slot 3ms 1ms', '1ms', 'expected a maximum slot delay not below the minimum'],
    ['slot distribution normal 1ms 0ms', '0ms', 'expected a slot jitter above 0'],
    ['slot 1ms packets many', 'many', 'expected a packet count like 32'],
    ['seed -1', '-1', 'expected a seed like 42'],
    ['seed 18446744073709551616', '18446744073709551616', 'expected a seed like 42 (0 to 2^64-1)'],
    ['delay 10ms .5ms', '.5ms', 'expected an option'], // tc takes optional values only when they start with a digit
  ];
  for (const [text, token, expected] of cases) {
    it(`"${text}"`, () => {
      const e = errorOf(text);
      expect(e.token).toBe(token);
      expect(e.message).toContain(expected);
      expect(e.message).toContain(token === '' ? 'at end of input' : `at token "${token}"`);
      expect(e.message.startsWith(`netem: "${text}": `)).toBe(true);
      expect(e.position).toBe(token === '' ? text.length : text.lastIndexOf(token));
      expect(text.slice(e.position).startsWith(token)).toBe(true);
      expect(e).toBeInstanceOf(BraidError);
      expect(e.code).toBe(ErrorCode.NETEM_SPEC_INVALID);
    });
  }

  it('gives the message from the issue, verbatim', () => {
    expect(errorOf('delay 10xs').message).toBe('netem: "delay 10xs": expected a time like 10ms at token "10xs"');
  });

  it('property: random token soup parses or throws a NetemSpecError that points into the input, never anything else', () => {
    const vocabulary = [
      'netem', 'limit', 'delay', 'latency', 'loss', 'drop', 'random', 'state', 'gemodel', 'duplicate', 'reorder', 'gap',
      'corrupt', 'rate', 'slot', 'packets', 'bytes', 'ecn', 'seed', 'distribution', 'uniform', 'normal', 'pareto',
      'paretonormal', 'd', 'l', 'r', 'c', 's', '10ms', '5ms', '1s', '250us', '100', '0', '-1', '-14', '1%', '25%', '100%',
      '150%', '20mbit', '1Kibit', '5mbps', '1e3', '1e400', '1e300tbit', '9e99s', '.5', '0x10', 'NaN', 'Infinity', '%', '', '1ms2', '18446744073709551616',
    ];
    const token = fc.oneof(fc.constantFrom(...vocabulary), fc.string({ maxLength: 6 }), fc.stringMatching(/^[0-9.]{1,5}(ms|%|mbit|us|)$/));
    const soup = fc.tuple(fc.array(token, { maxLength: 14 }), fc.constantFrom(' ', '  ', '\t', ' \n ')).map(([ts, sep]) => ts.join(sep));
    fc.assert(
      fc.property(soup, (text) => {
        try {
          const spec = parseNetemSpec(text);
          // Whatever parsed must print and parse back to itself.
          expect(parseNetemSpec(formatNetemSpec(spec))).toStrictEqual(spec);
        } catch (e) {
          if (!(e instanceof NetemSpecError)) throw e;
          expect(e.position).toBeGreaterThanOrEqual(0);
          expect(e.position).toBeLessThanOrEqual(text.length);
          expect(text.slice(e.position).startsWith(e.token)).toBe(true);
          expect(e.message).toContain(e.token === '' ? 'at end of input' : `at token "${e.token}"`);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
