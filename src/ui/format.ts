/**
 * Pure formatting for the dashboard and `braid status`: numbers to short, fixed-width-friendly
 * strings. Nothing here knows about React, so the text status output and the tests share it.
 */
import type { BondClassStatus, EdgeSnapshot, FlowSnapshot } from '../core/types.ts';

/** "24.1ms", "245ms", "1.24s"; "-" when not measured yet. */
export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 100) return `${ms.toFixed(1)}ms`;
  if (ms < 1000) return `${ms.toFixed(0)}ms`;
  return `${(ms / 1000).toFixed(2)}s`;
}

/** "0.0%", "4.1%", "100%"; "-" when not measured yet. Small losses keep two decimals, since SLAs sit at 1%. */
export function fmtRatio(ratio: number | undefined): string {
  if (ratio === undefined || !Number.isFinite(ratio)) return '-';
  const pct = ratio * 100;
  if (pct >= 99.95) return '100%';
  if (pct > 0 && pct < 1) return `${pct.toFixed(2)}%`;
  return `${pct.toFixed(1)}%`;
}

/** Bits per second, short: "692k", "14.3M", "1.20G", "0". */
export function fmtBpsShort(bps: number | undefined): string {
  if (bps === undefined || !Number.isFinite(bps)) return '-';
  if (bps < 1) return '0';
  if (bps < 1e3) return `${bps.toFixed(0)}`;
  if (bps < 1e6) return `${(bps / 1e3).toFixed(0)}k`;
  if (bps < 1e9) return `${(bps / 1e6).toFixed(1)}M`;
  return `${(bps / 1e9).toFixed(2)}G`;
}

/** Bits per second, long: "14.3 Mbit/s". */
export function fmtBpsLong(bps: number | undefined): string {
  if (bps === undefined || !Number.isFinite(bps)) return '-';
  if (bps < 1e3) return `${bps.toFixed(0)} bit/s`;
  if (bps < 1e6) return `${(bps / 1e3).toFixed(1)} kbit/s`;
  if (bps < 1e9) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  return `${(bps / 1e9).toFixed(2)} Gbit/s`;
}

/** Bytes, binary units like `wg show`: "1.23 MiB". */
export function fmtBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(2)} ${units[u]}`;
}

/** Counts with thousands separators, fixed locale so output does not depend on the box's LANG. */
export function fmtCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Edge time (ms since the edge started) as "12.3s", "4:05.2", "1:04:05". */
export function fmtUptime(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h === 0) return `${m}:${sec.toFixed(1).padStart(4, '0')}`;
  return `${h}:${String(m).padStart(2, '0')}:${String(Math.floor(sec)).padStart(2, '0')}`;
}

/** "3.2s ago", "250ms ago", "never". */
export function fmtAgo(ms: number | undefined): string {
  if (ms === undefined) return 'never';
  return ms < 1000 ? `${ms.toFixed(0)}ms ago` : `${(ms / 1000).toFixed(1)}s ago`;
}

/** Pads or truncates to exactly `width` columns (right-aligned with `right`). */
export function cell(text: string, width: number, right = false): string {
  if (width <= 0) return '';
  if (text.length > width) return width === 1 ? text.slice(0, 1) : text.slice(0, width - 1) + '~';
  return right ? text.padStart(width) : text.padEnd(width);
}

const SPARK_BARS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'] as const;

/**
 * One sparkline character per value, the lowest bar at `minValue` and the highest at `maxValue`.
 * Undefined values are gaps (a blank), so a blackout shows as a hole in the RTT line rather than
 * a stale flat RTT.
 */
export function sparkline(values: ReadonlyArray<number | undefined>, maxValue: number, minValue = 0): string {
  const range = maxValue - minValue;
  let out = '';
  for (const v of values) {
    if (v === undefined || !Number.isFinite(v)) out += ' ';
    else if (range <= 0 || v <= minValue) out += SPARK_BARS[0];
    else out += SPARK_BARS[Math.min(SPARK_BARS.length - 1, Math.floor(((v - minValue) / range) * SPARK_BARS.length))];
  }
  return out;
}

/**
 * Scale for an RTT sparkline: from the window's lowest to its highest value, but at least 2 ms or
 * 20% of the lowest wide, so a steady RTT draws as a low flat line and only real spikes stand up.
 */
export function rttScale(values: ReadonlyArray<number | undefined>): { minValue: number; maxValue: number } {
  const defined = values.filter((x): x is number => x !== undefined && Number.isFinite(x));
  if (defined.length === 0) return { minValue: 0, maxValue: 0 };
  const lo = Math.min(...defined);
  const hi = Math.max(...defined);
  return { minValue: lo, maxValue: Math.max(hi, lo + Math.max(2, lo * 0.2)) };
}

/** "established, chacha20-poly1305, 1:23.0 old", "not established (3 handshake attempts)", "plaintext (no keys configured)". */
export function sessionText(session: EdgeSnapshot['session'] | undefined): string {
  if (!session) return 'unknown';
  if (!session.encrypted) return 'plaintext (no keys configured)';
  const load = session.underLoad ? ', under load (cookies required)' : '';
  if (!session.established) return `not established (${session.handshakeAttempts} handshake attempts)${load}`;
  const age = session.ageMs === undefined ? '' : `, ${fmtUptime(session.ageMs)} old`;
  return `established${session.cipher ? `, ${session.cipher}` : ''}${age}${load}`;
}

/** A flow's links: its path(s), or a bonded flow's share per link ("bond mpls 52% inet 48%"). */
export function flowLinksText(f: FlowSnapshot): string {
  if (f.bond === undefined || f.bond.shares.length === 0) return f.links;
  return `bond ${f.bond.shares.map((s) => `${s.link} ${Math.round(s.ratio * 100)}%`).join(' ')}`;
}

/** One bonded class in one line: its links' shares, then the resequencing of what it receives. */
export function bondClassText(b: BondClassStatus): string {
  const links = b.links.map((l) => (l.member ? `${l.link} ${Math.round(l.ratio * 100)}%` : `${l.link} out (${l.reason ?? '?'})`)).join(' ');
  const e = b.equalize;
  const eq = e === undefined ? '' : `; equalize hold ${e.holdMs.map((h) => fmtMs(h)).join('/')}, depth ${fmtCount(e.heldPackets)} (max ${fmtCount(e.maxDepth)}), waited ${fmtMs(e.holdAvgMs)} avg ${fmtMs(e.holdMaxMs)} max, ${fmtCount(e.early)} early`;
  return `${b.peer !== undefined ? `${b.peer} ` : ''}${b.class}: ${links ? `${links}; ` : ''}reseq bound ${fmtMs(b.boundMs)}, depth ${fmtCount(b.heldPackets)} (max ${fmtCount(b.maxDepth)}), held ${fmtMs(b.holdAvgMs)} avg ${fmtMs(b.holdMaxMs)} max, ${fmtCount(b.timeouts)} timeouts, ${fmtCount(b.late)} late${eq}`;
}
