// Where an idle ping's round trip goes through a two-site tunnel, from the kernel's own event
// trace (tracefs): syscalls and scheduler wake-ups of the two tunnel processes, nothing inside
// them. One ping cycle is: ping wakes site a's tunnel (wake a), which reads the TUN and sends a
// datagram (hop 1); site b wakes (wake b), receives it and writes its TUN (hop 2); the kernel
// answers the echo at once, b reads the reply and sends it (hop 3); a wakes (wake a2), receives
// and writes its TUN (hop 4), which wakes ping. A hop is the time from the syscall that brought
// the packet in to the one that sends it on: the tunnel's own work, cold or warm. A wake is the
// time from the kernel marking a thread runnable to that thread running: on a VM whose vCPU has
// halted, the host's wake-up. Issue 13 asks where Braid's idle RTT goes next to wireguard-go's.

import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

/** x86-64 syscall numbers of the calls a tunnel moves packets with. */
const NR = { read: 0, write: 1, writev: 20, sendmsg: 46, recvmsg: 47, recvmmsg: 299, sendmmsg: 307 } as const;
const TUN_READ = new Set<number>([NR.read]);
const TUN_WRITE = new Set<number>([NR.write, NR.writev]);
const UDP_RECV = new Set<number>([NR.recvmsg, NR.recvmmsg]);
const UDP_SEND = new Set<number>([NR.sendmsg, NR.sendmmsg]);
/** A TUN read shorter than this is not a packet (libuv's eventfd reads return 8). */
const MIN_PACKET_READ_BYTES = 28;

export interface CycleTimes {
  rttUs: number;
  /** Hops 1-4 (see the file comment); undefined where the trace did not show that step. */
  hopUs: (number | undefined)[];
  /** Wake a (ping -> a), wake b (a's send -> b runs), wake a2 (b's send -> a runs). */
  wakeUs: (number | undefined)[];
}

export interface TraceEvent {
  ts: number;
  tid: number;
  kind: 'enter' | 'exit' | 'waking' | 'switch';
  nr: number;
  ret: number;
  /** waking: the woken tid and its comm; switch: the tid switched to. */
  target: number;
  targetComm: string;
  comm: string;
}

const LINE = /^\s*(.*)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (sys_enter|sys_exit|sched_waking|sched_switch): (.*)$/;

export function parseTrace(text: string): TraceEvent[] {
  const out: TraceEvent[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const comm = m[1]!.trim();
    const tid = Number(m[2]);
    const ts = Number(m[3]) * 1e6;
    const rest = m[5]!;
    if (m[4] === 'sys_enter' || m[4] === 'sys_exit') {
      const s = /NR (\d+)(?: = (-?\d+))?/.exec(rest);
      if (!s) continue;
      out.push({ ts, tid, comm, kind: m[4] === 'sys_enter' ? 'enter' : 'exit', nr: Number(s[1]), ret: s[2] === undefined ? 0 : Number(s[2]), target: 0, targetComm: '' });
    } else if (m[4] === 'sched_waking') {
      const w = /comm=(.*) pid=(\d+) prio/.exec(rest);
      if (w) out.push({ ts, tid, comm, kind: 'waking', nr: -1, ret: 0, target: Number(w[2]), targetComm: w[1]!.trim() });
    } else {
      const w = /next_comm=(.*) next_pid=(\d+) next_prio/.exec(rest);
      if (w) out.push({ ts, tid, comm, kind: 'switch', nr: -1, ret: 0, target: Number(w[2]), targetComm: w[1]!.trim() });
    }
  }
  return out;
}

/**
 * The ping cycles in `events`: `a` and `b` are the thread ids of site a's and site b's tunnel
 * processes (ping runs in a's namespace). Cycles whose end was not traced are left out.
 */
export function pingCycles(events: readonly TraceEvent[], a: ReadonlySet<number>, b: ReadonlySet<number>): CycleTimes[] {
  const cycles: CycleTimes[] = [];
  const wakeLatency = (from: number, tids: ReadonlySet<number>): number | undefined => {
    // The first waking of one of `tids` at or after index `from`, and the switch to it.
    for (let i = from; i < events.length; i++) {
      const e = events[i]!;
      if (e.kind !== 'waking' || !tids.has(e.target)) continue;
      for (let j = i + 1; j < events.length; j++) {
        const s = events[j]!;
        if (s.kind === 'switch' && s.target === e.target) return s.ts - e.ts;
      }
      return undefined;
    }
    return undefined;
  };
  for (let i = 0; i < events.length; i++) {
    const start = events[i]!;
    if (start.kind !== 'waking' || start.comm !== 'ping' || !a.has(start.target)) continue;
    // The window: up to the next echo request (ping waking site a again more than 1 ms later).
    let stop = events.length;
    for (let j = i + 1; j < events.length; j++) {
      const e = events[j]!;
      if (e.kind === 'waking' && e.comm === 'ping' && a.has(e.target) && e.ts - start.ts > 1000) {
        stop = j;
        break;
      }
    }
    const win = events.slice(i, stop);
    const at = (pred: (e: TraceEvent) => boolean, from = 0): number => {
      for (let k = from; k < win.length; k++) if (pred(win[k]!)) return k;
      return -1;
    };
    const isTunRead = (site: ReadonlySet<number>) => (e: TraceEvent): boolean => site.has(e.tid) && e.kind === 'exit' && TUN_READ.has(e.nr) && e.ret >= MIN_PACKET_READ_BYTES;
    const isUdpSend = (site: ReadonlySet<number>) => (e: TraceEvent): boolean => site.has(e.tid) && e.kind === 'enter' && UDP_SEND.has(e.nr);
    const isTunWrite = (site: ReadonlySet<number>) => (e: TraceEvent): boolean => site.has(e.tid) && e.kind === 'enter' && TUN_WRITE.has(e.nr);
    const lastUdpRecvBefore = (site: ReadonlySet<number>, k: number): number => {
      for (let x = k - 1; x >= 0; x--) {
        const e = win[x]!;
        if (site.has(e.tid) && e.kind === 'exit' && UDP_RECV.has(e.nr) && e.ret > 0) return x;
      }
      return -1;
    };
    const hop = (from: number, to: number): number | undefined => (from >= 0 && to >= 0 ? win[to]!.ts - win[from]!.ts : undefined);
    const r1 = at(isTunRead(a));
    const s1 = r1 < 0 ? -1 : at(isUdpSend(a), r1);
    const w2 = s1 < 0 ? -1 : at(isTunWrite(b), s1);
    const v2 = w2 < 0 ? -1 : lastUdpRecvBefore(b, w2);
    const r3 = w2 < 0 ? -1 : at(isTunRead(b), w2);
    const s3 = r3 < 0 ? -1 : at(isUdpSend(b), r3);
    const w4 = s3 < 0 ? -1 : at(isTunWrite(a), s3);
    const v4 = w4 < 0 ? -1 : lastUdpRecvBefore(a, w4);
    if (w4 < 0) continue; // the reply's way back was not traced
    // The end: ping gets the reply: woken by the write, or (when the tunnel had preempted it and it
    // never slept) switched back in.
    const end = at((e) => (e.kind === 'waking' && e.targetComm === 'ping') || (e.kind === 'switch' && e.targetComm === 'ping'), w4);
    if (end < 0) continue;
    cycles.push({
      rttUs: win[end]!.ts - start.ts,
      hopUs: [hop(r1, s1), hop(v2, w2), hop(r3, s3), hop(v4, w4)],
      wakeUs: [wakeLatency(i, a), s1 < 0 ? undefined : wakeLatency(i + s1, b), s3 < 0 ? undefined : wakeLatency(i + s3, a)],
    });
  }
  return cycles;
}

/** The threads of a process (for set_event_pid: the tunnels' work may be on any of them). */
export function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number).filter((n) => Number.isSafeInteger(n));
  } catch {
    return [pid];
  }
}

/** The process (thread group) a thread belongs to, or undefined once it is gone. */
export function processOf(tid: number): number | undefined {
  try {
    const m = /^Tgid:\s*(\d+)/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** The tracefs mount, or undefined (no tracefs: the benchmark says so and skips the trace). */
export function tracefs(): string | undefined {
  for (const dir of TRACEFS) {
    try {
      readFileSync(`${dir}/tracing_on`, 'utf8');
      return dir;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * Traces the syscalls and wake-ups of `tids` while `fn` runs; returns the trace text. Always
 * leaves tracing off and the event filters empty, also when `fn` throws.
 */
export async function traceWhile(dir: string, tids: readonly number[], fn: () => Promise<void>): Promise<string> {
  const w = (file: string, text: string): void => writeFileSync(`${dir}/${file}`, text);
  const reset = (): void => {
    w('tracing_on', '0');
    w('set_event', '');
    w('set_event_pid', '');
    w('options/event-fork', '0');
  };
  reset();
  w('trace', '');
  w('buffer_size_kb', '16384');
  // Threads the tunnels start meanwhile (Go's runtime adds OS threads as it needs them) are traced too.
  w('options/event-fork', '1');
  w('set_event_pid', tids.join(' '));
  w('set_event', ['raw_syscalls:sys_enter', 'raw_syscalls:sys_exit', 'sched:sched_waking', 'sched:sched_switch'].join('\n'));
  try {
    w('tracing_on', '1');
    await fn();
    w('tracing_on', '0');
    return readFileSync(`${dir}/trace`, 'utf8');
  } finally {
    reset();
    w('trace', '');
  }
}
