/**
 * `braid sim`: exit codes (0 pass, 1 failed expectation or invariant, 2 usage or scenario error),
 * one JSON object with --json, one-line errors.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const BRAID = fileURLToPath(new URL('../../../bin/braid.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'braid-sim-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function braid(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BRAID, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function scenario(name: string, expect: string[]): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    [
      `name: ${name}`,
      'description: two links, one call, a 2 s cut',
      'durationS: 6',
      'links:',
      '  - { name: mpls, netem: { up: "delay 10ms", down: "delay 10ms" } }',
      '  - { name: inet, netem: { up: "delay 20ms", down: "delay 20ms" } }',
      'traffic:',
      '  - { class: voice, kind: voice, calls: 1 }',
      'timeline:',
      '  - { at: 3s, link: mpls, set: "loss 100%" }',
      '  - { at: 5s, link: mpls, restore: true }',
      `expect: [${expect.map((e) => JSON.stringify(e)).join(', ')}]`,
      '',
    ].join('\n'),
  );
  return path;
}

describe('braid sim', () => {
  it('run --json: one JSON object, exit 0 when every expectation passes', () => {
    const r = braid('sim', 'run', scenario('good', ['voice.max_gap_ms < 600', 'events.detection_ms < 500']), '--json', '--seed', '3');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]!) as { scenario: string; mode: string; backend: string; seed: number; pass: boolean; events: Array<{ detectionMs: number; classes: Record<string, { movedMs: number }> }>; classes: Record<string, { sent: number; latencyP50Ms: number }>; expectations: Array<{ pass: boolean }> };
    expect(j).toMatchObject({ scenario: 'good', mode: 'virtual', backend: 'userspace', seed: 3, pass: true });
    expect(j.events[0]!.detectionMs).toBeGreaterThan(250);
    expect(j.events[0]!.classes.voice!.movedMs).toBeGreaterThan(250);
    expect(j.classes.voice!.sent).toBeGreaterThan(400);
    expect(j.classes.voice!.latencyP50Ms).toBeGreaterThan(9);
    expect(j.expectations.every((e) => e.pass)).toBe(true);
  });

  it('run: exit 1 and a FAIL line when an expectation fails', () => {
    const r = braid('sim', 'run', scenario('bad', ['voice.lost == 0']));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^scenario bad \(virtual time, userspace netem, seed 1\): FAIL$/m);
    expect(r.stdout).toMatch(/FAIL {2}voice\.lost == 0 {2}\(actual \d+\)/);
  });

  it('exit 2 with one line for usage and scenario errors', () => {
    const unknown = braid('sim', 'run', 'no-such-scenario');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/^braid: scenario no-such-scenario: no shipped scenario of that name; fix: use one of .*mpls-blackout/);
    const both = braid('sim', 'run', 'mpls-blackout', '--virtual', '--real');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--virtual and --real exclude each other/);
    const badSeed = braid('sim', 'vopr', '--seed', 'x');
    expect(badSeed.code).toBe(2);
    expect(badSeed.stderr).toMatch(/--seed x: expected a whole number/);
    const path = join(dir, 'typo.yaml');
    writeFileSync(path, 'name: typo\ndescription: d\ndurationS: 5\nlinks: [{ name: a, profile: mpls }]\ntraffic: [{ class: voice, kind: voice }]\nexpct: []\n');
    const typo = braid('sim', 'run', path);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/^braid: .*typo\.yaml:\d+:1: expct: unknown field; fix: remove it or fix its spelling/);
  });

  it('vopr --seed N runs that one seed; list shows the shipped scenarios', () => {
    const r = braid('sim', 'vopr', '--seed', '11');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^VOPR: 1\/1 seeds passed \(11\.\.11\)/);
    const list = braid('sim', 'list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^mpls-blackout\s+30 s {2}MPLS goes dark/m);
  });
});
