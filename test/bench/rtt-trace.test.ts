// bench/lib/rtt-trace.ts: one ping cycle out of a kernel trace (tracefs text as Linux 6.x prints
// it), taken apart into hops and wake-ups; probes and eventfd reads in between must not count.
import { describe, expect, it } from 'vitest';
import { parseTrace, pingCycles } from '../../bench/lib/rtt-trace.ts';

// Site a: node 100 (thread 101 is a V8 worker); site b: node 200. Times in seconds.
const T = (pid: string, cpu: number, t: number, what: string): string => `            ${pid} [00${cpu}] ..... ${t.toFixed(6)}: ${what}`;
const CYCLE = [
  T('ping-50', 0, 10.0, 'sched_waking: comm=node pid=100 prio=120 target_cpu=001'),
  T('<idle>-0', 1, 10.00002, 'sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=node next_pid=100 next_prio=120'),
  T('node-100', 1, 10.000025, 'sys_exit: NR 281 = 1'),
  T('node-100', 1, 10.00003, 'sys_exit: NR 0 = 8'), // eventfd: not a packet
  T('node-100', 1, 10.00004, 'sys_exit: NR 0 = 94'), // the echo from the TUN
  T('node-100', 1, 10.00014, 'sys_enter: NR 307 (18, 0, 1, 0, 0, 0)'), // hop 1: 100 us
  T('node-100', 1, 10.00015, 'sched_waking: comm=node pid=200 prio=120 target_cpu=000'),
  T('<idle>-0', 0, 10.00018, 'sched_switch: prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=node next_pid=200 next_prio=120'), // wake b: 30 us
  T('node-200', 0, 10.0002, 'sys_exit: NR 299 = 1'), // a probe first
  T('node-200', 0, 10.00021, 'sys_exit: NR 299 = 1'), // the data
  T('node-200', 0, 10.00029, 'sys_enter: NR 20 (12, 0, 2, 0, 0, 0)'), // hop 2: 80 us from the last receive
  T('node-200', 0, 10.0003, 'sys_exit: NR 0 = 94'),
  T('node-200', 0, 10.00035, 'sys_enter: NR 307 (18, 0, 1, 0, 0, 0)'), // hop 3: 50 us
  T('node-200', 0, 10.00036, 'sched_waking: comm=node pid=100 prio=120 target_cpu=001'),
  T('<idle>-0', 1, 10.00037, 'sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=node next_pid=100 next_prio=120'), // wake a2: 10 us
  T('node-100', 1, 10.00038, 'sys_exit: NR 299 = 1'),
  T('node-100', 1, 10.00044, 'sys_enter: NR 20 (12, 0, 2, 0, 0, 0)'), // hop 4: 60 us
  T('node-100', 1, 10.00045, 'sched_waking: comm=ping pid=50 prio=120 target_cpu=000'), // RTT 450 us
];

describe('pingCycles', () => {
  it('takes one cycle apart: RTT, four hops, three wake-ups', () => {
    const c = pingCycles(parseTrace(CYCLE.join('\n')), new Set([100, 101]), new Set([200]));
    expect(c).toHaveLength(1);
    const round = (x: number | undefined): number | undefined => (x === undefined ? undefined : Math.round(x));
    expect(round(c[0]!.rttUs)).toBe(450);
    expect(c[0]!.hopUs.map(round)).toEqual([100, 80, 50, 60]);
    expect(c[0]!.wakeUs.map(round)).toEqual([20, 30, 10]);
  });

  it('leaves out a cycle whose end was not traced, and reads comm names with dashes', () => {
    const cut = CYCLE.slice(0, -1).map((l) => l.replace('node-200', 'wireguard-go-200'));
    expect(pingCycles(parseTrace(cut.join('\n')), new Set([100]), new Set([200]))).toHaveLength(0);
    const dashed = CYCLE.map((l) => l.replace(/node-(\d+)/, 'wireguard-go-$1'));
    const c = pingCycles(parseTrace(dashed.join('\n')), new Set([100]), new Set([200]));
    expect(c).toHaveLength(1);
    expect(c[0]!.hopUs.every((h) => h !== undefined)).toBe(true);
  });
});
