/**
 * Styled strings for the dashboard's rows. Each row is one ink <Text> holding one string with
 * its own SGR codes, rather than a <Text> per cell: a 160x48 overview has ~400 cells, and one
 * node per line cut a frame from ~45 ms to a few ms (measured with the demo world on this box).
 * With colour off the strings are plain.
 */
import type { Color, Theme } from './theme.ts';

export interface Style {
  color?: Color | undefined;
  bold?: boolean | undefined;
  dim?: boolean | undefined;
  inverse?: boolean | undefined;
}

const FG: Record<Color, number> = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90 };

export function paint(theme: Theme, text: string, style: Style): string {
  if (!theme.color || text === '') return text;
  const codes: number[] = [];
  if (style.bold) codes.push(1);
  if (style.dim) codes.push(2);
  if (style.inverse) codes.push(7);
  if (style.color) codes.push(FG[style.color]);
  return codes.length ? `\x1b[${codes.join(';')}m${text}\x1b[0m` : text;
}
