/**
 * Userspace netem relay for real-time runs (root, for kernels without sch_netem): one process per
 * WAN link, inside the scenario's relay namespace, that applies the userspace NetemEngine to each
 * direction of the link in real time.
 *
 * Where it sits (src/io/realtime/run-real.ts builds this):
 *
 *   ns a                     ns r (the "WAN")                                   ns b
 *   braid a -- wan0 ===== ra0 --\                                  /-- rb0 ===== wan0 -- braid b
 *   10.200.S.1:51900             policy route (iif ra0 / rb0) -> TUN brtXr0
 *                                  -> this relay: NetemEngine up (a -> b) / down (b -> a)
 *                                  -> written back into the TUN -> main table -> out rb0 / ra0
 *
 * It is transparent at layer 3: the edges' link sockets stay bound to their own interfaces
 * (SO_BINDTODEVICE) and see each other's real addresses; the relay never rewrites a header.
 * Direction comes from the source address: the branch's (site a's) link address is "up".
 *
 * Stages per packet: TUN read (batched, borrowed views, copied here) -> NetemEngine.enqueue at
 * the monotonic clock -> one timer armed for the earliest departure of every engine -> poll ->
 * TUN write. The engine is the same state machine the virtual-time World uses, so both runners
 * impair with the same code; only the clock differs.
 *
 * Protocol (JSON lines): argv[2] is the configuration
 *   {"tun":"brtsr0","link":"mpls","aAddress":"10.200.1.1","up":"delay 15ms","down":"delay 15ms","seed":1}
 * stdout: {"ready":true,"tun":"brtsr0"} once reading; stdin: {"dir":"up"|"down","spec":"loss 100%"}
 * -> {"ok":true,"dir":"up","atMs":MONOTONIC_MS} (or {"ok":false,"error":"..."}); {"cmd":"stats"} ->
 * {"stats":{...}}; stdin closed or SIGTERM -> a final {"stats":...} line and exit 0.
 */
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { SeededRng } from '../../core/rng.ts';
import { openTun, type TunDevice } from '../tun.ts';
import { NetemEngine, type NetemCounters } from '../../../sim/netem/engine.ts';
import { parseNetemSpec } from '../../../sim/netem/spec.ts';

export interface RelayConfig {
  tun: string;
  link: string;
  /** Site a's (the branch's) address on this link: packets from it go "up". */
  aAddress: string;
  up: string;
  down: string;
  seed: number;
  /** TUN MTU; the veths' 1500 by default. */
  mtuBytes?: number;
}

interface RelayPacket {
  bytes: Uint8Array;
}

/**
 * Milliseconds of the system-wide monotonic clock (CLOCK_MONOTONIC, via process.hrtime): the same
 * in every process on the box, so the relay, the traffic agents and the runner agree on times to
 * the microsecond. (performance.timeOrigin + performance.now() is not: each process fixes its
 * origin against the wall clock at start, a few ms apart.)
 */
export function sharedNowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function ipv4ToU32(text: string): number {
  const p = text.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`relay: "${text}" is not an IPv4 address`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/**
 * A private copy of a borrowed view. (Not view.slice(): the TUN hands out Buffers, whose slice()
 * is a view of the same slab, which the next batch overwrites.)
 */
function copyOf(view: Uint8Array): Uint8Array {
  const out = new Uint8Array(view.length);
  out.set(view);
  return out;
}

export class Relay {
  private readonly engines: { up: NetemEngine<RelayPacket>; down: NetemEngine<RelayPacket> };
  private readonly aAddressU32: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAtMs = Infinity;
  /** Packets neither from a nor to a (never expected): forwarded as they are. */
  passedThrough = 0;
  writeErrors = 0;
  /** Largest lateness of a departure behind its schedule (timer resolution), ms. */
  maxLateMs = 0;

  constructor(
    private readonly config: RelayConfig,
    private readonly tun: TunDevice,
  ) {
    const rng = new SeededRng(config.seed);
    this.engines = { up: new NetemEngine(parseNetemSpec(config.up), rng.fork()), down: new NetemEngine(parseNetemSpec(config.down), rng.fork()) };
    this.aAddressU32 = ipv4ToU32(config.aAddress);
    tun.onPackets((batch) => {
      const now = performance.now();
      for (let i = 0; i < batch.count; i++) this.onPacket(now, batch.packet(i));
      this.pump();
    });
  }

  private onPacket(nowMs: number, view: Uint8Array): void {
    if (view.length < 20 || view[0]! >> 4 !== 4) {
      this.forward(view);
      return;
    }
    const src = ((view[12]! << 24) | (view[13]! << 16) | (view[14]! << 8) | view[15]!) >>> 0;
    const dst = ((view[16]! << 24) | (view[17]! << 16) | (view[18]! << 8) | view[19]!) >>> 0;
    if (src === this.aAddressU32) this.engines.up.enqueue(nowMs, { bytes: copyOf(view) });
    else if (dst === this.aAddressU32) this.engines.down.enqueue(nowMs, { bytes: copyOf(view) });
    else this.forward(view);
  }

  private forward(bytes: Uint8Array): void {
    this.passedThrough++;
    if (!this.tun.write(bytes)) this.writeErrors++;
  }

  /** Sends every packet that is due, then arms one timer for the next departure. */
  private pump(): void {
    const now = performance.now();
    for (const engine of [this.engines.up, this.engines.down]) {
      for (const d of engine.poll(now, [])) {
        this.maxLateMs = Math.max(this.maxLateMs, now - d.departMs);
        if (!this.tun.write(d.bytes)) this.writeErrors++;
      }
    }
    const next = Math.min(this.engines.up.nextDeadlineMs() ?? Infinity, this.engines.down.nextDeadlineMs() ?? Infinity);
    if (next === Infinity) return;
    if (this.timer !== undefined && this.timerAtMs <= next) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAtMs = next;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAtMs = Infinity;
      this.pump();
    }, Math.max(0, next - now));
  }

  /** Like `tc qdisc change`: packets already held keep their schedule. Throws on a bad spec. */
  setSpec(dir: 'up' | 'down', spec: string): void {
    this.engines[dir].setSpec(parseNetemSpec(spec));
    this.pump();
  }

  stats(): { link: string; up: NetemCounters; down: NetemCounters; passedThrough: number; writeErrors: number; maxLateMs: number } {
    return {
      link: this.config.link,
      up: this.engines.up.counters(),
      down: this.engines.down.counters(),
      passedThrough: this.passedThrough,
      writeErrors: this.writeErrors,
      maxLateMs: Math.round(this.maxLateMs * 10) / 10,
    };
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.tun.close();
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as RelayConfig;
  const out = (o: object): void => {
    process.stdout.write(JSON.stringify(o) + '\n');
  };
  const tun = await openTun({ name: config.tun, mtuBytes: config.mtuBytes ?? 1500 });
  const relay = new Relay(config, tun);
  let closed = false;
  const shutdown = (): void => {
    if (closed) return;
    closed = true;
    out({ stats: relay.stats() });
    relay.close();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let msg: { dir?: unknown; spec?: unknown; cmd?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      out({ ok: false, error: 'not JSON' });
      return;
    }
    if (msg.cmd === 'stats') {
      out({ stats: relay.stats() });
      return;
    }
    if ((msg.dir !== 'up' && msg.dir !== 'down') || typeof msg.spec !== 'string') {
      out({ ok: false, error: 'expected {"dir":"up"|"down","spec":"..."} or {"cmd":"stats"}' });
      return;
    }
    try {
      relay.setSpec(msg.dir, msg.spec);
      out({ ok: true, dir: msg.dir, atMs: sharedNowMs() });
    } catch (e) {
      out({ ok: false, dir: msg.dir, error: e instanceof Error ? e.message : String(e) });
    }
  });
  rl.on('close', shutdown);
  out({ ready: true, tun: tun.name });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().catch((e: unknown) => {
    process.stderr.write(`relay: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
