/**
 * A small JSON Schema (draft 2020-12) checker for the keywords docs/status-schema.json uses. It
 * refuses keywords it does not know, so the schema cannot grow a rule this checker silently skips.
 * Besides validity it reports "undocumented" fields: present in the data, absent from every
 * `properties` that applies, so new snapshot fields cannot slip past the documentation.
 */
type Schema = { [k: string]: unknown };

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', '$defs']);
const KNOWN = new Set([...ANNOTATIONS, '$ref', 'type', 'const', 'enum', 'minimum', 'maximum', 'required', 'properties', 'additionalProperties', 'items']);

export interface SchemaReport {
  errors: string[];
  undocumented: string[];
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export function checkSchema(root: Schema, data: unknown): SchemaReport {
  const report: SchemaReport = { errors: [], undocumented: [] };
  const resolve = (ref: string): Schema => {
    const m = /^#\/\$defs\/([A-Za-z0-9_-]+)$/.exec(ref);
    const defs = root.$defs as Record<string, Schema> | undefined;
    const target = m ? defs?.[m[1]!] : undefined;
    if (!target) throw new Error(`unresolvable $ref ${ref}`);
    return target;
  };
  const walk = (schema: Schema, v: unknown, path: string): void => {
    for (const k of Object.keys(schema)) if (!KNOWN.has(k)) throw new Error(`${path}: schema keyword "${k}" is not supported by this checker`);
    if (typeof schema.$ref === 'string') walk(resolve(schema.$ref), v, path);
    const err = (m: string): void => void report.errors.push(`${path}: ${m}`);
    if (schema.type !== undefined) {
      const want = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      const got = typeOf(v);
      if (!want.some((t) => t === got || (t === 'number' && got === 'integer'))) err(`expected ${want.join('|')}, got ${got}`);
    }
    if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(v)) err(`expected ${JSON.stringify(schema.const)}`);
    if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) err(`${JSON.stringify(v)} not in ${JSON.stringify(schema.enum)}`);
    if (typeof v === 'number') {
      if (typeof schema.minimum === 'number' && v < schema.minimum) err(`${v} < minimum ${schema.minimum}`);
      if (typeof schema.maximum === 'number' && v > schema.maximum) err(`${v} > maximum ${schema.maximum}`);
    }
    if (Array.isArray(v) && schema.items) v.forEach((x, i) => walk(schema.items as Schema, x, `${path}[${i}]`));
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const obj = v as Record<string, unknown>;
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) err(`missing required "${r}"`);
      for (const [k, x] of Object.entries(obj)) {
        if (props[k]) walk(props[k], x, `${path}.${k}`);
        else {
          if (schema.properties) report.undocumented.push(`${path}.${k}`);
          if (schema.additionalProperties === false) err(`unexpected field "${k}"`);
          else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') walk(schema.additionalProperties as Schema, x, `${path}.${k}`);
        }
      }
    }
  };
  walk(root, data, '$');
  return report;
}
