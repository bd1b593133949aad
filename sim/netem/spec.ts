/**
 * netem impairment specs: the option syntax of `tc qdisc ... netem` (man tc-netem), parsed into a
 * typed NetemSpec, printed back, and turned into `tc` argv for boxes that have sch_netem.
 *
 *   parseNetemSpec('delay 30ms 5ms distribution normal loss gemodel 1% 20% rate 20mbit')
 *   formatNetemSpec(spec)                       -> canonical text that parses back to the same spec
 *   tcCommandLines('eth1', spec, {namespace})   -> [['tc', '-n', ns, 'qdisc', 'replace', ...]]
 *   await detectNetemBackend()                  -> 'tc' where the kernel has sch_netem, else 'userspace'
 *
 * The grammar follows iproute2's tc/q_netem.c, including its less obvious rules, so a spec that
 * works here works with real tc and means the same thing:
 * - options may be abbreviated to any prefix, matched in iproute2's order ("d" is delay, "l" limit);
 * - optional positional values (jitter, correlations, loss-model parameters, rate overheads) are
 *   taken only when the next token starts with a digit (a '-' too, for the signed overheads);
 * - times without a unit are microseconds (tc's get_time); slot times without a unit are
 *   nanoseconds (get_time64); percentages may omit the '%';
 * - rates follow tc's units: bit, kbit = 1000 bit, Kibit = 1024 bit, mbit, gbit, tbit, and the
 *   byte rates bps, kbps (kilobytes/s), mbps (megabytes/s)...; units are case-insensitive.
 * Stricter than tc: every option at most once (tc lets a later delay silently win), no hex or
 * octal numbers, no rate as a percentage of the device speed.
 */
import { execFile } from 'node:child_process';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';

export type DelayDistribution = 'uniform' | 'normal' | 'pareto' | 'paretonormal';
export const DELAY_DISTRIBUTIONS: readonly DelayDistribution[] = ['uniform', 'normal', 'pareto', 'paretonormal'];

export interface NetemDelay {
  /** Added to every packet (netem's mu). */
  delayMs: number;
  /**
   * Spread around delayMs (netem's sigma). Uniform: delay is uniform in delayMs +- jitterMs (std
   * jitterMs/sqrt 3). Table distributions: delayMs + jitterMs * table value (normal: std ~1).
   */
  jitterMs: number;
  /** Weight of the previous draw in the next one, 0..1 (netem's correlated random numbers). */
  correlationRatio: number;
  distribution: DelayDistribution;
}

/** Independent (or netem-correlated) loss: `loss [random] PERCENT [CORRELATION]`. */
export interface NetemRandomLoss {
  model: 'random';
  lossRatio: number;
  correlationRatio: number;
}

/**
 * The 4-state Markov model of Salsano et al. (netem's "GI" model): `loss state p13 [p31 [p32 [p23
 * [p14]]]]`. States: 1 good within a gap, 2 good within a burst, 3 lost within a burst, 4 an
 * isolated loss. Defaults as iproute2: p31 = 1 - p13, p32 = 0, p23 = 1, p14 = 0.
 */
export interface NetemStateLoss {
  model: 'state';
  p13Ratio: number;
  p31Ratio: number;
  p32Ratio: number;
  p23Ratio: number;
  p14Ratio: number;
}

/**
 * Gilbert-Elliott: `loss gemodel p [r [1-h [1-k]]]`. p: good -> bad, r: bad -> good, 1-h: loss
 * probability in the bad state, 1-k: in the good state. Defaults as current iproute2: r = 1 - p,
 * 1-h = 100%, 1-k = 0% (older tc defaulted r to 100%; we always print all four, see format).
 * With 1-h = 100% and 1-k = 0: loss ratio p / (p + r), mean burst length 1 / r.
 */
export interface NetemGeLoss {
  model: 'gemodel';
  pRatio: number;
  rRatio: number;
  oneMinusHRatio: number;
  oneMinusKRatio: number;
}

export type NetemLoss = NetemRandomLoss | NetemStateLoss | NetemGeLoss;

/** `duplicate PERCENT [CORRELATION]` and `corrupt PERCENT [CORRELATION]`. */
export interface NetemChance {
  ratio: number;
  correlationRatio: number;
}

/**
 * `reorder PERCENT [CORRELATION] [gap DISTANCE]`: after gapPackets - 1 delayed packets, each packet
 * is sent at once (without the delay) with probability ratio. gapPackets 1 (the default) means
 * any packet may be.
 */
export interface NetemReorder {
  ratio: number;
  correlationRatio: number;
  gapPackets: number;
}

/** `rate RATE [PACKETOVERHEAD [CELLSIZE [CELLOVERHEAD]]]`: serialization at a link's speed. */
export interface NetemRate {
  /** Bits per second. */
  rateBps: number;
  /** Added to each packet's length (may be negative, e.g. to strip a header). */
  packetOverheadBytes: number;
  /** 0: no cells. Otherwise the length is rounded up to whole cells (e.g. 48 for ATM). */
  cellSizeBytes: number;
  /** Added per cell (e.g. 5 for ATM's cell header). */
  cellOverheadBytes: number;
}

/** Limits per slot; 0 means no limit. */
interface NetemSlotLimits {
  maxPackets: number;
  maxBytes: number;
}

/**
 * `slot MIN_DELAY [MAX_DELAY] [packets N] [bytes N]`: packets leave only in bursts ("slots"),
 * the next slot opening a uniform MIN..MAX after the previous one (Wi-Fi/DOCSIS-like MACs).
 */
export interface NetemSlotRange extends NetemSlotLimits {
  kind: 'range';
  minDelayMs: number;
  maxDelayMs: number;
}

/** `slot distribution DIST DELAY JITTER [packets N] [bytes N]`. */
export interface NetemSlotDistribution extends NetemSlotLimits {
  kind: 'distribution';
  distribution: DelayDistribution;
  delayMs: number;
  jitterMs: number;
}

export type NetemSlot = NetemSlotRange | NetemSlotDistribution;

export interface NetemSpec {
  /** Packets netem holds at once; tc's default is 1000. */
  limitPackets: number;
  delay?: NetemDelay;
  loss?: NetemLoss;
  /** Mark ECN-capable packets CE instead of dropping them. */
  ecn: boolean;
  duplicate?: NetemChance;
  reorder?: NetemReorder;
  corrupt?: NetemChance;
  rate?: NetemRate;
  slot?: NetemSlot;
  /** tc's PRNG seed (unsigned 64-bit, decimal). The userspace engine uses its injected Rng instead. */
  seed?: string;
}

export const DEFAULT_LIMIT_PACKETS = 1000;

/** A spec that does nothing: what `tc qdisc add ... netem` with no options installs. */
export function emptyNetemSpec(): NetemSpec {
  return { limitPackets: DEFAULT_LIMIT_PACKETS, ecn: false };
}

/**
 * A spec that could not be parsed. `token` is the offending token ('' at end of input) and
 * `position` its character offset in `input`.
 */
export class NetemSpecError extends BraidError {
  readonly input: string;
  readonly token: string;
  readonly position: number;
  readonly expected: string;

  constructor(input: string, token: string, position: number, expected: string) {
    const where = token === '' ? 'at end of input' : `at token "${token}"`;
    super(ErrorCode.NETEM_SPEC_INVALID, `netem: "${input}": ${expected} ${where}`);
    this.name = 'NetemSpecError';
    this.input = input;
    this.token = token;
    this.position = position;
    this.expected = expected;
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

interface Token {
  text: string;
  pos: number;
}

type OptionName =
  | 'limit'
  | 'delay'
  | 'loss'
  | 'seed'
  | 'ecn'
  | 'reorder'
  | 'corrupt'
  | 'gap'
  | 'duplicate'
  | 'distribution'
  | 'rate'
  | 'slot';

/** iproute2's matching order; the first whose name starts with the token wins (tc's matches()). */
const OPTION_ALIASES: ReadonlyArray<readonly [string, OptionName]> = [
  ['limit', 'limit'],
  ['latency', 'delay'],
  ['delay', 'delay'],
  ['loss', 'loss'],
  ['drop', 'loss'],
  ['seed', 'seed'],
  ['ecn', 'ecn'],
  ['reorder', 'reorder'],
  ['corrupt', 'corrupt'],
  ['gap', 'gap'],
  ['duplicate', 'duplicate'],
  ['distribution', 'distribution'],
  ['rate', 'rate'],
  ['slot', 'slot'],
];

const EXPECT_OPTION =
  'expected an option: limit, delay, loss, duplicate, reorder, gap, corrupt, rate, slot, ecn, seed or distribution';
const EXPECT_TIME = 'expected a time like 10ms';
const EXPECT_PERCENT = 'expected a percentage like 1%';
const EXPECT_RATE = 'expected a rate like 20mbit';
const EXPECT_DIST = 'expected a distribution: uniform, normal, pareto or paretonormal';

/** tc's matches(): a non-empty prefix of the full word. */
function matches(token: string, word: string): boolean {
  return token.length > 0 && token.length <= word.length && word.startsWith(token);
}

const NUMBER_RE = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/;

/** Splits "10.5ms" into 10.5 and "ms"; undefined when there is no leading number. */
function splitNumber(text: string): { value: number; unit: string } | undefined {
  const m = NUMBER_RE.exec(text);
  if (m === null) return undefined;
  const value = Number(m[0]);
  if (!Number.isFinite(value)) return undefined;
  return { value, unit: text.slice(m[0].length) };
}

/** Units of get_time (delay, jitter): milliseconds per unit; bare numbers are microseconds. */
const TIME_UNITS_MS: ReadonlyMap<string, number> = new Map([
  ['', 0.001],
  ['s', 1000],
  ['sec', 1000],
  ['secs', 1000],
  ['ms', 1],
  ['msec', 1],
  ['msecs', 1],
  ['us', 0.001],
  ['usec', 0.001],
  ['usecs', 0.001],
]);

/** Units of get_time64 (slot): as get_time plus ns; bare numbers are nanoseconds. */
const TIME64_UNITS_MS: ReadonlyMap<string, number> = new Map([
  ...TIME_UNITS_MS,
  ['', 0.000001],
  ['ns', 0.000001],
  ['nsec', 0.000001],
  ['nsecs', 0.000001],
]);

/** tc's rate suffixes (tc_util.c), lower-cased because tc compares them case-insensitively. */
const RATE_UNITS_BPS: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['bit', 1],
  ['kibit', 1024],
  ['kbit', 1000],
  ['mibit', 1024 * 1024],
  ['mbit', 1e6],
  ['gibit', 1024 * 1024 * 1024],
  ['gbit', 1e9],
  ['tibit', 1024 * 1024 * 1024 * 1024],
  ['tbit', 1e12],
  ['bps', 8],
  ['kibps', 8 * 1024],
  ['kbps', 8000],
  ['mibps', 8 * 1024 * 1024],
  ['mbps', 8e6],
  ['gibps', 8 * 1024 * 1024 * 1024],
  ['gbps', 8e9],
  ['tibps', 8 * 1024 * 1024 * 1024 * 1024],
  ['tbps', 8e12],
]);

/** get_size's units (slot bytes): bytes per unit. */
const SIZE_UNITS_BYTES: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['b', 1],
  ['k', 1024],
  ['kb', 1024],
  ['m', 1024 * 1024],
  ['mb', 1024 * 1024],
  ['g', 1024 * 1024 * 1024],
  ['gb', 1024 * 1024 * 1024],
  ['kbit', 1024 / 8],
  ['mbit', (1024 * 1024) / 8],
  ['gbit', (1024 * 1024 * 1024) / 8],
]);

/** get_ticks refuses more than 2^32 - 1 microseconds. */
const MAX_TIME_MS = 4294967.295;
const U32_MAX = 4294967295;
const U64_MAX = (1n << 64n) - 1n;
const S32_MIN = -2147483648;
const S32_MAX = 2147483647;

class Parser {
  private readonly tokens: Token[] = [];
  private index = 0;

  constructor(private readonly input: string) {
    const re = /\S+/g;
    for (let m = re.exec(input); m !== null; m = re.exec(input)) this.tokens.push({ text: m[0], pos: m.index });
  }

  fail(token: Token | undefined, expected: string): never {
    if (token === undefined) throw new NetemSpecError(this.input, '', this.input.length, expected);
    throw new NetemSpecError(this.input, token.text, token.pos, expected);
  }

  peek(): Token | undefined {
    return this.tokens[this.index];
  }

  /** The next token, which must exist: `expected` names what should have been there. */
  take(expected: string): Token {
    const token = this.tokens[this.index];
    if (token === undefined) this.fail(undefined, expected);
    this.index++;
    return token;
  }

  /** tc's NEXT_IS_NUMBER(): optional positional values start with a digit. */
  nextIsNumber(): boolean {
    const t = this.peek();
    return t !== undefined && t.text.charCodeAt(0) >= 48 && t.text.charCodeAt(0) <= 57;
  }

  /** tc's NEXT_IS_SIGNED_NUMBER(). */
  nextIsSignedNumber(): boolean {
    const t = this.peek();
    return t !== undefined && (this.nextIsNumber() || t.text.startsWith('-'));
  }

  timeMs(expected: string, units: ReadonlyMap<string, number> = TIME_UNITS_MS): number {
    const token = this.take(expected);
    const n = splitNumber(token.text);
    const scale = n === undefined ? undefined : units.get(n.unit.toLowerCase());
    if (n === undefined || scale === undefined) this.fail(token, expected);
    const ms = n.value * scale;
    if (ms > MAX_TIME_MS) this.fail(token, `${expected} (at most 4294s)`);
    return ms;
  }

  /** A percentage, as written (0..100). */
  percent(expected: string = EXPECT_PERCENT): number {
    const token = this.take(expected);
    const n = splitNumber(token.text);
    if (n === undefined || (n.unit !== '' && n.unit !== '%')) this.fail(token, expected);
    if (n.value > 100) this.fail(token, 'expected a percentage from 0% to 100%');
    return n.value;
  }

  ratio(expected: string = EXPECT_PERCENT): number {
    return this.percent(expected) / 100;
  }

  rateBps(): number {
    const token = this.take(EXPECT_RATE);
    if (token.text.endsWith('%')) {
      this.fail(token, 'expected an absolute rate like 20mbit (a percentage of the device speed is not supported)');
    }
    const n = splitNumber(token.text);
    const scale = n === undefined ? undefined : RATE_UNITS_BPS.get(n.unit.toLowerCase());
    if (n === undefined || scale === undefined) this.fail(token, EXPECT_RATE);
    const bps = n.value * scale;
    // The kernel keeps bytes per second in a u64.
    if (bps >= 8 * 2 ** 64) this.fail(token, `${EXPECT_RATE} (below 2^64 bytes/s)`);
    return bps;
  }

  integer(expected: string, min: number, max: number): number {
    const token = this.take(expected);
    if (!/^-?\d+$/.test(token.text)) this.fail(token, expected);
    const value = Number(token.text);
    if (value < min || value > max) this.fail(token, `${expected} (${min} to ${max})`);
    return value === 0 ? 0 : value; // no -0
  }

  sizeBytes(expected: string): number {
    const token = this.take(expected);
    const n = splitNumber(token.text);
    const scale = n === undefined ? undefined : SIZE_UNITS_BYTES.get(n.unit.toLowerCase());
    if (n === undefined || scale === undefined) this.fail(token, expected);
    const bytes = Math.trunc(n.value * scale);
    if (bytes > S32_MAX) this.fail(token, `${expected} (at most ${S32_MAX} bytes)`);
    return bytes;
  }

  distribution(): DelayDistribution {
    const token = this.take(EXPECT_DIST);
    const d = DELAY_DISTRIBUTIONS.find((name) => name === token.text);
    if (d === undefined) this.fail(token, EXPECT_DIST);
    return d;
  }

  parse(): NetemSpec {
    const spec = emptyNetemSpec();
    const seen = new Map<OptionName, Token>();
    let distribution: DelayDistribution | undefined;
    let gapPackets: number | undefined;

    // A leading "netem" (as in "tc qdisc add dev x root netem ...") is allowed and ignored.
    if (this.peek()?.text === 'netem') this.index++;

    for (let token = this.peek(); token !== undefined; token = this.peek()) {
      this.index++;
      const option = OPTION_ALIASES.find(([word]) => matches(token.text, word))?.[1];
      if (option === undefined) this.fail(token, EXPECT_OPTION);
      const earlier = seen.get(option);
      if (earlier !== undefined) this.fail(token, `expected each option once, but "${option}" was already given`);
      seen.set(option, token);

      switch (option) {
        case 'limit':
          spec.limitPackets = this.integer('expected a packet count like 1000', 0, U32_MAX);
          break;
        case 'delay': {
          const delayMs = this.timeMs(EXPECT_TIME);
          let jitterMs = 0;
          let correlationRatio = 0;
          if (this.nextIsNumber()) {
            jitterMs = this.timeMs('expected a jitter time like 5ms');
            if (this.nextIsNumber()) correlationRatio = this.ratio('expected a correlation percentage like 25%');
          }
          spec.delay = { delayMs, jitterMs, correlationRatio, distribution: 'uniform' };
          break;
        }
        case 'distribution':
          distribution = this.distribution();
          break;
        case 'loss':
          spec.loss = this.loss();
          break;
        case 'ecn':
          spec.ecn = true;
          break;
        case 'duplicate':
          spec.duplicate = this.chance();
          break;
        case 'corrupt':
          spec.corrupt = this.chance();
          break;
        case 'reorder': {
          const { ratio, correlationRatio } = this.chance();
          spec.reorder = { ratio, correlationRatio, gapPackets: 1 };
          break;
        }
        case 'gap':
          gapPackets = this.integer('expected a packet count like 5', 0, U32_MAX);
          break;
        case 'rate':
          spec.rate = this.rate();
          break;
        case 'slot':
          spec.slot = this.slot();
          break;
        case 'seed': {
          const t = this.take('expected a seed like 42');
          if (!/^\d+$/.test(t.text) || BigInt(t.text) > U64_MAX) this.fail(t, 'expected a seed like 42 (0 to 2^64-1)');
          spec.seed = BigInt(t.text).toString();
          break;
        }
      }
    }

    // iproute2's cross-option checks, pointed at the option that cannot stand alone.
    if (distribution !== undefined) {
      if (spec.delay === undefined || spec.delay.delayMs === 0 || spec.delay.jitterMs === 0) {
        this.fail(seen.get('distribution'), 'expected a delay with jitter before a distribution, e.g. "delay 30ms 5ms distribution normal"');
      }
      spec.delay.distribution = distribution;
    }
    if (spec.reorder !== undefined) {
      if (spec.reorder.ratio > 0 && (spec.delay === undefined || spec.delay.delayMs === 0)) {
        this.fail(seen.get('reorder'), 'expected a delay with reorder (reordered packets skip the delay), e.g. "delay 10ms reorder 25%"');
      }
      if (gapPackets !== undefined) {
        if (spec.reorder.ratio === 0 && gapPackets > 0) this.fail(seen.get('gap'), 'expected a reorder percentage above 0% with gap');
        spec.reorder.gapPackets = Math.max(1, gapPackets);
      }
    } else if (gapPackets !== undefined && gapPackets > 0) {
      this.fail(seen.get('gap'), 'expected "reorder PERCENT" with gap, e.g. "delay 10ms reorder 25% gap 5"');
    }
    if (spec.ecn) {
      const loss = spec.loss;
      if (loss === undefined || (loss.model === 'random' && loss.lossRatio === 0)) {
        this.fail(seen.get('ecn'), 'expected a loss option with ecn (ecn marks instead of dropping)');
      }
    }
    return spec;
  }

  private chance(): NetemChance {
    const ratio = this.ratio();
    const correlationRatio = this.nextIsNumber() ? this.ratio('expected a correlation percentage like 25%') : 0;
    return { ratio, correlationRatio };
  }

  private loss(): NetemLoss {
    const expected = 'expected a loss percentage like 1%, or random, state or gemodel';
    const first = this.peek();
    if (first === undefined) this.fail(undefined, expected);
    if (/^\d/.test(first.text) || first.text === 'random') {
      if (first.text === 'random') this.index++;
      const lossRatio = this.ratio();
      const correlationRatio = this.nextIsNumber() ? this.ratio('expected a correlation percentage like 25%') : 0;
      return { model: 'random', lossRatio, correlationRatio };
    }
    this.index++;
    if (first.text === 'state') {
      const p13 = this.percent('expected a transition percentage p13 like 1%');
      // Complements from the percentages, so that each ratio is some decimal / 100 and prints exactly.
      const loss: NetemStateLoss = { model: 'state', p13Ratio: p13 / 100, p31Ratio: (100 - p13) / 100, p32Ratio: 0, p23Ratio: 1, p14Ratio: 0 };
      if (!this.nextIsNumber()) return loss;
      loss.p31Ratio = this.ratio();
      if (!this.nextIsNumber()) return loss;
      loss.p32Ratio = this.ratio();
      if (!this.nextIsNumber()) return loss;
      loss.p23Ratio = this.ratio();
      if (!this.nextIsNumber()) return loss;
      loss.p14Ratio = this.ratio();
      return loss;
    }
    if (first.text === 'gemodel') {
      const p = this.percent('expected a transition percentage p like 1%');
      const loss: NetemGeLoss = { model: 'gemodel', pRatio: p / 100, rRatio: (100 - p) / 100, oneMinusHRatio: 1, oneMinusKRatio: 0 };
      if (!this.nextIsNumber()) return loss;
      loss.rRatio = this.ratio();
      if (!this.nextIsNumber()) return loss;
      loss.oneMinusHRatio = this.ratio();
      if (!this.nextIsNumber()) return loss;
      loss.oneMinusKRatio = this.ratio();
      return loss;
    }
    return this.fail(first, expected);
  }

  private rate(): NetemRate {
    const rate: NetemRate = { rateBps: this.rateBps(), packetOverheadBytes: 0, cellSizeBytes: 0, cellOverheadBytes: 0 };
    if (this.nextIsSignedNumber()) rate.packetOverheadBytes = this.integer('expected a packet overhead in bytes like 14', S32_MIN, S32_MAX);
    if (this.nextIsNumber()) rate.cellSizeBytes = this.integer('expected a cell size in bytes like 48', 0, U32_MAX);
    if (this.nextIsSignedNumber()) rate.cellOverheadBytes = this.integer('expected a cell overhead in bytes like 5', S32_MIN, S32_MAX);
    return rate;
  }

  private slot(): NetemSlot {
    let slot: NetemSlot;
    if (this.nextIsNumber()) {
      const minDelayMs = this.timeMs(EXPECT_TIME, TIME64_UNITS_MS);
      let maxDelayMs = minDelayMs;
      if (this.nextIsNumber()) {
        const maxToken = this.peek();
        maxDelayMs = this.timeMs(EXPECT_TIME, TIME64_UNITS_MS);
        if (maxDelayMs < minDelayMs) this.fail(maxToken, 'expected a maximum slot delay not below the minimum');
      }
      slot = { kind: 'range', minDelayMs, maxDelayMs, maxPackets: 0, maxBytes: 0 };
    } else {
      const token = this.take('expected a slot time like 1ms, or "distribution"');
      if (token.text !== 'distribution') this.fail(token, 'expected a slot time like 1ms, or "distribution"');
      const distribution = this.distribution();
      const delayMs = this.timeMs(EXPECT_TIME, TIME64_UNITS_MS);
      const jitterToken = this.peek();
      const jitterMs = this.timeMs('expected a jitter time like 1ms', TIME64_UNITS_MS);
      if (jitterMs <= 0) this.fail(jitterToken, 'expected a slot jitter above 0');
      slot = { kind: 'distribution', distribution, delayMs, jitterMs, maxPackets: 0, maxBytes: 0 };
    }
    const packets = this.peek();
    if (packets !== undefined && matches(packets.text, 'packets')) {
      this.index++;
      slot.maxPackets = this.integer('expected a packet count like 32', 0, S32_MAX);
    }
    const bytes = this.peek();
    if (bytes !== undefined && matches(bytes.text, 'bytes')) {
      this.index++;
      slot.maxBytes = this.sizeBytes('expected a size like 64kb');
    }
    return slot;
  }
}

/** Parses netem options (with or without a leading "netem"). Throws NetemSpecError. */
export function parseNetemSpec(text: string): NetemSpec {
  return new Parser(text).parse();
}

// ---------------------------------------------------------------------------------------------
// Printing

/**
 * The shortest decimal (at most 17 significant digits) that `decode` maps back to exactly
 * `target`, so that printing then parsing gives the very same double.
 */
function shortestDecimal(value: number, target: number, decode: (text: string) => number): string | undefined {
  for (let digits = 1; digits <= 17; digits++) {
    // String() of the rounded number: plain notation ("30", not toPrecision's "3e+1") except for
    // magnitudes below 1e-6 or from 1e21, where tc's strtod reads the exponent just as well.
    const text = String(Number(value.toPrecision(digits)));
    if (decode(text) === target) return text;
  }
  // value = target * scale may have rounded away from the one double that decodes to target:
  // look at its neighbours.
  let down = value;
  let up = value;
  for (let step = 0; step < 8; step++) {
    down = nextDouble(down, -1);
    up = nextDouble(up, 1);
    for (const candidate of [down, up]) {
      const text = String(candidate);
      if (decode(text) === target) return text;
    }
  }
  return undefined;
}

const neighbour = new DataView(new ArrayBuffer(8));

/** The adjacent double towards +infinity (direction 1) or -infinity (-1); finite, non-negative x. */
function nextDouble(x: number, direction: 1 | -1): number {
  if (x === 0) return direction === 1 ? Number.MIN_VALUE : 0;
  neighbour.setFloat64(0, x);
  neighbour.setBigUint64(0, neighbour.getBigUint64(0) + BigInt(direction));
  return neighbour.getFloat64(0);
}

/** "1.500" -> "1.5", "2.0e+3" -> "2e+3"; keeps what tc's strtod and our parser both read. */
function trimNumber(text: string): string {
  const [mantissa = text, exponent] = text.split('e');
  const m = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
  return exponent === undefined ? m : `${m}e${exponent}`;
}

export function formatPercent(ratio: number): string {
  return `${shortestDecimal(ratio * 100, ratio, (t) => Number(t) / 100) ?? trimNumber((ratio * 100).toPrecision(17))}%`;
}

function significantDigits(text: string): number {
  return text.split('e')[0]!.replace(/[^0-9]/g, '').replace(/^0+/, '').length;
}

/**
 * `value` in the largest unit that reads back exactly in at most six significant digits ("1.5s",
 * "250us"); failing that, the shortest exact form in any unit.
 */
function formatWithUnits(value: number, units: ReadonlyArray<readonly [string, number]>, zero: string): string {
  if (value === 0) return zero;
  let best: string | undefined;
  for (const [unit, scale] of units) {
    if (value < scale && unit !== units[units.length - 1]![0]) continue;
    const text = shortestDecimal(value / scale, value, (t) => Number(t) * scale);
    if (text === undefined) continue;
    if (significantDigits(text) <= 6) return `${text}${unit}`;
    if (best === undefined || significantDigits(text) < significantDigits(best)) best = `${text}${unit}`;
  }
  return best ?? `${trimNumber(value.toPrecision(17))}${units.find(([, scale]) => scale === 1)![0]}`;
}

const TIME_FORMAT_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['s', 1000],
  ['ms', 1],
  ['us', 0.001],
];
const TIME64_FORMAT_UNITS: ReadonlyArray<readonly [string, number]> = [...TIME_FORMAT_UNITS, ['ns', 0.000001]];
const RATE_FORMAT_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['gbit', 1e9],
  ['mbit', 1e6],
  ['kbit', 1e3],
  ['bit', 1],
];

/** A time for tc: "30ms", "1.5s", "250us" (slot times may also use "ns"). */
export function formatTime(ms: number, units: 'time' | 'time64' = 'time'): string {
  return formatWithUnits(ms, units === 'time' ? TIME_FORMAT_UNITS : TIME64_FORMAT_UNITS, '0ms');
}

/** A rate for tc, in bits: "20mbit", "1.5gbit", "64kbit". */
export function formatRate(bps: number): string {
  return formatWithUnits(bps, RATE_FORMAT_UNITS, '0bit');
}

/** The spec as tc argv tokens, canonical order; loss models print every parameter. */
export function formatNetemTokens(spec: NetemSpec): string[] {
  const out: string[] = [];
  if (spec.limitPackets !== DEFAULT_LIMIT_PACKETS) out.push('limit', String(spec.limitPackets));
  const d = spec.delay;
  if (d !== undefined) {
    out.push('delay', formatTime(d.delayMs));
    if (d.jitterMs !== 0 || d.correlationRatio !== 0) {
      out.push(formatTime(d.jitterMs));
      if (d.correlationRatio !== 0) out.push(formatPercent(d.correlationRatio));
    }
    // "uniform" is netem's built-in default and has no .dist file: tc would fail to load it.
    if (d.distribution !== 'uniform') out.push('distribution', d.distribution);
  }
  const loss = spec.loss;
  if (loss !== undefined) {
    // Every parameter, always: default values changed between iproute2 releases (gemodel's r).
    switch (loss.model) {
      case 'random':
        out.push('loss', formatPercent(loss.lossRatio));
        if (loss.correlationRatio !== 0) out.push(formatPercent(loss.correlationRatio));
        break;
      case 'state':
        out.push('loss', 'state', ...[loss.p13Ratio, loss.p31Ratio, loss.p32Ratio, loss.p23Ratio, loss.p14Ratio].map(formatPercent));
        break;
      case 'gemodel':
        out.push('loss', 'gemodel', ...[loss.pRatio, loss.rRatio, loss.oneMinusHRatio, loss.oneMinusKRatio].map(formatPercent));
        break;
    }
  }
  if (spec.ecn) out.push('ecn');
  const chance = (name: string, c: NetemChance | undefined): void => {
    if (c === undefined) return;
    out.push(name, formatPercent(c.ratio));
    if (c.correlationRatio !== 0) out.push(formatPercent(c.correlationRatio));
  };
  chance('duplicate', spec.duplicate);
  chance('reorder', spec.reorder);
  if (spec.reorder !== undefined && spec.reorder.gapPackets > 1) out.push('gap', String(spec.reorder.gapPackets));
  chance('corrupt', spec.corrupt);
  const r = spec.rate;
  if (r !== undefined) {
    out.push('rate', formatRate(r.rateBps));
    if (r.packetOverheadBytes !== 0 || r.cellSizeBytes !== 0 || r.cellOverheadBytes !== 0) {
      out.push(String(r.packetOverheadBytes));
      if (r.cellSizeBytes !== 0 || r.cellOverheadBytes !== 0) {
        out.push(String(r.cellSizeBytes));
        if (r.cellOverheadBytes !== 0) out.push(String(r.cellOverheadBytes));
      }
    }
  }
  const s = spec.slot;
  if (s !== undefined) {
    if (s.kind === 'range') {
      out.push('slot', formatTime(s.minDelayMs, 'time64'));
      if (s.maxDelayMs !== s.minDelayMs) out.push(formatTime(s.maxDelayMs, 'time64'));
    } else {
      out.push('slot', 'distribution', s.distribution, formatTime(s.delayMs, 'time64'), formatTime(s.jitterMs, 'time64'));
    }
    if (s.maxPackets !== 0) out.push('packets', String(s.maxPackets));
    if (s.maxBytes !== 0) out.push('bytes', String(s.maxBytes));
  }
  if (spec.seed !== undefined) out.push('seed', spec.seed);
  return out;
}

/** The spec in tc syntax; parseNetemSpec(formatNetemSpec(s)) equals s for every parsed s. */
export function formatNetemSpec(spec: NetemSpec): string {
  return formatNetemTokens(spec).join(' ');
}

// ---------------------------------------------------------------------------------------------
// The tc backend's commands

export interface TcCommandOptions {
  /** Network namespace to run in (`tc -n NAME`); the default namespace when absent. */
  namespace?: string;
  /** Root qdisc handle, e.g. "1:". */
  handle?: string;
}

/**
 * The exact argv that installs (or replaces) `spec` as the root qdisc of `dev`. One command today;
 * a list so that callers can run setups that need several (e.g. ingress through ifb) the same way.
 */
export function tcCommandLines(dev: string, spec: NetemSpec, options: TcCommandOptions = {}): string[][] {
  // IFNAMSIZ is 16 with the NUL; the kernel refuses '/', ':' and whitespace in names.
  if (!/^[^\s/:]{1,15}$/.test(dev)) {
    throw new BraidError(ErrorCode.USAGE, `netem: interface name "${dev}" is not valid`, {
      fix: 'use 1-15 characters without spaces, "/" or ":"',
    });
  }
  const argv = ['tc'];
  if (options.namespace !== undefined) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.namespace)) {
      throw new BraidError(ErrorCode.USAGE, `netem: namespace name "${options.namespace}" is not valid`, {
        fix: 'use letters, digits, ".", "_" and "-"',
      });
    }
    argv.push('-n', options.namespace);
  }
  argv.push('qdisc', 'replace', 'dev', dev, 'root');
  if (options.handle !== undefined) {
    if (!/^[0-9a-fA-F]{1,4}:[0-9a-fA-F]{0,4}$/.test(options.handle)) {
      throw new BraidError(ErrorCode.USAGE, `netem: qdisc handle "${options.handle}" is not valid`, { fix: 'use MAJOR: like "1:"' });
    }
    argv.push('handle', options.handle);
  }
  argv.push('netem', ...formatNetemTokens(spec));
  return [argv];
}

// ---------------------------------------------------------------------------------------------
// Backend detection

export type NetemBackend = 'tc' | 'userspace';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program (no shell) and reports how it ended; never rejects for a non-zero exit. */
export type CommandRunner = (file: string, args: readonly string[]) => Promise<CommandResult>;

export const runCommand: CommandRunner = (file, args) =>
  new Promise((resolve) => {
    execFile(file, [...args], { timeout: 5000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ code: 0, stdout, stderr });
        return;
      }
      // ENOENT (no such program) and kills by the timeout have no numeric exit code.
      const code = typeof error.code === 'number' ? error.code : 127;
      resolve({ code, stdout, stderr: stderr || error.message });
    });
  });

export interface DetectOptions {
  run?: CommandRunner;
  /** Names the throwaway namespace `brt-probe-<pid>`. */
  pid?: number;
  /** Whether we may create namespaces and qdiscs; defaults to "running as root". */
  privileged?: boolean;
  /** Whether a process exists; decides which leftover probe namespaces are stale. */
  isAlive?: (pid: number) => boolean;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * 'tc' when `tc qdisc ... netem` works on this kernel, else 'userspace'.
 *
 * The only reliable test is to try: `modprobe -n sch_netem` is no answer in containers (no
 * /lib/modules, yet netem may be built in) nor on kernels built without it, and
 * /sys/module/sch_netem is absent until the module is loaded. So: create a throwaway namespace,
 * put netem on its loopback (always there, unlike the dummy driver, which may be missing too;
 * the kernel loads sch_netem on demand), and delete the namespace whatever happened. Without
 * root the tc backend cannot run at all, so the answer is 'userspace' without probing.
 */
export async function detectNetemBackend(options: DetectOptions = {}): Promise<NetemBackend> {
  const run = options.run ?? runCommand;
  const privileged = options.privileged ?? process.getuid?.() === 0;
  if (!privileged) return 'userspace';
  const pid = options.pid ?? process.pid;
  const ns = `brt-probe-${pid}`;
  // A probe killed between add and del (a crash, a closed stdout pipe) leaves its namespace:
  // remove those whose process is gone.
  const isAlive = options.isAlive ?? processAlive;
  const listed = await run('ip', ['netns', 'list']);
  for (const line of listed.stdout.split('\n')) {
    const stale = /^brt-probe-(\d+)(?:\s|$)/.exec(line.trim());
    if (stale !== null && Number(stale[1]) !== pid && !isAlive(Number(stale[1]))) await run('ip', ['netns', 'del', `brt-probe-${stale[1]}`]);
  }
  let created = (await run('ip', ['netns', 'add', ns])).code === 0;
  if (!created) {
    // A namespace left by a crashed run whose pid we now have: ours to remove.
    await run('ip', ['netns', 'del', ns]);
    created = (await run('ip', ['netns', 'add', ns])).code === 0;
  }
  if (!created) return 'userspace';
  try {
    const probe = await run('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']);
    return probe.code === 0 ? 'tc' : 'userspace';
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
}
