// The kernel's own view of the link sockets: datagrams it dropped because a socket's receive
// buffer was full, and the bytes waiting in it now. Read from /proc/self/net/udp and udp6 (the
// `drops` and `rx_queue` columns), matched to our sockets by inode.
//
// Why (issue 13, "visible drops"): with TUN offloads on, the link sockets receive into 256 KiB
// (udp.ts OFFLOAD_RCVBUF_BYTES) so that a bulk TCP flow's excess dies there rather than queueing
// for tens of ms. That is now where a tunnel's loss under load happens, and it was visible only
// machine-wide (/proc/net/snmp RcvbufErrors), never per link in `braid status`. A stalled edge (a
// long GC, a slow snapshot) also overflows it: the same counter says so.
//
// Cost: one read of two small proc files per call (a handful of lines on an edge: its own
// sockets' namespace); called at status/scrape time, never per packet. Never throws.

import { fstatSync, readFileSync } from 'node:fs';

export interface UdpSocketRow {
  /** Bytes waiting in the receive queue (kernel accounting: rmem_alloc, truesize, not payload). */
  rxQueuedBytes: number;
  /** Datagrams the kernel dropped for this socket: receive buffer full (or a bad checksum). */
  drops: number;
}

/**
 * Parses /proc/net/udp or udp6 text into rows by inode. Lines that do not parse are skipped
 * (a kernel with other columns must not break `braid status`).
 */
export function parseUdpTable(text: string, into: Map<number, UdpSocketRow> = new Map()): Map<number, UdpSocketRow> {
  const lines = text.split('\n');
  // Columns by the header's names, not by position: "tx_queue rx_queue" is one field in the data
  // rows ("00000000:00000000") and "tm->when" too, so map header names to data field indexes.
  const header = lines[0]?.trim().split(/\s+/) ?? [];
  const dataIndex = (name: string): number => {
    let idx = 0;
    for (const h of header) {
      if (h === name) return idx;
      if (h === 'tx_queue' || h === 'tr') continue; // joined with the next name in the rows
      idx++;
    }
    return -1;
  };
  const queueCol = dataIndex('rx_queue');
  const inodeCol = dataIndex('inode');
  const dropsCol = dataIndex('drops');
  if (queueCol < 0 || inodeCol < 0 || dropsCol < 0) return into;
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length <= Math.max(queueCol, inodeCol, dropsCol)) continue;
    const queue = f[queueCol]!.split(':')[1];
    const inode = Number(f[inodeCol]);
    const drops = Number(f[dropsCol]);
    const queued = queue === undefined ? NaN : parseInt(queue, 16);
    if (!Number.isSafeInteger(inode) || inode <= 0 || !Number.isFinite(drops) || !Number.isFinite(queued)) continue;
    into.set(inode, { rxQueuedBytes: queued, drops });
  }
  return into;
}

/** The socket inode of `fd`, or undefined when it cannot be read (closed fd). */
export function socketInode(fd: number): number | undefined {
  try {
    const st = fstatSync(fd);
    return st.isSocket() ? st.ino : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Rows of every UDP socket (IPv4 and IPv6 tables) of this process's network namespace. `procNetDir`
 * is for tests (a fake directory).
 */
export function readUdpTables(procNetDir = '/proc/self/net'): Map<number, UdpSocketRow> {
  const out = new Map<number, UdpSocketRow>();
  for (const file of ['udp', 'udp6']) {
    try {
      parseUdpTable(readFileSync(`${procNetDir}/${file}`, 'utf8'), out);
    } catch {
      // No IPv6 in this kernel, or no procfs: those sockets just go unreported.
    }
  }
  return out;
}

/**
 * The datagrams behind `droppedSkbs` new drops of a link socket. The kernel's per-socket counter
 * counts socket buffers, and with UDP GRO one buffer is a whole train (up to 64 datagrams): a
 * bulk TCP run counted 1,722 drops for ~50,000 missing datagrams (tmp scratch run, 17:53; with
 * GRO off the counts agreed to the datagram). So the drops are scaled by what the socket received
 * in the same interval, datagrams per buffer (a train counts once, a single datagram once): the
 * buffers dropped were in the same stream. Arguments are the interval's deltas.
 */
export function droppedDatagramsEstimate(droppedSkbs: number, rxDatagrams: number, groTrains: number, groDatagrams: number): number {
  if (!(droppedSkbs > 0)) return 0;
  const skbs = rxDatagrams - groDatagrams + groTrains;
  if (!(skbs > 0) || !(rxDatagrams >= skbs)) return droppedSkbs;
  return Math.round(droppedSkbs * (rxDatagrams / skbs));
}
