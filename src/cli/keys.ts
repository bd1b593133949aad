/**
 * `braid keygen` and `braid pubkey`: X25519 keys as base64 text, like `wg genkey` / `wg pubkey`.
 *   braid keygen --out /etc/braid/private.key     (file created with mode 0600, never overwritten without --force;
 *                                                  never through a symlink; --force replaces by rename)
 * Loading a key (`braid up`, `braid check`) refuses a file with any group/other permission bits.
 *   braid keygen | braid pubkey                   (stdout / stdin, for scripts)
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { decodeKey, encodeKey, generatePrivate, publicFromPrivate } from '../core/crypto/keys.ts';
import { SystemRng } from '../io/clock.ts';

/** Create-only, never through a symlink, write-only (WireGuard's and ssh-keygen's habits). */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Writes `text` to a new file at `path`, mode 0600 from the first byte (fchmod too, so a loose
 * umask cannot widen it). O_EXCL refuses anything already at the path, a dangling symlink included.
 */
function writeExclusive(path: string, text: string): void {
  const fd = openSync(path, CREATE_FLAGS, 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function keyWriteError(path: string, e: unknown): BraidError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EEXIST') {
    return new BraidError(ErrorCode.USAGE, `keygen: ${path} already exists`, {
      fix: 'choose another path, or pass --force to replace the key (peers must then be given the new public key)',
    });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new BraidError(ErrorCode.PERMISSION, `keygen: cannot write ${path} (${code})`, { fix: 'run it as root, or choose a path you can write', osCode: code });
  }
  return new BraidError(ErrorCode.KEY_INVALID, `keygen: cannot write ${path} (${code ?? (e as Error).message})`, { fix: 'check the path', osCode: code });
}

export function runKeygen(outPath: string | undefined, force: boolean): number {
  const text = encodeKey(generatePrivate(new SystemRng())) + '\n';
  if (!outPath) {
    process.stdout.write(text);
    return 0;
  }
  if (!force) {
    try {
      writeExclusive(outPath, text);
    } catch (e) {
      throw keyWriteError(outPath, e);
    }
  } else {
    // Replace atomically: a fresh 0600 file beside it, renamed over the old name. rename() replaces
    // a symlink at the path itself, never its target, and whatever mode the old file had is gone.
    const tmp = join(dirname(outPath), `.${basename(outPath)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      writeExclusive(tmp, text);
      renameSync(tmp, outPath);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        // never created, or already renamed
      }
      throw keyWriteError(outPath, e);
    }
  }
  process.stderr.write(`wrote private key to ${outPath} (mode 0600); public key: ${encodeKey(publicFromPrivate(decodeKey(text.trim())!))}\n`);
  return 0;
}

export interface ReadKeyOptions {
  /**
   * Refuse a file that its group or others may read or write (default true). Like ssh, we refuse
   * rather than warn: `braid up` runs as a service whose warnings nobody reads, and a private key
   * other local users can read is the whole overlay's secrecy gone. The error names the fix.
   */
  requirePrivateMode?: boolean;
}

/** Reads a private key file (or text) and returns the 32 raw bytes, or a KEY_INVALID error naming the file. */
export function readPrivateKeyFile(path: string, field = 'privateKeyFile', options: ReadKeyOptions = {}): Uint8Array {
  let text: string;
  let modeBits: number;
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY);
    modeBits = fstatSync(fd).mode & 0o777; // of the file we read, symlinked or not
    text = readFileSync(fd, 'utf8');
  } catch (e) {
    throw new BraidError(ErrorCode.KEY_INVALID, `${field}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
      field,
      fix: 'create one with `braid keygen --out PATH` and check the path and permissions',
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if ((options.requirePrivateMode ?? true) && (modeBits & 0o077) !== 0) {
    throw new BraidError(
      ErrorCode.KEY_INVALID,
      `${field}: ${path} is readable or writable by others (mode 0${modeBits.toString(8)}); a private key must be 0600`,
      { field, fix: `chmod 600 ${path}` },
    );
  }
  const key = decodeKey(text.trim());
  if (!key) {
    throw new BraidError(ErrorCode.KEY_INVALID, `${field}: ${path} does not hold a base64 X25519 private key`, {
      field,
      fix: 'create one with `braid keygen --out PATH`',
    });
  }
  return key;
}

export async function runPubkey(path: string | undefined): Promise<number> {
  let text: string;
  if (path) {
    // Printing the public half is harmless whatever the file's mode (as `wg pubkey`).
    text = encodeKey(readPrivateKeyFile(path, 'pubkey', { requirePrivateMode: false }));
  } else {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    text = Buffer.concat(chunks).toString('utf8').trim();
  }
  const key = decodeKey(text);
  if (!key) throw new BraidError(ErrorCode.KEY_INVALID, 'pubkey: input is not a base64 X25519 private key', { fix: 'pipe the output of `braid keygen`, or pass the key file path' });
  process.stdout.write(encodeKey(publicFromPrivate(key)) + '\n');
  return 0;
}
