/**
 * Every typed error Braid throws, with stable codes (undici's model). Per-packet problems never
 * throw: they are counted drops (see DropReason in core/types.ts). Setup and boundary failures
 * throw a BraidError; the CLI prints `braid: <message>` plus the fix, as one line, and exits 2
 * for configuration and usage errors, 1 for runtime failures.
 */
export const ErrorCode = {
  /** The configuration file is missing, unreadable, not YAML or fails the schema. */
  CONFIG_INVALID: 'BRAID_CONFIG_INVALID',
  /** A configured network interface does not exist on this box. */
  INTERFACE_MISSING: 'BRAID_INTERFACE_MISSING',
  /** The TUN device could not be created. */
  TUN_OPEN_FAILED: 'BRAID_TUN_OPEN_FAILED',
  /** The TUN opened but assigning its address or moving it to a namespace failed (the device is removed). */
  TUN_ADDRESS_FAILED: 'BRAID_TUN_ADDRESS_FAILED',
  /** A UDP socket for a link could not be opened or bound. */
  SOCKET_FAILED: 'BRAID_SOCKET_FAILED',
  /** The native addon is not built. */
  NATIVE_MISSING: 'BRAID_NATIVE_MISSING',
  /** A key file is missing or malformed. */
  KEY_INVALID: 'BRAID_KEY_INVALID',
  /** A command-line usage error. */
  USAGE: 'BRAID_USAGE',
  /** A netem impairment spec could not be parsed. */
  NETEM_SPEC_INVALID: 'BRAID_NETEM_SPEC_INVALID',
  /** A scenario file is invalid. */
  SCENARIO_INVALID: 'BRAID_SCENARIO_INVALID',
  /** Needs root / CAP_NET_ADMIN. */
  PERMISSION: 'BRAID_PERMISSION',
  /** The control socket is missing or nobody listens on it (`braid up` not running). */
  CONTROL_UNAVAILABLE: 'BRAID_CONTROL_UNAVAILABLE',
  /** An IP prefix is not ADDRESS/LENGTH, or has host bits set (core/routing/prefix.ts). */
  PREFIX_INVALID: 'BRAID_PREFIX_INVALID',
  /** The same prefix is given to two peers (longest match cannot choose). */
  PREFIX_CONFLICT: 'BRAID_PREFIX_CONFLICT',
  /** More prefixes than the routing table holds (MAX_ROUTE_PREFIXES). */
  PREFIX_LIMIT: 'BRAID_PREFIX_LIMIT',
  /** Installing or removing a kernel route into the TUN failed (io/routes.ts). */
  ROUTE_FAILED: 'BRAID_ROUTE_FAILED',
  /** The fleet registry (etcd) did not answer (`braid fleet`; `braid up` keeps running without it). */
  REGISTRY_UNAVAILABLE: 'BRAID_REGISTRY_UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes whose CLI exit status is 2 (usage/config); everything else exits 1. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.CONFIG_INVALID,
  ErrorCode.INTERFACE_MISSING,
  ErrorCode.KEY_INVALID,
  ErrorCode.USAGE,
  ErrorCode.NETEM_SPEC_INVALID,
  ErrorCode.SCENARIO_INVALID,
  ErrorCode.PREFIX_INVALID,
  ErrorCode.PREFIX_CONFLICT,
  ErrorCode.PREFIX_LIMIT,
]);

export class BraidError extends Error {
  readonly code: ErrorCode;
  /** What the operator should do about it, one short sentence. */
  readonly fix: string | undefined;
  /** Dotted path of the offending config field, when there is one (e.g. `links[1].interface`). */
  readonly field: string | undefined;
  /** The OS error behind a system-call failure, e.g. 'EADDRINUSE' (I/O shell errors). */
  readonly osCode: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { fix?: string; field?: string; osCode?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BraidError';
    this.code = code;
    this.fix = opts.fix;
    this.field = opts.field;
    this.osCode = opts.osCode;
  }

  get exitCode(): number {
    return USAGE_CODES.has(this.code) ? 2 : 1;
  }

  /** The one line the CLI prints. */
  oneLine(): string {
    return this.fix ? `${this.message}; fix: ${this.fix}` : this.message;
  }
}

export function isBraidError(e: unknown): e is BraidError {
  return e instanceof BraidError;
}
