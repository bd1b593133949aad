/**
 * A running edge without root: the demo World in virtual time, its site a behind a real control
 * socket in a temp dir. Tests advance the world themselves (runTo) between requests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDemoWorld } from '../../src/cli/demo.ts';
import { ControlServer } from '../../src/control/control-socket.ts';
import type { EdgeSnapshot } from '../../src/core/types.ts';
import type { World } from '../../sim/world.ts';

export interface WorldEdge {
  world: World;
  socketPath: string;
  server: ControlServer;
  snapshot(): EdgeSnapshot;
  runTo(ms: number): void;
  close(): void;
}

export async function startWorldEdge(atMs = 12_000, seed = 1): Promise<WorldEdge> {
  const dir = mkdtempSync(join(tmpdir(), 'braid-ctl-'));
  const socketPath = join(dir, 'braid.sock');
  const world = buildDemoWorld(seed, 60);
  world.run(atMs);
  const snapshot = (): EdgeSnapshot => world.a.edge.snapshot(world.nowMs);
  const server = await ControlServer.listen(socketPath, {
    status: snapshot,
    drain: (name, drained) => {
      const id = world.linkNames.indexOf(name);
      if (id < 0) return `no link named "${name}" (have: ${world.linkNames.join(', ')})`;
      world.a.edge.setLinkAdmin(world.nowMs, id, drained);
      world.drain(world.a);
      return undefined;
    },
  });
  return {
    world,
    socketPath,
    server,
    snapshot,
    runTo: (ms) => {
      world.run(ms);
      for (const e of world.a.events.splice(0)) server.publishEvent(e);
    },
    close: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
