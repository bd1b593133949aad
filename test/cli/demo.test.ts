/**
 * `npm start` end to end: the dashboard demo in a real terminal (a detached tmux session, 100x30),
 * and the text fallback when stdout is a pipe.
 */
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const execFileP = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
if (!hasTmux) console.log('demo dashboard test skipped: tmux is not installed (apt-get install tmux)');

describe('braid demo', () => {
  it.skipIf(!hasTmux)('shows the three links and a failover with its reason live in a 100x30 terminal; q quits', async () => {
    // A private tmux server (-L) so we never touch the user's sessions; killed at the end.
    const server = `braid-test-${process.pid}`;
    const tmux = (...args: string[]) => spawnSync('tmux', ['-L', server, ...args], { encoding: 'utf8' });
    const cmd = `env -u CI -u CONTINUOUS_INTEGRATION -u NO_COLOR TERM=xterm-256color ${JSON.stringify(process.execPath)} bin/braid.js demo --speed 5`;
    const started = tmux('new-session', '-d', '-s', 'demo', '-x', '100', '-y', '30', '-c', repo, cmd);
    expect(started.status, started.stderr).toBe(0);
    let pane = '';
    try {
      const deadline = Date.now() + 45_000;
      const ready = (): boolean =>
        /^> mpls /m.test(pane) && /^ {2}inet /m.test(pane) && /^ {2}lte /m.test(pane) && /\b\w+: mpls -> \w+ \(mpls /.test(pane);
      while (Date.now() < deadline) {
        pane = tmux('capture-pane', '-p', '-t', 'demo').stdout;
        if (ready()) break;
        await new Promise((r) => setTimeout(r, 300));
      }
      expect(ready(), `pane never showed the links and a failover:\n${pane}`).toBe(true);
      const lines = pane.split('\n');
      expect(lines[0]).toMatch(/^braid\s+demo 5x\s+site a\s+t \d/);
      for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
      expect(pane).toMatch(/mpls: up -> down \(nothing heard for/);
      expect(pane).toMatch(/simulated; mpls (is cut|restored|blackout)/);

      tmux('send-keys', '-t', 'demo', 'q');
      const quitBy = Date.now() + 10_000;
      while (Date.now() < quitBy && tmux('has-session', '-t', 'demo').status === 0) await new Promise((r) => setTimeout(r, 100));
      expect(tmux('has-session', '-t', 'demo').status, 'q did not end the demo').not.toBe(0);
    } finally {
      tmux('kill-server');
    }
  });

  it('falls back to the text output when stdout is not a terminal (CI logs)', async () => {
    const { stdout } = await execFileP(process.execPath, ['bin/braid.js', 'demo', '--seconds', '12', '--speed', '1000'], { cwd: repo, timeout: 50_000 });
    expect(stdout).toMatch(/^Braid demo: sites a and b over mpls, inet and lte/);
    expect(stdout).toMatch(/event 10\.\d\ds: voice: mpls -> inet \(mpls down/);
    expect(stdout).toMatch(/site a {2}t=12s/);
    expect(stdout).not.toContain('\x1b[');
    expect(stdout).toMatch(/done: site b received \d+ packets/);
  });
});
