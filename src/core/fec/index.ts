/**
 * Reed-Solomon FEC per class (DESIGN.md "FEC"). Order of use:
 *   codec      createRsCodec(wasmBytes) (shell reads the bytes) or createGf256Codec()
 *   sender     FecEncoder per class: push -> stamp data, pollParity -> send parity, timers
 *   receiver   FecDecoder per peer session: onData / onParity -> recovered packets, timers
 *   control    AdaptiveParity per class: measured loss -> encoder.setM(m)
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
  requiredParity,
  type AdaptiveParityConfig,
  type AdaptiveParityInput,
} from './adaptive.ts';
export * from './limits.ts';
