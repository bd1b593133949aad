// OS error helpers of the I/O shell: names for errno values and for the codes node and the addon
// attach to system-call failures. The errors the shell throws are BraidErrors (core/errors.ts,
// the one file of error codes); per-packet problems never throw, they are dropped and counted.
import { constants } from 'node:os';

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
