/**
 * Peer-supplied text made safe for a terminal or a log (issue 14, finding 8). The hello carries
 * the peer's site and link names (up to 64 bytes each, any UTF-8); printed raw, an escape sequence
 * in them would drive the operator's terminal (retitle it, clear it, hide lines, fake output).
 *
 * sanitizeText replaces every character that is not plain printable text with a visible escape:
 *   C0 controls and DEL (ESC, BEL, CR, LF, TAB, ...)          -> \x1b, \x07, ...
 *   C1 controls U+0080..U+009F (8-bit CSI U+009B among them)  -> \x9b, ...
 *   bidi overrides and isolates, line/paragraph separators,
 *   zero-width and BOM characters (text that lies about itself) -> \u{202e}, ...
 * A backslash stays a backslash; everything else passes unchanged. Pure, no node:* imports.
 */

/** Characters that are not safe to print as they are. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/gu;

function escapeChar(c: string): string {
  const code = c.codePointAt(0)!;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
}

/** `text` with every unsafe character escaped visibly; at most `maxChars` characters of input kept. */
export function sanitizeText(text: string, maxChars = 256): string {
  const clipped = text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(clipped) ? clipped.replace(UNSAFE, escapeChar) : clipped;
}

/** Whether `text` would print as it is. */
export function isSafeText(text: string): boolean {
  UNSAFE.lastIndex = 0;
  return !UNSAFE.test(text);
}

/**
 * A deep copy of `value` with every string (values and keys) passed through sanitizeText, for
 * snapshots about to be shown. Byte arrays and other non-plain objects are kept as they are.
 */
export function sanitizeStrings<T>(value: T): T {
  return walk(value, 0) as T;
}

function walk(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return sanitizeText(value, 4096);
  if (value === null || typeof value !== 'object' || depth > 32) return value;
  if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1));
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[sanitizeText(k, 4096)] = walk(v, depth + 1);
  return out;
}

/**
 * JSON text (from JSON.stringify) with the characters JSON leaves raw but terminals act on (DEL,
 * C1 controls such as the 8-bit CSI, bidi and line separators) written as \uXXXX escapes: the
 * same JSON value, safe to print. JSON.stringify already escapes C0 controls.
 */
// eslint-disable-next-line no-control-regex
const JSON_UNSAFE = /[\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;
export function escapeJsonForTerminal(json: string): string {
  JSON_UNSAFE.lastIndex = 0;
  if (!JSON_UNSAFE.test(json)) return json;
  return json.replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
