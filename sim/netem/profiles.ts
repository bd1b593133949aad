/**
 * Link profiles: what a kind of WAN link looks like (profiles/links/*.yaml), as netem specs per
 * direction plus the capacity and cost tier the steering engine plans with.
 *
 *   const lte = loadLinkProfile(join(LINK_PROFILES_DIR, 'lte.yaml'));
 *   new NetemEngine(lte.up, rng);
 *
 * "up" is what the branch sends (towards the WAN), "down" what it receives. Every problem in a
 * file is a LinkProfileError whose message is one line naming the file, the field and the fix.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BraidError, ErrorCode } from '../../src/core/errors.ts';
import { parseYamlSource, YamlSyntaxError, type YamlSource } from '../../src/control/yaml-source.ts';
import { formatRate, NetemSpecError, parseNetemSpec, type NetemSpec } from './spec.ts';

export type CostTier = 'primary' | 'overflow' | 'backup';
export const COST_TIERS: readonly CostTier[] = ['primary', 'overflow', 'backup'];

export interface LinkProfile {
  name: string;
  description: string;
  costTier: CostTier;
  /** Link capacity in bits per second, per direction. */
  bandwidthBps: { up: number; down: number };
  /** Impairment of what the branch sends. */
  up: NetemSpec;
  /** Impairment of what the branch receives. */
  down: NetemSpec;
  /** The specs as written in the file. */
  upText: string;
  downText: string;
  /** The file (or label) it was read from. */
  source: string;
}

/** The shipped profiles. */
export const LINK_PROFILES_DIR = fileURLToPath(new URL('../../profiles/links/', import.meta.url));

export class LinkProfileError extends BraidError {
  readonly source: string;

  /** `location`: `FILE:LINE:COLUMN` (yaml-source.ts), in place of the bare file name. */
  constructor(source: string, field: string | undefined, message: string, fix?: string, location?: string) {
    super(ErrorCode.CONFIG_INVALID, `${location ?? source}: ${field === undefined ? '' : `${field}: `}${message}`, {
      ...(fix === undefined ? {} : { fix }),
      ...(field === undefined ? {} : { field }),
    });
    this.name = 'LinkProfileError';
    this.source = source;
  }
}

const bitsPerSecond = z
  .number({ error: 'expected bits per second, a number like 20000000' })
  .positive({ error: 'expected bits per second above 0' })
  .finite({ error: 'expected a finite number of bits per second' });
const netemText = z.string({ error: 'expected a netem spec in quotes, like "delay 20ms 2ms loss 0.1% rate 20mbit"' });

const ProfileSchema = z.strictObject({
  name: z
    .string({ error: 'expected a name like "lte"' })
    .regex(/^[a-z0-9][a-z0-9-]*$/, { error: 'expected lowercase letters, digits and "-", like "leo-satellite"' }),
  description: z
    .string({ error: 'expected a one-line description' })
    .min(1, { error: 'expected a one-line description' })
    .regex(/^[^\n]*$/, { error: 'expected a single line' }),
  costTier: z.enum(COST_TIERS, { error: 'expected primary, overflow or backup' }),
  bandwidthBps: z.strictObject(
    { up: bitsPerSecond, down: bitsPerSecond },
    { error: 'expected "up" and "down" in bits per second' },
  ),
  up: netemText,
  down: netemText,
});

const FIELDS = Object.keys(ProfileSchema.shape).join(', ');

/** Parses one profile. `source` names it in errors; a *.yaml name must match the profile's name. */
export function parseLinkProfile(text: string, source: string): LinkProfile {
  let src: YamlSource;
  try {
    src = parseYamlSource(text, source);
  } catch (e) {
    if (!(e instanceof YamlSyntaxError)) throw e;
    throw new LinkProfileError(source, undefined, `not valid YAML: ${e.reason}`, 'fix the YAML syntax at that line', e.location);
  }
  try {
    return resolveLinkProfile(src.value, source);
  } catch (e) {
    // `FILE: field: problem` -> `FILE:LINE:COLUMN: field: problem` (the key, for an unknown field).
    const prefix = `${source}: ${e instanceof LinkProfileError && e.field !== undefined ? `${e.field}: ` : ''}`;
    if (!(e instanceof LinkProfileError) || !e.message.startsWith(prefix)) throw e;
    const rest = e.message.slice(prefix.length);
    throw new LinkProfileError(source, e.field, rest, e.fix, src.where(e.field ?? [], { key: rest === 'unknown field' }));
  }
}

function resolveLinkProfile(doc: unknown, source: string): LinkProfile {
  const result = ProfileSchema.safeParse(doc);
  if (!result.success) {
    // A misspelt key also makes its correct spelling "missing": report the misspelling.
    const issue = result.error.issues.find((i) => i.code === 'unrecognized_keys') ?? result.error.issues[0]!;
    const field = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      const key = [field, issue.keys[0]].filter((p) => p !== '').join('.');
      throw new LinkProfileError(source, key, 'unknown field', `remove it or fix its spelling (fields: ${FIELDS})`);
    }
    if (issue.path.length === 0) {
      throw new LinkProfileError(source, undefined, `expected a mapping with ${FIELDS}`);
    }
    const value = valueAt(doc, issue.path);
    if (value === undefined) throw new LinkProfileError(source, field, `missing; ${issue.message}`);
    throw new LinkProfileError(source, field, `${issue.message}, got ${shortJson(value)}`);
  }
  const p = result.data;
  const stem = basename(source).replace(/\.ya?ml$/, '');
  if (stem !== basename(source) && stem !== p.name) {
    throw new LinkProfileError(source, 'name', `"${p.name}" differs from the file name "${stem}"`, 'rename one to match the other');
  }
  const up = specOf(source, 'up', p.up, p.bandwidthBps.up);
  const down = specOf(source, 'down', p.down, p.bandwidthBps.down);
  return {
    name: p.name,
    description: p.description,
    costTier: p.costTier,
    bandwidthBps: { up: p.bandwidthBps.up, down: p.bandwidthBps.down },
    up,
    down,
    upText: p.up,
    downText: p.down,
    source,
  };
}

function specOf(source: string, field: 'up' | 'down', text: string, bandwidthBps: number): NetemSpec {
  let spec: NetemSpec;
  try {
    spec = parseNetemSpec(text);
  } catch (e) {
    if (e instanceof NetemSpecError) throw new LinkProfileError(source, field, e.message);
    throw e;
  }
  // The capacity steering and the shaper plan with must fit the emulated bottleneck: equal, or
  // below it (shaping under the line rate keeps the queue in Braid, where priorities apply; on
  // ATM lines that is the only way to account for cell overhead). Above it is a profile error.
  if (spec.rate !== undefined && bandwidthBps > spec.rate.rateBps) {
    throw new LinkProfileError(
      source,
      field,
      `bandwidthBps.${field} ${bandwidthBps} is above the line rate ${formatRate(spec.rate.rateBps)}`,
      `set bandwidthBps.${field} to at most ${spec.rate.rateBps} or the rate to at least ${formatRate(bandwidthBps)}`,
    );
  }
  return spec;
}

function shortJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function valueAt(doc: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = doc;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

export function loadLinkProfile(path: string): LinkProfile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new LinkProfileError(path, undefined, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 'check the path');
  }
  return parseLinkProfile(text, path);
}

/** Every *.yaml profile in `dir`, sorted by name. */
export function loadLinkProfiles(dir: string = LINK_PROFILES_DIR): LinkProfile[] {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
  const profiles = files.map((f) => loadLinkProfile(join(dir, f)));
  return profiles.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The shipped (or `dir`'s) profile called `name`. */
export function findLinkProfile(name: string, dir: string = LINK_PROFILES_DIR): LinkProfile {
  const profiles = loadLinkProfiles(dir);
  const found = profiles.find((p) => p.name === name);
  if (found === undefined) {
    throw new BraidError(ErrorCode.CONFIG_INVALID, `no link profile "${name}" in ${dir}`, {
      fix: `use one of ${profiles.map((p) => p.name).join(', ')}`,
    });
  }
  return found;
}
