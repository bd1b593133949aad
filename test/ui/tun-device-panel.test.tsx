// The dashboard's classes view shows the TUN device's kernel drops next to Braid's own (issue 13).
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { FlowsPanel } from '../../src/ui/components/flows-panel.tsx';
import type { EdgeStatus } from '../../src/control/control-socket.ts';
import { failoverSnapshot } from './fixtures.ts';

afterEach(() => cleanup());

describe('flows panel: TUN device drops', () => {
  it('adds the queue and rx drops of the TUN to the drops line, within 80 columns', () => {
    const snap: EdgeStatus = { ...failoverSnapshot(), tunDevice: { name: 'braid0', txPackets: 9, txDropped: 762_041, rxPackets: 9, rxDropped: 3, txErrors: 0, rxErrors: 0, writeRefused: 0 } };
    const { lastFrame } = render(<FlowsPanel snapshot={snap} columns={80} theme={{ color: false }} />);
    expect(lastFrame()).toContain('drops: malformed 2; tun braid0: 762,041 queue drops, 3 rx drops');
    const { lastFrame: without } = render(<FlowsPanel snapshot={failoverSnapshot()} columns={80} theme={{ color: false }} />);
    expect(without()).toMatch(/drops: malformed 2\n/);
  });
});
