/**
 * `braid check` on broken YAML files (test/config/broken/: syntax errors and schema errors) prints
 * `FILE:LINE:COLUMN: ` first, at the place the file's `# expect: LINE:COL TEXT` line names. Run
 * from a directory outside the repo, like an operator would.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { fieldKeys, parseYamlSource, YamlSyntaxError } from '../../src/control/yaml-source.ts';

const BROKEN = fileURLToPath(new URL('./broken/', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/braid.js', import.meta.url));
const FILES = readdirSync(BROKEN).filter((f) => f.endsWith('.yaml')).sort();
const cwd = mkdtempSync(join(tmpdir(), 'braid-positions-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('braid check: FILE:LINE:COLUMN on every broken file', () => {
  it('has at least 10 files, syntax and schema errors both', () => {
    expect(FILES.length).toBeGreaterThanOrEqual(10);
    const syntax = FILES.filter((f) => readFileSync(join(BROKEN, f), 'utf8').startsWith('# expect: ') && /not valid YAML/.test(readFileSync(join(BROKEN, f), 'utf8').split('\n')[0]!));
    expect(syntax.length).toBeGreaterThanOrEqual(4);
    expect(FILES.length - syntax.length).toBeGreaterThanOrEqual(4);
  });

  for (const f of FILES) {
    it(f, () => {
      const file = join(BROKEN, f);
      const m = /^# expect: (\d+):(\d+) (.+)$/.exec(readFileSync(file, 'utf8').split('\n')[0]!);
      expect(m, `${f}: first line must be "# expect: LINE:COL TEXT"`).not.toBeNull();
      const [, line, col, text] = m!;
      const r = spawnSync(process.execPath, [BIN, 'check', '-c', file], { cwd, encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]!.startsWith(`braid: ${file}:${line}:${col}: `), lines[0]).toBe(true);
      expect(lines[0]).toContain(text);
      expect(lines[0]).toMatch(/; fix: \S/);
    });
  }
});

describe('yaml-source', () => {
  const text = 'a: 1\nlist:\n  - name: x\n    port: 70000\n  - { name: y }\n';
  const src = parseYamlSource(text, 'f.yaml');

  it('maps field paths to the value, the key, or the nearest node that exists', () => {
    expect(src.where('list[0].port')).toBe('f.yaml:4:11');
    expect(src.where(['list', 0, 'port'], { key: true })).toBe('f.yaml:4:5');
    expect(src.where('list[1].name')).toBe('f.yaml:5:13');
    expect(src.where('list[1].missing')).toBe('f.yaml:5:5');
    expect(src.where('nope')).toBe('f.yaml:1:1');
    expect(src.where([])).toBe('f.yaml:1:1');
    expect(src.value).toEqual({ a: 1, list: [{ name: 'x', port: 70000 }, { name: 'y' }] });
  });

  it('parses loader field names', () => {
    expect(fieldKeys('links[1].interface')).toEqual(['links', 1, 'interface']);
    expect(fieldKeys('peers[0].endpoints.mpls')).toEqual(['peers', 0, 'endpoints', 'mpls']);
    expect(fieldKeys('(top level)')).toEqual([]);
  });

  it('syntax errors carry FILE:LINE:COLUMN, an unclosed bracket or quote where it opened', () => {
    const err = (t: string): string => {
      try {
        parseYamlSource(t, 'g.yaml');
      } catch (e) {
        expect(e).toBeInstanceOf(YamlSyntaxError);
        return (e as YamlSyntaxError).location;
      }
      return 'parsed';
    };
    expect(err('a: 1\nb: [1, 2\n')).toBe('g.yaml:2:4');
    expect(err('a: 1\nb: "open\n\n')).toBe('g.yaml:2:4');
    expect(err('a: 1\na: 2\n')).toBe('g.yaml:2:1');
  });
});
