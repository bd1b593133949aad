import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { FlowsPanel } from '../../src/ui/components/flows-panel.tsx';
import { failoverSnapshot } from './fixtures.ts';

afterEach(() => cleanup());

describe('flows panel: class and application rule per flow (issue 16)', () => {
  it('shows each top flow\'s class, and the rule that chose it when one did', () => {
    const base = failoverSnapshot();
    const snap = failoverSnapshot({ topFlows: base.topFlows.map((f) => (f.class === 'voice' ? { ...f, rule: 'teams-audio' } : f)) });
    const { lastFrame } = render(<FlowsPanel snapshot={snap} columns={100} theme={{ color: false }} topRows={3} />);
    const lines = lastFrame()!.split('\n');
    expect(lines.some((l) => l.includes('flow [rule that chose the class]'))).toBe(true);
    const voice = lines.find((l) => l.includes('10.1.0.31:16384 > 10.2.0.44:16384 udp'))!;
    expect(voice).toMatch(/ voice +inet +10\.1\.0\.31:16384 > 10\.2\.0\.44:16384 udp \[teams-audio\]$/);
    const web = lines.find((l) => l.includes(':443 tcp'))!;
    expect(web).toMatch(/ default +inet +10\.1\.0\.20:51000 > 10\.2\.0\.9:443 tcp$/);
  });
});
