/**
 * A throwaway single-member etcd for tests and benchmarks (issue 12): started on an address and
 * port the caller picked (loopback, or an address inside a test namespace via `wrap`), its data
 * in a temp dir that `remove()` deletes. `stop()` kills it (SIGKILL: an outage, not a shutdown)
 * and keeps the data; `start()` again resumes with the same data and revision, as a restarted
 * server would. Debian's `etcd-server` provides the binary (.ci/run installs it when missing).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

export interface TestEtcd {
  /** Client URL, e.g. http://127.0.0.1:23791. */
  readonly url: string;
  readonly dataDir: string;
  start(): Promise<void>;
  /** Kills the server (SIGKILL) and waits for it to exit; the data stays. */
  stop(): Promise<void>;
  /** stop() and delete the data dir. */
  remove(): Promise<void>;
  output(): string;
}

export function etcdAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v etcd'], { stdio: 'ignore' }).status === 0;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel), for a loopback etcd. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export interface TestEtcdOptions {
  /** Address to listen on (default 127.0.0.1). */
  address?: string;
  clientPort: number;
  peerPort: number;
  /** argv prefix, e.g. ['ip', 'netns', 'exec', NS] to run it inside a namespace. */
  wrap?: string[];
}

export function createTestEtcd(opts: TestEtcdOptions): TestEtcd {
  const address = opts.address ?? '127.0.0.1';
  const url = `http://${address}:${opts.clientPort}`;
  const peer = `http://${address}:${opts.peerPort}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'braid-etcd-'));
  let proc: ChildProcess | undefined;
  let out = '';
  const argv = [
    'etcd',
    '--name',
    'brt',
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    url,
    '--advertise-client-urls',
    url,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `brt=${peer}`,
    '--log-level',
    'warn',
  ];
  const exited = (p: ChildProcess): boolean => p.exitCode !== null || p.signalCode !== null;
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || exited(p)) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await gone;
  };
  return {
    url,
    dataDir,
    output: () => out,
    async start() {
      if (proc && !exited(proc)) return;
      const full = [...(opts.wrap ?? []), ...argv];
      const p = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      proc = p;
      const keep = (d: Buffer): void => void (out = (out + d.toString()).slice(-20_000));
      p.stdout?.on('data', keep);
      p.stderr?.on('data', keep);
      // Ready when the client port answers /health (etcd's HTTP gateway on the client URL).
      const until = Date.now() + 20_000;
      for (;;) {
        if (exited(p)) throw new Error(`etcd exited ${p.exitCode ?? p.signalCode}:\n${out.slice(-3000)}`);
        const ok = await health(opts.wrap, url);
        if (ok) return;
        if (Date.now() > until) throw new Error(`etcd on ${url} not healthy after 20 s:\n${out.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    stop,
    async remove() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function health(wrap: string[] | undefined, url: string): Promise<boolean> {
  if (!wrap) {
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      return r.ok;
    } catch {
      return false;
    }
  }
  // Inside a namespace: ask from there (the test's own process is in the root namespace).
  const script = `fetch(${JSON.stringify(`${url}/health`)}, { signal: AbortSignal.timeout(1000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;
  const r = spawnSync(wrap[0]!, [...wrap.slice(1), process.execPath, '-e', script], { stdio: 'ignore', timeout: 3000 });
  return r.status === 0;
}
