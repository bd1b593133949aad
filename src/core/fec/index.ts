/**
 * Reed-Solomon FEC per class (DESIGN.md "FEC"). Order of use:
 *   codec      createRsCodec(wasmBytes) (shell reads the bytes) or createGf256Codec()
 *   sender     FecEncoder per class: push -> stamp data, pollParity -> send parity, timers
 *   receiver   FecDecoder per peer session: onData / onParity -> recovered packets, timers
 *   control    AdaptiveParity per class: measured loss -> encoder.setM(m), parityTable
 *   policy     ClassFecPolicy per class (policy.ts): k, m bounds, flush, target, parity placement
 */
export type { ErasureCodec } from './codec.ts';
export { createRsCodec, RsWasmSetupError, type RsWasmCodec } from './rs-wasm.ts';
export { createGf256Codec } from './gf256.ts';
export {
  FecEncoder,
  type FecEncoderConfig,
  type FecEncoderCounters,
  type FecParityShard,
  type FecStamp,
} from './encoder.ts';
export {
  FecDecoder,
  type FecDecoderConfig,
  type FecDecoderCounters,
  type FecParityFrame,
  type RecoveredPacket,
} from './decoder.ts';
export {
  AdaptiveParity,
  binomialTailAbove,
  effectiveLossRatio,
  parityTable,
  requiredParity,
  residualLossRatio,
  type ParityCriterion,
  type AdaptiveParityConfig,
  type AdaptiveParityInput,
} from './adaptive.ts';
export * from './limits.ts';
export { DEFAULT_FEC_POLICIES, checkFecPolicy, type ClassFecPolicy, type ParityPlacement } from './policy.ts';
