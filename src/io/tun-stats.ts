// The kernel's own counters of a network device (the TUN): what `ip -s link` shows, read from
// /sys/class/net/DEV/statistics. The TUN's TX dropped is where packets die when Braid does not
// read the TUN fast enough (the device's queue of txqueuelen packets is full): issue 13's soak
// lost 6% of all packets there while every Braid counter read zero.
//
// Cheap enough to call once a second from the driver: the six files are opened once and re-read
// with pread (one syscall each, no path lookup); a read failure (the device was deleted and
// re-created) reopens them on the next call. sysfs shows the network namespace it was mounted
// in: read the counters from a process in the device's namespace (braid up always is).

import { closeSync, openSync, readSync } from 'node:fs';

/** Counters of one device since it was created (kernel semantics; see docs for each). */
export interface DeviceCounters {
  /** Packets the device received: for a TUN, packets Braid wrote into it. */
  rxPackets: number;
  /** Packets the device sent: for a TUN, packets Braid read from it. */
  txPackets: number;
  /** Received packets the kernel dropped (no buffer, or a packet Braid wrote it could not take). */
  rxDropped: number;
  /** Packets for the device dropped because its queue was full: Braid did not read the TUN fast enough. */
  txDropped: number;
  rxErrors: number;
  txErrors: number;
}

const FIELDS = ['rx_packets', 'tx_packets', 'rx_dropped', 'tx_dropped', 'rx_errors', 'tx_errors'] as const;
type Key = keyof DeviceCounters;
const KEYS: readonly Key[] = ['rxPackets', 'txPackets', 'rxDropped', 'txDropped', 'rxErrors', 'txErrors'];

export class DeviceCounterReader {
  private fds: number[] | undefined;
  private readonly scratch = Buffer.alloc(32);

  /** `sysfsNetDir` is for tests (a fake tree); the default is the real one. */
  constructor(
    readonly device: string,
    private readonly sysfsNetDir = '/sys/class/net',
  ) {}

  /** The counters now, or undefined when the device (or sysfs) cannot be read. Never throws. */
  read(): DeviceCounters | undefined {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.fds === undefined && !this.open()) return undefined;
      const out: DeviceCounters = { rxPackets: 0, txPackets: 0, rxDropped: 0, txDropped: 0, rxErrors: 0, txErrors: 0 };
      let ok = true;
      for (let i = 0; i < FIELDS.length; i++) {
        const v = this.readNumber(this.fds![i]!);
        if (v === undefined) {
          ok = false;
          break;
        }
        out[KEYS[i]!] = v;
      }
      if (ok) return out;
      this.close(); // stale descriptors: the device went away (maybe came back): reopen once
    }
    return undefined;
  }

  close(): void {
    if (this.fds === undefined) return;
    for (const fd of this.fds) {
      try {
        closeSync(fd);
      } catch {
        // already gone
      }
    }
    this.fds = undefined;
  }

  private open(): boolean {
    const fds: number[] = [];
    try {
      for (const f of FIELDS) fds.push(openSync(`${this.sysfsNetDir}/${this.device}/statistics/${f}`, 'r'));
      this.fds = fds;
      return true;
    } catch {
      for (const fd of fds) closeSync(fd);
      return false;
    }
  }

  private readNumber(fd: number): number | undefined {
    let n: number;
    try {
      n = readSync(fd, this.scratch, 0, this.scratch.length, 0);
    } catch {
      return undefined;
    }
    let v = 0;
    let digits = 0;
    for (let i = 0; i < n; i++) {
      const c = this.scratch[i]!;
      if (c >= 0x30 && c <= 0x39) {
        v = v * 10 + (c - 0x30);
        digits++;
      } else break;
    }
    return digits > 0 ? v : undefined;
  }
}

/** Counters that moved between two reads (counters only grow; a reset device reads as the new value). */
export function counterDelta(before: DeviceCounters, after: DeviceCounters): DeviceCounters {
  const d = { ...after };
  for (const k of KEYS) d[k] = after[k] >= before[k] ? after[k] - before[k] : after[k];
  return d;
}
