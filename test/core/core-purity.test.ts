import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// DESIGN.md: src/core imports no socket, timer or clock; node:* only node:buffer and node:crypto.
const coreDir = fileURLToPath(new URL('../../src/core', import.meta.url));

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const FORBIDDEN: Array<[RegExp, string]> = [
  [/from\s+['"](node:)?(?!buffer['"]|crypto['"])(fs|net|dgram|child_process|os|timers|http|https|worker_threads|process|path|url|perf_hooks|cluster|tls|dns)(\/[a-z]+)?['"]/, 'a node:* module other than node:buffer/node:crypto'],
  [/\bsetTimeout\s*\(|\bsetInterval\s*\(|\bsetImmediate\s*\(|queueMicrotask\s*\(/, 'a timer'],
  [/\bDate\.now\s*\(|\bnew Date\s*\(|performance\.now\s*\(|process\.hrtime/, 'the clock'],
  [/\bMath\.random\s*\(/, 'Math.random (use the injected Rng)'],
  [/\bprocess\./, 'process'],
  [/:\s*any\b|<any>|as any\b/, 'the any type'],
];

describe('core purity (sans-I/O)', () => {
  const files = walk(coreDir);
  it('finds the core files', () => expect(files.length).toBeGreaterThan(5));
  for (const file of files) {
    it(`${file.slice(coreDir.length + 1)} uses no I/O, timers, clock or Math.random`, () => {
      const src = readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => !l.trim().startsWith('//') && !l.trim().startsWith('*'))
        .join('\n');
      for (const [re, what] of FORBIDDEN) {
        expect(re.test(src), `${file} uses ${what}`).toBe(false);
      }
    });
  }
  // Issue 11's shape: a module a reader can hold in their head (edge.ts had grown to 1,931 lines).
  it('no core file is over 600 lines', () => {
    const long = files.map((f) => [f.slice(coreDir.length + 1), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 600);
    expect(long).toEqual([]);
  });
  it('the checker itself catches a forbidden import', () => {
    expect(FORBIDDEN[0]![0].test(`import dgram from 'node:dgram'`)).toBe(true);
    expect(FORBIDDEN[0]![0].test(`import { createCipheriv } from 'node:crypto'`)).toBe(false);
    expect(FORBIDDEN[2]![0].test(`const t = Date.now()`)).toBe(true);
  });
});
