/**
 * `braid keygen` and `braid pubkey`: X25519 keys as base64 text, like `wg genkey` / `wg pubkey`.
 *   braid keygen --out /etc/braid/private.key     (file created with mode 0600, never overwritten without --force)
 *   braid keygen | braid pubkey                   (stdout / stdin, for scripts)
 */
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { decodeKey, encodeKey, generatePrivate, publicFromPrivate } from '../core/crypto/keys.ts';
import { SystemRng } from '../io/clock.ts';

export function runKeygen(outPath: string | undefined, force: boolean): number {
  const text = encodeKey(generatePrivate(new SystemRng())) + '\n';
  if (!outPath) {
    process.stdout.write(text);
    return 0;
  }
  if (existsSync(outPath) && !force) {
    throw new BraidError(ErrorCode.USAGE, `keygen: ${outPath} already exists`, { fix: 'choose another path, or pass --force to replace the key (peers must then be given the new public key)' });
  }
  // Create with 0600 from the start: never a moment where the key is world-readable.
  const fd = openSync(outPath, force ? 'w' : 'wx', 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  process.stderr.write(`wrote private key to ${outPath} (mode 0600); public key: ${encodeKey(publicFromPrivate(decodeKey(text.trim())!))}\n`);
  return 0;
}

/** Reads a private key file (or text) and returns the 32 raw bytes, or a KEY_INVALID error naming the file. */
export function readPrivateKeyFile(path: string, field = 'privateKeyFile'): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new BraidError(ErrorCode.KEY_INVALID, `${field}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
      field,
      fix: 'create one with `braid keygen --out PATH` and check the path and permissions',
    });
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
    text = encodeKey(readPrivateKeyFile(path, 'pubkey'));
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
