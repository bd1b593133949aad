/**
 * sim/ is the simulator in virtual time: the core engines plus netem, no I/O of ours. Its real-time
 * backend (a netem relay over TUNs, a UDP traffic agent, the runner that spawns them in namespaces)
 * lives in src/io/realtime/, and the data AEAD is injected (issue 11's shape).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SIM = fileURLToPath(new URL('../../sim/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('sim/ purity', () => {
  it('imports nothing from src/io', () => {
    const offenders = files(SIM).filter((f) => /from\s+['"][^'"]*src\/io\//.test(readFileSync(f, 'utf8')) || /import\(\s*['"][^'"]*src\/io\//.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });
});
