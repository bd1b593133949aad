/**
 * YAML with source positions, for every YAML file Braid reads (site config, scenarios, link
 * profiles): one error format, `FILE:LINE:COLUMN: field: problem; fix: ...` (DESIGN.md section 6).
 *
 * Stages: parseDocument with a LineCounter -> the first syntax error becomes a YamlSyntaxError
 * with its `FILE:LINE:COLUMN` -> the plain JS value for the schema (zod) -> `where(path)` maps a
 * field path (`['links', 1, 'interface']`, or the string `links[1].interface`) back to the line and
 * column of its value (or of its key, or of the nearest enclosing node when the field is missing).
 * Lines and columns are 1-based, like compilers and editors count them.
 */
import { isCollection, isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar, visit, type Document, type Node } from 'yaml';

/** A YAML syntax error at a position: `location` is `FILE:LINE:COLUMN`, `reason` the parser's words. */
export class YamlSyntaxError extends Error {
  readonly location: string;
  readonly reason: string;
  constructor(location: string, reason: string) {
    super(`${location}: not valid YAML: ${reason}`);
    this.name = 'YamlSyntaxError';
    this.location = location;
    this.reason = reason;
  }
}

export interface YamlSource {
  readonly file: string;
  /** The document as plain JS (what `yaml.parse` returns). */
  readonly value: unknown;
  /**
   * `FILE:LINE:COLUMN` of a field: its value, or with `key: true` its key; a field that is not in
   * the file resolves to the nearest node that is (a missing `site` points at the document).
   */
  where(path: ReadonlyArray<PropertyKey> | string, opts?: { key?: boolean }): string;
}

/** `links[1].interface` -> ['links', 1, 'interface'] (the fieldPath format of the loaders). */
export function fieldKeys(field: string): Array<string | number> {
  if (field === '' || field === '(top level)') return [];
  const keys: Array<string | number> = [];
  for (const m of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) keys.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return keys;
}

/** Parses YAML keeping positions. Throws YamlSyntaxError on the first syntax error. */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
    return `${file}:${line}:${col}`;
  };
  const firstError = doc.errors[0];
  if (firstError) throw new YamlSyntaxError(at(syntaxErrorOffset(doc, text, firstError.pos[0])), firstError.message.split('\n')[0]!.replace(/:$/, ''));
  const value: unknown = doc.toJS();
  return {
    file,
    value,
    where(path, opts = {}) {
      return at(offsetOf(doc, typeof path === 'string' ? fieldKeys(path) : path, opts.key === true));
    },
  };
}

/**
 * An unclosed `[`, `{` or quote is reported at the end of the file, where the parser gave up:
 * point at where it was opened instead (the last flow collection or quoted scalar that runs to
 * the end).
 */
function syntaxErrorOffset(doc: Document, text: string, offset: number): number {
  if (offset < text.trimEnd().length) return offset;
  let opened: number | undefined;
  visit(doc, {
    Node(_key, node) {
      const unclosedFlow = isCollection(node) && node.flow === true;
      const quoted = isScalar(node) && (node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE);
      if ((unclosedFlow || quoted) && node.range && node.range[1] >= text.trimEnd().length) opened = node.range[0];
    },
  });
  return opened ?? offset;
}

/** Start offset of the node a path names (see YamlSource.where). */
function offsetOf(doc: Document, path: ReadonlyArray<PropertyKey>, wantKey: boolean): number {
  const start = (n: unknown): number | undefined => ((n as Node | null)?.range ? (n as Node).range![0] : undefined);
  let node: unknown = doc.contents;
  let best = start(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (!pair) break;
      const keyAt = start(pair.key);
      const valueAt = start(pair.value);
      best = (last && wantKey ? keyAt : (valueAt ?? keyAt)) ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (item === undefined) break;
      best = start(item) ?? best;
      node = item;
    } else {
      break;
    }
  }
  return best;
}
