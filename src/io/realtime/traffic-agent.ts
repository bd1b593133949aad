/**
 * Real-time traffic agent: runs inside one site's namespace, sends that site's flows of a scenario
 * as UDP through the overlay (voice-like and constant-bit-rate), and receives the peer's.
 *
 * Every datagram carries, after the kernel's IP/UDP headers:
 *   magic u32 | flowId u32 | seq u32 | send time f64 (scenario ms) | fill: byte j = (j * 31 + seq) & 0xff
 * so the receiver can tell loss, duplicates, corruption, misdelivery and one-way latency (both
 * agents run on one box: one clock). The DSCP of each flow's class is set per packet (native addon),
 * which is what the edge classifies on.
 *
 * Protocol: argv[2] is the plan file (AgentPlan JSON). stdout: {"ready":true} once the sockets are
 * open; stdin: {"t0SharedMs":N} starts the schedule (scenario time 0 = N); the agent exits after
 * writing its AgentResult to plan.resultFile at scenario time plan.endMs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { openUdpLink, type UdpLink } from '../udp.ts';
import { sharedNowMs } from './relay.ts';

export interface AgentFlow {
  flowId: number;
  sizeBytes: number;
  dscp: number;
  intervalMs: number;
  firstMs: number;
  stopMs: number;
}

export interface AgentPlan {
  site: 'a' | 'b';
  peerAddress: string;
  port: number;
  flows: AgentFlow[];
  /** Scenario ms at which the agent stops receiving, writes its result and exits. */
  endMs: number;
  resultFile: string;
}

export interface AgentResult {
  site: 'a' | 'b';
  /** Per flow sent from here: send times by seq (scenario ms). */
  sends: Array<[number, number[]]>;
  /** Received: [flowId, seq, recvMs, sendMs, intact 0/1], in arrival order. */
  recvs: Array<[number, number, number, number, number]>;
  sendFailures: number;
  /** Datagrams without our magic (not ours, or corrupted beyond recognition). */
  foreign: number;
}

export const AGENT_MAGIC = 0xb4a1d002;
const HEADER_BYTES = 20;

export function encodeAgentPayload(out: Uint8Array, flowId: number, seq: number, sendMs: number): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint32(0, AGENT_MAGIC);
  dv.setUint32(4, flowId >>> 0);
  dv.setUint32(8, seq >>> 0);
  dv.setFloat64(12, sendMs);
  for (let j = HEADER_BYTES; j < out.length; j++) out[j] = (j * 31 + seq) & 0xff;
}

/** Parses a payload; undefined when it is not one of ours. */
export function decodeAgentPayload(p: Uint8Array): { flowId: number; seq: number; sendMs: number; intact: boolean } | undefined {
  if (p.length < HEADER_BYTES) return undefined;
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (dv.getUint32(0) !== AGENT_MAGIC) return undefined;
  const seq = dv.getUint32(8);
  let intact = true;
  for (let j = HEADER_BYTES; j < p.length; j++) {
    if (p[j] !== ((j * 31 + seq) & 0xff)) {
      intact = false;
      break;
    }
  }
  return { flowId: dv.getUint32(4), seq, sendMs: dv.getFloat64(12), intact };
}

async function main(): Promise<void> {
  const plan = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as AgentPlan;
  const result: AgentResult = { site: plan.site, sends: plan.flows.map((f) => [f.flowId, []]), recvs: [], sendFailures: 0, foreign: 0 };
  const rx = (await openUdpLink({ bindAddress: '0.0.0.0', port: plan.port })).link;
  const senders: UdpLink[] = [];
  for (let i = 0; i < plan.flows.length; i++) senders.push((await openUdpLink({ bindAddress: '0.0.0.0', port: 0 })).link);
  let t0 = NaN;
  const nowMs = (): number => sharedNowMs() - t0;
  rx.onDatagrams((batch) => {
    if (Number.isNaN(t0)) return;
    const at = nowMs();
    for (let i = 0; i < batch.count; i++) {
      const d = decodeAgentPayload(batch.datagram(i));
      if (!d) {
        result.foreign++;
        continue;
      }
      result.recvs.push([d.flowId, d.seq, Math.round(at * 1000) / 1000, Math.round(d.sendMs * 1000) / 1000, d.intact ? 1 : 0]);
    }
  });
  const next = plan.flows.map(() => 0);
  const buffers = plan.flows.map((f) => new Uint8Array(f.sizeBytes - 28));
  const to = { address: plan.peerAddress, port: plan.port };
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    timer = undefined;
    const now = nowMs();
    let wake = Infinity;
    plan.flows.forEach((f, i) => {
      for (;;) {
        const due = f.firstMs + next[i]! * f.intervalMs;
        if (due >= f.stopMs) return;
        if (due > now) {
          wake = Math.min(wake, due);
          return;
        }
        const seq = next[i]!++;
        const sendMs = nowMs();
        encodeAgentPayload(buffers[i]!, f.flowId, seq, sendMs);
        result.sends[i]![1].push(Math.round(sendMs * 1000) / 1000);
        if (!senders[i]!.send(buffers[i]!, to, f.dscp)) result.sendFailures++;
      }
    });
    if (wake !== Infinity) timer = setTimeout(tick, Math.max(0, wake - nowMs()));
  };
  const finish = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    writeFileSync(plan.resultFile, JSON.stringify(result));
    rx.close();
    for (const s of senders) s.close();
    process.exit(0);
  };
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const msg = JSON.parse(line) as { t0SharedMs?: unknown };
    if (typeof msg.t0SharedMs !== 'number' || !Number.isNaN(t0)) return;
    t0 = msg.t0SharedMs;
    setTimeout(tick, Math.max(0, Math.min(...plan.flows.map((f) => f.firstMs), plan.endMs) - nowMs()));
    setTimeout(finish, Math.max(0, plan.endMs - nowMs()));
  });
  process.on('SIGTERM', finish);
  // The runner gone (its end of stdin closed): stop sending into a bed nobody measures.
  rl.on('close', () => {
    if (timer !== undefined) clearTimeout(timer);
    process.exit(0);
  });
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().catch((e: unknown) => {
    process.stderr.write(`traffic-agent: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
