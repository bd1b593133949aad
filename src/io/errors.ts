// Typed setup/boundary errors of the I/O shell, with stable codes (DESIGN.md section 2).
// Per-packet problems never become these: they are dropped and counted.
import { constants } from 'node:os';

// TODO(shared errors file): fold these codes into the project-wide errors module once it exists.

export type IoErrorCode =
  /** The native addon is not built or does not load (run `npm ci` / `npm rebuild`). */
  | 'NATIVE_MISSING'
  /** Opening or configuring the TUN device failed (permissions, no /dev/net/tun, busy). */
  | 'TUN_OPEN_FAILED'
  /** The TUN opened but assigning its address or moving it to a namespace failed. */
  | 'TUN_ADDRESS_FAILED'
  /** Opening, configuring or binding a UDP socket failed. */
  | 'UDP_OPEN_FAILED';

export interface IoErrorOptions {
  /** The OS error name behind it, e.g. 'EPERM', when there is one. */
  readonly osCode?: string;
  readonly cause?: unknown;
}

/** One clear line: what failed, why, and the fix where we know it. */
export class IoError extends Error {
  readonly code: IoErrorCode;
  readonly osCode: string | undefined;

  constructor(code: IoErrorCode, message: string, options: IoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IoError';
    this.code = code;
    this.osCode = options.osCode;
  }
}

/** The shape of errors thrown by the addon and by node's own system calls. */
export interface SystemErrorLike {
  readonly code?: unknown;
  readonly message: string;
  readonly syscall?: unknown;
}

export function isSystemError(value: unknown): value is SystemErrorLike & Error {
  return value instanceof Error && typeof (value as SystemErrorLike).code === 'string';
}

/** 'EPERM' from a system error, or undefined. */
export function osCodeOf(value: unknown): string | undefined {
  if (!isSystemError(value)) return undefined;
  const code = value.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

// Reverse of os.constants.errno, built once (EAGAIN and EWOULDBLOCK share 11: first wins).
const ERRNO_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!ERRNO_NAMES.has(value)) ERRNO_NAMES.set(value, name);
}

/** Errno number (positive, as the addon returns it negated) -> 'EAGAIN', for counters. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E#${errno}`;
}
