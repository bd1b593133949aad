/**
 * Wire decode cost per datagram: the hand-written fast decoders in src/core/wire/codec.ts against
 * protobufjs's generic decoder (what decodeEnvelope/decodeFrame ran before, and still run for
 * anything the fast path does not take) on the same bytes.
 *
 * Stages measured, in receive order:
 *   envelope      decodeEnvelope of a sealed data datagram (version, receiver, counter, sealed)
 *   data-200      decodeFrame of a 200-byte voice packet's Data frame (FEC-protected: group, index, k)
 *   data-1400     decodeFrame of a 1400-byte bulk packet's Data frame
 *   probe         decodeFrame of a Probe with its PathReport
 *   parity-200    decodeFrame of a FecParity frame for a 20-packet voice group
 *
 * Each figure is the median of REPS runs of N decodes (ns per decode); this box is shared, the
 * median resists neighbours. Run: node bin/run-ts.js bench/codec.ts, or `npm run bench -- codec`.
 * Last stdout lines: one JSON object per figure.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import protobuf from 'protobufjs';
import {
  decodeEnvelope,
  decodeEnvelopeStrict,
  decodeFrame,
  encodeDataDatagram,
  encodeFrame,
  parityFrameSize,
  writeParityFrame,
  writeDataFrame,
  dataFrameSize,
} from '../src/core/wire/codec.ts';
import { overlayDescriptor } from '../src/core/wire/descriptor.ts';

const REPS = 9;
const N = Number(process.env["CODEC_BENCH_N"] ?? 200_000);

// The reference decoder, as decodeEnvelope/decodeFrame used it before the fast path.
const root = protobuf.Root.fromJSON(overlayDescriptor as unknown as protobuf.INamespace);
const RefEnvelope = root.lookupType('braid.v1.Envelope');
const RefFrame = root.lookupType('braid.v1.Frame');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

let sink = 0;
/** ns per call of `fn(bytes)`, median of REPS runs of N calls after 3 warm-up runs. */
function measure(bytes: Uint8Array, fn: (b: Uint8Array) => unknown): number {
  const samples: number[] = [];
  for (let r = 0; r < REPS + 3; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) if (fn(bytes)) sink++;
    if (r >= 3) samples.push(Number(process.hrtime.bigint() - t0) / N);
  }
  return median(samples);
}

function dataFrame(bytes: number, fec: boolean): Uint8Array {
  const packet = new Uint8Array(bytes).fill(0x45);
  const out = new Uint8Array(dataFrameSize(2, 123_456, bytes, fec ? 0x1000_0abc : 0, fec ? 7 : 0, 0, fec ? 20 : 0));
  writeDataFrame(out, 0, 2, 123_456, packet, fec ? 0x1000_0abc : 0, fec ? 7 : 0, 0, fec ? 20 : 0);
  return out;
}

const cases: Array<{ name: string; bytes: Uint8Array; ref: (b: Uint8Array) => unknown; fast: (b: Uint8Array) => unknown }> = [
  {
    name: 'envelope',
    bytes: encodeDataDatagram(0x8a31_0c07, 1_234_567, 1, 99, new Uint8Array(1400)),
    ref: (b) => RefEnvelope.decode(b),
    fast: (b) => decodeEnvelope(b).ok,
  },
  { name: 'data-200', bytes: dataFrame(200, true), ref: (b) => RefFrame.decode(b), fast: (b) => decodeFrame(b).ok },
  { name: 'data-1400', bytes: dataFrame(1400, false), ref: (b) => RefFrame.decode(b), fast: (b) => decodeFrame(b).ok },
  {
    name: 'probe',
    bytes: encodeFrame({ kind: 'probe', probe: { link: 1, seq: 40_000, txUs: 1_732_000_000_123_456, dscp: 46, report: { received: 39_990, highestSeq: 40_001, jitterUs: 2150 }, epoch: 0x5eed_1234 } }),
    ref: (b) => RefFrame.decode(b),
    fast: (b) => decodeFrame(b).ok,
  },
  {
    name: 'parity-200',
    bytes: (() => {
      const f = { groupId: 0x1000_0abc, index: 21, k: 20, m: 3, lengths: [] as number[], checksum: 0xdead_beef, shard: new Uint8Array(200).fill(9) };
      const out = new Uint8Array(parityFrameSize(1, 555, f));
      writeParityFrame(out, 0, 1, 555, f);
      return out;
    })(),
    ref: (b) => RefFrame.decode(b),
    fast: (b) => decodeFrame(b).ok,
  },
];

interface Figure {
  bench: string;
  value: number;
  unit: string;
  peers?: Record<string, number>;
}
const figures: Figure[] = [];
const rows: string[] = [];
for (const c of cases) {
  const ref = measure(c.bytes, c.ref);
  const fast = measure(c.bytes, c.fast);
  process.stderr.write(`${c.name.padEnd(11)} ${c.bytes.length} bytes: protobufjs ${ref.toFixed(0)} ns, fast path ${fast.toFixed(0)} ns (${(ref / fast).toFixed(1)}x)\n`);
  figures.push({ bench: `codec-decode-${c.name}`, value: Math.round(fast), unit: 'ns', peers: { protobufjs: Math.round(ref) } });
  rows.push(`| ${c.name} | ${c.bytes.length} | ${ref.toFixed(0)} | ${fast.toFixed(0)} | ${(ref / fast).toFixed(1)}x |`);
}

// Issue 14 finding 6: a crafted 64 KB datagram that misses the fast decoder (32,760 unknown varint
// fields after a valid header). Before: decodeEnvelope handed it to protobufjs. The receive path
// now calls decodeEnvelopeStrict, which drops it on its size (and would drop any miss unparsed).
const crafted = (() => {
  const head = encodeDataDatagram(0x8a31_0c07, 1, 1, 1, new Uint8Array(0));
  const out = new Uint8Array(65_535);
  out.set(head);
  for (let i = head.length; i + 1 < out.length; i += 2) {
    out[i] = 0x30; // field 6, varint: unknown to the schema
    out[i + 1] = 0x01;
  }
  return out.subarray(0, head.length + 2 * Math.floor((out.length - head.length) / 2));
})();
const legit = encodeDataDatagram(0x8a31_0c07, 1_234_567, 1, 99, new Uint8Array(1400));
{
  const n = 300;
  const time = (bytes: Uint8Array, fn: (b: Uint8Array) => unknown, reps: number): number => {
    const samples: number[] = [];
    for (let r = 0; r < REPS + 3; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < reps; i++) if (fn(bytes)) sink++;
      if (r >= 3) samples.push(Number(process.hrtime.bigint() - t0) / reps);
    }
    return median(samples);
  };
  const before = time(crafted, (b) => decodeEnvelope(b).ok, n);
  const after = time(crafted, (b) => decodeEnvelopeStrict(b).ok, N);
  // A miss that fits the size cap: the strict path's whole cost is the fast reader giving up.
  const small = crafted.subarray(0, 1500);
  const smallBefore = time(small, (b) => decodeEnvelope(b).ok, N / 10);
  const smallAfter = time(small, (b) => decodeEnvelopeStrict(b).ok, N);
  const legitNs = time(legit, (b) => decodeEnvelopeStrict(b).ok, N);
  process.stderr.write(
    `crafted-64k ${crafted.length} bytes: decodeEnvelope (generic fallback) ${(before / 1000).toFixed(0)} us, decodeEnvelopeStrict ${after.toFixed(0)} ns\n` +
      `crafted-1500 ${small.length} bytes: decodeEnvelope ${(smallBefore / 1000).toFixed(1)} us, decodeEnvelopeStrict ${smallAfter.toFixed(0)} ns; legitimate 1400-byte data datagram (strict) ${legitNs.toFixed(0)} ns\n`,
  );
  figures.push({ bench: 'codec-crafted-64k-strict', value: Math.round(after), unit: 'ns', peers: { generic: Math.round(before) } });
  figures.push({ bench: 'codec-crafted-1500-strict', value: Math.round(smallAfter), unit: 'ns', peers: { generic: Math.round(smallBefore) } });
  rows.push(`| crafted 64 KB miss (receive path) | ${crafted.length} | ${before.toFixed(0)} | ${after.toFixed(0)} | ${(before / after).toFixed(0)}x |`);
  rows.push(`| crafted 1500-byte miss (receive path) | ${small.length} | ${smallBefore.toFixed(0)} | ${smallAfter.toFixed(0)} | ${(smallBefore / smallAfter).toFixed(0)}x |`);
}

const notesFile = process.env['BENCH_NOTES_FILE'];
if (notesFile) {
  writeFileSync(
    notesFile,
    [
      `Decode per call, median of ${REPS} runs of ${N.toLocaleString('en-US')} (${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0]!.toFixed(2)}).`,
      'The fast path includes decodeFrame\'s field checks; protobufjs is the bare Type.decode the codec ran before.',
      '',
      '| message | bytes | protobufjs ns | fast path ns | speed-up |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
      '',
    ].join('\n'),
  );
}
if (sink < 0) process.stderr.write('unreachable\n');
for (const f of figures) console.log(JSON.stringify(f));
