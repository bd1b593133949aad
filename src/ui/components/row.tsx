/** One table line made of pre-padded cells, each with its own style; one <Text>, never wraps. */
import type { ReactElement } from 'react';
import { Text } from 'ink';
import { paint } from '../ansi.ts';
import type { Color, Theme } from '../theme.ts';

export interface Cell {
  text: string;
  color?: Color | undefined;
  bold?: boolean;
  /** Reverse video for the selected row's name; only with colour on (the ">" marker says it otherwise). */
  inverse?: boolean;
}

export function rowText(cells: readonly Cell[], theme: Theme, dim = false): string {
  let out = '';
  for (const c of cells) out += paint(theme, c.text, { color: c.color, bold: c.bold, inverse: c.inverse, dim: dim && !c.color });
  return out;
}

export function Row({ cells, theme, dim = false }: { cells: Cell[]; theme: Theme; dim?: boolean }): ReactElement {
  return <Text wrap="truncate">{rowText(cells, theme, dim)}</Text>;
}

/** A section title line like "events" with an optional note after it. */
export function Title({ text, note, theme }: { text: string; note?: string | undefined; theme: Theme }): ReactElement {
  return <Text wrap="truncate">{paint(theme, text, { bold: true }) + (note ? paint(theme, `  ${note}`, { dim: true }) : '')}</Text>;
}
