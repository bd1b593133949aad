/**
 * Colours, or none. NO_COLOR (https://no-color.org) and non-TTY output turn colour off; then every
 * state is still readable because it is also spelled out in capitals.
 */
import type { EdgeEventKind, LinkState } from '../core/types.ts';

export type Color = 'green' | 'yellow' | 'red' | 'gray' | 'cyan' | 'magenta' | 'blue';

export interface Theme {
  color: boolean;
}

export function colorEnabled(env: NodeJS.ProcessEnv, isTTY: boolean | undefined): boolean {
  // no-color.org: "when present and not an empty string".
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false') return true;
  return isTTY === true && env.TERM !== 'dumb';
}

export function stateColor(state: LinkState): Color {
  switch (state) {
    case 'up':
      return 'green';
    case 'degraded':
      return 'yellow';
    case 'down':
      return 'red';
    case 'drained':
      return 'magenta';
  }
}

export function eventColor(kind: EdgeEventKind, message: string): Color | undefined {
  switch (kind) {
    case 'linkDown':
      return 'red';
    case 'linkUp':
    case 'peerHello':
      return 'green';
    case 'flowMoved':
      return 'cyan';
    case 'sla':
      return /back within|-> up/.test(message) ? 'green' : 'yellow';
    case 'pathState':
      return /-> down/.test(message) ? 'red' : /-> up/.test(message) ? 'green' : 'yellow';
    case 'config':
      return 'blue';
  }
}

/** A colour prop for ink's <Text>, or nothing when colour is off. */
export function tint(theme: Theme, c: Color | undefined): { color?: Color } {
  return theme.color && c ? { color: c } : {};
}
