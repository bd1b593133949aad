/**
 * Column plans for the tables: what fits at 80 columns, what a wide terminal adds, and how much
 * room is left for the sparklines. Pure, so tests can check the arithmetic without rendering.
 */

/** At this width and above, tables add secondary columns (tier, p99, 30 s loss, DSCP, bytes). */
export const WIDE_COLUMNS = 120;
/** Sparklines narrower than this say nothing; drop them instead. */
const MIN_SPARK = 6;
/** One character per second of the 60 s window is the most detail the history has. */
const MAX_SPARK = 60;

export interface LinkTablePlan {
  wide: boolean;
  nameWidth: number;
  /** Width of each of the two sparklines (0 = not shown). */
  sparkWidth: number;
}

/** Widths (including the one-space gap after each) of the fixed link columns. */
export const LINK_COLS = { marker: 2, state: 9, tier: 8, rtt: 8, p99: 8, jitter: 8, loss: 12, lossLong: 12, rate: 12, flows: 6 } as const;

export function planLinkTable(columns: number, linkNames: readonly string[]): LinkTablePlan {
  const wide = columns >= WIDE_COLUMNS;
  const nameWidth = Math.min(12, Math.max(5, ...linkNames.map((n) => n.length + 1)));
  const c = LINK_COLS;
  let fixed = c.marker + nameWidth + c.state + c.rtt + c.jitter + c.loss + c.rate + c.flows;
  if (wide) fixed += c.tier + c.p99 + c.lossLong;
  // Two sparklines, each followed by a space; keep one column spare so nothing touches the edge.
  const each = Math.floor((columns - fixed - 1) / 2) - 1;
  const sparkWidth = each >= MIN_SPARK ? Math.min(MAX_SPARK, each) : 0;
  return { wide, nameWidth, sparkWidth };
}

export interface ClassTablePlan {
  wide: boolean;
  showDscp: boolean;
  pathsWidth: number;
}

export const CLASS_COLS = { marker: 2, name: 10, dscp: 16, strategy: 10, flows: 6, moves: 6, txPackets: 10, txBytes: 11, fec: 6, recovered: 10, residual: 7 } as const;

export function planClassTable(columns: number, preferDscp: boolean): ClassTablePlan {
  const wide = columns >= WIDE_COLUMNS;
  const c = CLASS_COLS;
  let fixed = c.marker + c.name + c.strategy + c.flows + c.moves + c.txPackets + c.fec + c.recovered + c.residual;
  if (wide) fixed += c.txBytes;
  const showDscp = (wide || preferDscp) && columns - fixed - c.dscp >= 12;
  if (showDscp) fixed += c.dscp;
  const pathsWidth = Math.max(8, Math.min(30, columns - fixed - 1));
  return { wide, showDscp, pathsWidth };
}

/** RFC 4594 code points per class (core/steer/classes.ts classOfDscp), for the classes table. */
export const CLASS_DSCP_LABELS: Readonly<Record<string, string>> = {
  control: 'CS6 CS7',
  voice: 'EF CS5',
  video: 'AF4x CS4',
  signaling: 'CS3',
  business: 'AF2x AF3x CS2',
  default: 'BE (0) other',
  bulk: 'AF1x CS1',
};
