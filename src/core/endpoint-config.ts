/**
 * What an Endpoint is built from (endpoint.ts): the site, its links, its peers and the settings
 * every peer shares. The shell makes it from the YAML config (src/cli/up.ts edgeConfigFrom); the
 * simulator from its World description.
 */
import type { CipherSetting } from './crypto/cipher-choice.ts';
import type { AeadFactory } from './crypto/transport.ts';
import type { ErasureCodec } from './fec/codec.ts';
import type { ClassFecPolicy } from './fec/policy.ts';
import type { ClassQueuePolicy } from './qos/policy.ts';
import type { ClassName, ClassPolicy } from './steer/classes.ts';
import type { DscpTrustPolicy } from './steer/dscp-trust.ts';
import type { RuleSpec } from './steer/rules.ts';
import type { LinkConfig, PeerConfig } from './types.ts';

export interface EndpointCryptoConfig {
  privateKey: Uint8Array;
  /** Wall-clock ms since the epoch at nowMs = 0: only for the handshake's anti-replay timestamp. */
  wallClockEpochMs: number;
  /** The data cipher, or 'auto' (default): AES-256-GCM when both ends have AES instructions (crypto/cipher-choice.ts). */
  cipher?: CipherSetting;
  /** This machine has AES instructions (the shell reads the CPU's flags; default false). */
  aesAccelerated?: boolean;
  /** Who seals and opens data packets (the shell passes the native addon's when it loads). */
  aead?: AeadFactory;
  /**
   * The shell's datagram buffers are scratch (its receive slabs: nothing reads a datagram after
   * handleDatagram and the pollDelivery drain that follows): data packets are decrypted over their
   * ciphertext, with no allocation (SessionManagerOptions.openInPlace). Default false.
   */
  openInPlace?: boolean;
}

export interface EndpointConfig {
  site: string;
  /** Local links; the index is the link id on the wire (ours) and in Transmit.linkId. */
  links: LinkConfig[];
  peers: PeerConfig[];
  probeIntervalMs?: number;
  /**
   * The site's role in a hub-and-spokes fleet (peer-idle.ts): on idle paths between a hub and a
   * spoke the hub is the one prober, so it paces its own probes evenly over the slow interval.
   * Unset: no preference, as before (the larger start epoch yields).
   */
  role?: 'hub' | 'spoke';
  /**
   * A peer with no data either way for this long probes once a second, one side per path
   * (peer-idle.ts). Default PEER_IDLE_AFTER_MS (15 s); 0 = always probe at probeIntervalMs.
   */
  idleProbeAfterMs?: number;
  /** Nothing heard for this long: path DOWN. Default 3 probe intervals. */
  deadAfterMs?: number;
  holdDownProbes?: number;
  flapDamping?: boolean;
  flowIdleTimeoutMs?: number;
  /** Flow table cap per peer. */
  maxFlows?: number;
  /** Class policies by class id (CLASS_NAMES order); defaults from RFC 4594 / DESIGN.md. */
  policies?: readonly ClassPolicy[];
  /** Noise IK keys; without them the overlay runs in plaintext (benchmarks, old tests). */
  crypto?: EndpointCryptoConfig;
  fec?: Partial<Record<ClassName, Partial<ClassFecPolicy>>>;
  queues?: Partial<Record<ClassName, Partial<ClassQueuePolicy>>>;
  /** Reed-Solomon codec; default the pure TypeScript one (faster here than the wasm build: bench/fec.ts). */
  fecCodec?: ErasureCodec;
  /** Largest overlay datagram the links carry without IP fragmentation (default 1472). */
  maxDatagramBytes?: number;
  /** Largest link MTU (bytes): received datagrams over it (plus slack) are dropped unread. Default 1500. */
  linkMtuBytes?: number;
  /** Application rules (steer/rules.ts), first match wins; unmatched packets are classified by DSCP. */
  rules?: readonly RuleSpec[];
  /** Trust boundary for LAN-marked DSCP (steer/dscp-trust.ts); default: control and voice capped. */
  dscpTrust?: DscpTrustPolicy;
}
