/** Issue 14 finding 8: peer-supplied strings never reach a terminal or a log raw. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeJsonForTerminal, isSafeText, sanitizeStrings, sanitizeText } from '../../src/core/sanitize.ts';

/** Anything a terminal acts on: C0, DEL, C1, bidi controls, line separators. */
// eslint-disable-next-line no-control-regex
const TERMINAL_ACTIVE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

describe('sanitizeText', () => {
  it('escapes terminal escape sequences visibly and keeps ordinary text', () => {
    expect(sanitizeText('mpls')).toBe('mpls');
    expect(sanitizeText('branch-1 Zürich 東京')).toBe('branch-1 Zürich 東京');
    expect(sanitizeText('\x1b]0;pwned\x07\x1b[2J')).toBe('\\x1b]0;pwned\\x07\\x1b[2J');
    expect(sanitizeText('a\u009b31mb')).toBe('a\\x9b31mb');
    expect(sanitizeText('evil\u202egnp.exe')).toBe('evil\\u{202e}gnp.exe');
    expect(sanitizeText('line\r\nfake: up')).toBe('line\\x0d\\x0afake: up');
    expect(sanitizeText('x'.repeat(300))).toHaveLength(257);
  });

  it('leaves nothing a terminal acts on, for any input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
        const out = sanitizeText(s);
        expect(TERMINAL_ACTIVE.test(out)).toBe(false);
        expect(isSafeText(out)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('sanitizes every string of a snapshot, keys included, without touching the original', () => {
    const snap = { site: 'a', peers: [{ site: '\x1b[31mred' }], links: [{ peerLinkName: 'x\x07' }], n: 3, ok: true, nothing: null, bytes: new Uint8Array([27]) };
    const out = sanitizeStrings(snap);
    expect(out).toEqual({ site: 'a', peers: [{ site: '\\x1b[31mred' }], links: [{ peerLinkName: 'x\\x07' }], n: 3, ok: true, nothing: null, bytes: new Uint8Array([27]) });
    expect(snap.peers[0]!.site).toBe('\x1b[31mred');
  });

  it('escapes in JSON what JSON.stringify leaves raw, keeping the same value', () => {
    const value = { site: 'a\u009b2Jb\u202e\u2028\x7f' };
    const json = escapeJsonForTerminal(JSON.stringify(value));
    expect(TERMINAL_ACTIVE.test(json)).toBe(false);
    expect(JSON.parse(json)).toEqual(value);
  });
});
