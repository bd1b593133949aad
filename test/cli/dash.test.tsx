import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { ControlSocketFeed, socketDrainHandler } from '../../src/cli/dash.ts';
import { ControlServer } from '../../src/control/control-socket.ts';
import { LiveDashboard } from '../../src/ui/app.tsx';
import { startWorldEdge, type WorldEdge } from '../control/world-edge.ts';

let edge: WorldEdge | undefined;
let feed: ControlSocketFeed | undefined;
afterEach(() => {
  cleanup();
  feed?.stop();
  edge?.close();
  edge = feed = undefined;
});

const until = async (what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> => {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('braid dash against a running edge (control socket, World-driven)', () => {
  it('shows the links, drains one with d y through the socket, and reconnects when the edge restarts', async () => {
    edge = await startWorldEdge(12_000);
    feed = new ControlSocketFeed(edge.socketPath, 100);
    await feed.connect();
    const { lastFrame, stdin } = render(<LiveDashboard feed={feed} onDrain={socketDrainHandler(edge.socketPath)} columns={100} rows={30} />);
    await until('the links', () => /mpls .*DOWN/.test(lastFrame() ?? '') && /inet /.test(lastFrame() ?? '') && /lte /.test(lastFrame() ?? ''));
    expect(lastFrame()).toMatch(/voice: mpls -> inet \(mpls down/);

    stdin.write('\u001B[B'); // select inet
    await until('selection', () => /^> inet /m.test(lastFrame() ?? ''));
    stdin.write('d');
    await until('the prompt', () => /drain inet\?/.test(lastFrame() ?? ''));
    stdin.write('y');
    await until('inet drained in the edge', () => edge!.snapshot().links[1]!.state === 'drained');
    await until('DRAINED on screen', () => /^> inet\s+DRAINED/m.test(lastFrame() ?? ''));
    expect(lastFrame()).toContain('inet drained');

    // The edge goes away: the dashboard says so and keeps the last picture.
    const path = edge.socketPath;
    edge.server.close();
    await until('the lost notice', () => /lost .*braid\.sock.*reconnecting/.test(lastFrame() ?? ''));
    expect(lastFrame()).toContain('inet');
    // ... and comes back: the feed reconnects by itself.
    const again = await ControlServer.listen(path, { status: edge.snapshot, drain: () => undefined });
    try {
      await until('reconnected', () => !/reconnecting/.test(lastFrame() ?? ''), 15_000);
    } finally {
      again.close();
    }
  });
});
