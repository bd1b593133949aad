/**
 * The `rules:` section of the site config (application rules, steer/rules.ts) and the shipped
 * application catalogue (profiles/apps/*.yaml). config.ts imports `rulesSchema` into its schema
 * and calls `expandRules` after validation:
 *
 *   rules:
 *     - catalogue: teams                 # every rule of profiles/apps/teams.yaml, in its order
 *     - catalogue: sip
 *     - name: erp                        # a rule of the site's own
 *       match: { protocol: tcp, dstPrefixes: [10.9.0.0/16], dstPorts: [443, "8000-8099"] }
 *       set: { class: business }
 *     - name: backups
 *       match: { dscp: [0], dstPorts: ["873"] }
 *       set: { class: bulk, dscp: 8 }    # and remark the inner DSCP as CS1
 *
 * Rules are tried in the order written, catalogues expanded in place; the first match wins.
 * match fields: protocol (tcp, udp, icmp, icmp6, sctp, gre, esp or 0..255), srcPrefixes,
 * dstPrefixes (IPv4 or IPv6 prefixes), srcPorts, dstPorts, ports (either side; a port or
 * "low-high"), dscp (inner DSCP values as they arrive). set: class and/or dscp.
 *
 * Errors name the field and the fix, like the rest of the config:
 *   config site.yaml: rules[2].match.dstPorts[0]: expected a port 0..65535 or a range like "50000-50019", got "50000-" ...
 *   config site.yaml: rules[0].catalogue: no application catalogue "temas"; fix: use one of sip, teams, webex, zoom ...
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { CLASS_NAMES } from '../core/steer/classes.ts';
import { MAX_RULE_ENTRIES, MAX_RULES, PROTOCOL_NUMBERS, parsePrefix, type RuleSpec } from '../core/steer/rules.ts';

/** The shipped application catalogue. */
export const APP_CATALOGUE_DIR = fileURLToPath(new URL('../../profiles/apps/', import.meta.url));

const RULE_NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,47}$/;

const portRange = z.union([z.number(), z.string()]).transform((v, ctx): [number, number] => {
  const text = String(v).trim();
  const m = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(text);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || lo > 65535 || hi > 65535 || lo > hi) {
    ctx.addIssue({ code: 'custom', message: `expected a port 0..65535 or a range like "50000-50019" (low first), got "${text}"` });
    return z.NEVER;
  }
  return [lo, hi];
});

const portList = z.array(portRange).min(1, 'expected at least one port or range').max(MAX_RULE_ENTRIES, `at most ${MAX_RULE_ENTRIES} ranges`);

const prefix = z.string().refine((s) => parsePrefix(s.trim()) !== undefined, {
  message: 'expected an IPv4 or IPv6 prefix like 10.1.0.0/16, 192.0.2.7 or 2603:1063::/38',
});
const prefixList = z.array(prefix).min(1, 'expected at least one prefix').max(MAX_RULE_ENTRIES, `at most ${MAX_RULE_ENTRIES} prefixes`);

const protocol = z.union([z.number().int().min(0).max(255), z.string()]).refine(
  (p) => typeof p === 'number' || PROTOCOL_NUMBERS[p.toLowerCase()] !== undefined || (/^\d{1,3}$/.test(p) && Number(p) <= 255),
  { message: `expected ${Object.keys(PROTOCOL_NUMBERS).join(', ')} or a protocol number 0..255` },
);

const dscpValue = z.number().int().min(0, 'expected a DSCP 0..63').max(63, 'expected a DSCP 0..63 (EF is 46, AF41 34, CS1 8)');

export const ruleMatchSchema = z.strictObject({
  protocol: protocol.optional(),
  srcPrefixes: prefixList.optional(),
  dstPrefixes: prefixList.optional(),
  srcPorts: portList.optional(),
  dstPorts: portList.optional(),
  ports: portList.optional(),
  dscp: z.array(dscpValue).min(1).max(64).optional(),
});

export const ruleSetSchema = z
  .strictObject({
    class: z.enum(CLASS_NAMES, { error: `expected a class: ${CLASS_NAMES.join(', ')}` }).optional(),
    dscp: dscpValue.optional(),
  })
  .refine((s) => s.class !== undefined || s.dscp !== undefined, { message: 'set needs a class, a dscp or both, e.g. set: { class: voice }' });

export const ruleSchema = z.strictObject({
  name: z.string().regex(RULE_NAME_RE, 'expected a short lowercase name like "teams-audio" (a-z, 0-9, . - _, at most 48)'),
  match: ruleMatchSchema,
  set: ruleSetSchema,
  /** Where the ports/prefixes come from (a vendor's page); catalogues carry one per file too. */
  source: z.string().optional(),
});

const catalogueRef = z.strictObject({
  catalogue: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'expected a catalogue name like "teams" (a file in profiles/apps/)'),
});

type RuleOut = z.output<typeof ruleSchema>;
type CatalogueRefOut = z.output<typeof catalogueRef>;

/**
 * One entry of `rules:`: a shipped catalogue by name ({ catalogue: NAME }) or a rule of the site's
 * own. Picked by the `catalogue` key rather than a zod union, so that an error inside a rule
 * names its field (a union reports only "matches neither").
 */
export const ruleEntrySchema = z.unknown().transform((v, ctx): RuleOut | CatalogueRefOut => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    ctx.addIssue({ code: 'custom', message: 'expected { catalogue: NAME } or a rule { name, match: {...}, set: { class, dscp } }' });
    return z.NEVER;
  }
  const res = 'catalogue' in v ? catalogueRef.safeParse(v) : ruleSchema.safeParse(v);
  if (res.success) return res.data;
  for (const issue of res.error.issues) {
    const message = issue.code === 'unrecognized_keys' ? `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
    ctx.addIssue({ code: 'custom', message, path: issue.path });
  }
  return z.NEVER;
});

/** The config's `rules:` section (config.ts: `rules: rulesSchema.optional()`). */
export const rulesSchema = z.array(ruleEntrySchema).max(MAX_RULES, `at most ${MAX_RULES} rules`);
export type RuleEntry = RuleOut | CatalogueRefOut;

/** A catalogue file in profiles/apps/. */
export const appCatalogueSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/),
  description: z.string(),
  /** The vendor's page the ports come from. */
  source: z.string().url('expected the URL of the vendor page the ports come from'),
  rules: z.array(ruleSchema).min(1).max(MAX_RULES),
});
export type AppCatalogue = z.output<typeof appCatalogueSchema>;

function fieldPath(prefix: string, path: ReadonlyArray<PropertyKey>): string {
  let out = prefix;
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function zodError(source: string, prefix: string, err: z.ZodError, fix: string): BraidError {
  const issue = err.issues[0]!;
  const field = fieldPath(prefix, issue.path);
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys') msg = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: ${field}: ${msg}`, { field, fix });
}

/** The catalogue names shipped in `dir`. */
export function listAppCatalogues(dir: string = APP_CATALOGUE_DIR): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -'.yaml'.length))
      .sort();
  } catch {
    return [];
  }
}

/** Reads and validates profiles/apps/NAME.yaml. */
export function loadAppCatalogue(name: string, dir: string = APP_CATALOGUE_DIR): AppCatalogue {
  const file = join(dir, `${name}.yaml`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    const known = listAppCatalogues(dir);
    throw new BraidError(ErrorCode.CONFIG_INVALID, `application catalogue "${name}": no file ${file}`, {
      fix: known.length > 0 ? `use one of ${known.join(', ')}` : `put the catalogue in ${dir}`,
    });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: false });
  } catch (e) {
    throw new BraidError(ErrorCode.CONFIG_INVALID, `${file}: not valid YAML: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`, { fix: 'fix the YAML syntax' });
  }
  const res = appCatalogueSchema.safeParse(doc);
  if (!res.success) throw zodError(file, '', res.error, `correct the field in ${file}`);
  if (res.data.name !== name) {
    throw new BraidError(ErrorCode.CONFIG_INVALID, `${file}: name: "${res.data.name}" differs from the file name "${name}"`, { field: 'name', fix: 'rename one to match the other' });
  }
  return res.data;
}

/** A rule entry as written (before zod's transforms), for validating a `rules:` list alone. */
export function parseRules(doc: unknown, source: string): RuleEntry[] {
  const res = rulesSchema.safeParse(doc);
  if (!res.success) throw zodError(source, 'rules', res.error, `correct it in ${source} (see README "Application rules")`);
  return res.data;
}

function toSpec(r: RuleOut): RuleSpec {
  const m = r.match;
  return {
    name: r.name,
    match: {
      ...(m.protocol !== undefined ? { protocol: m.protocol } : {}),
      ...(m.srcPrefixes ? { srcPrefixes: m.srcPrefixes.map((s) => s.trim()) } : {}),
      ...(m.dstPrefixes ? { dstPrefixes: m.dstPrefixes.map((s) => s.trim()) } : {}),
      ...(m.srcPorts ? { srcPorts: m.srcPorts } : {}),
      ...(m.dstPorts ? { dstPorts: m.dstPorts } : {}),
      ...(m.ports ? { ports: m.ports } : {}),
      ...(m.dscp ? { dscp: m.dscp } : {}),
    },
    set: { ...(r.set.class !== undefined ? { class: r.set.class } : {}), ...(r.set.dscp !== undefined ? { dscp: r.set.dscp } : {}) },
  };
}

/**
 * The validated `rules:` entries as the core's ordered RuleSpec list (new RuleSet(specs)):
 * catalogues expanded in place from `dir`. Throws a BraidError naming the entry for an unknown
 * catalogue, a duplicate rule name or too many rules in all.
 */
export function expandRules(entries: readonly RuleEntry[], source: string, dir: string = APP_CATALOGUE_DIR): RuleSpec[] {
  const out: RuleSpec[] = [];
  const seen = new Map<string, string>();
  entries.forEach((e, i) => {
    const field = `rules[${i}]`;
    let rules: RuleOut[];
    if ('catalogue' in e) {
      const known = listAppCatalogues(dir);
      if (!known.includes(e.catalogue)) {
        throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: ${field}.catalogue: no application catalogue "${e.catalogue}"`, {
          field: `${field}.catalogue`,
          fix: known.length > 0 ? `use one of ${known.join(', ')} (files in ${dir})` : `put the catalogue in ${dir}`,
        });
      }
      rules = loadAppCatalogue(e.catalogue, dir).rules;
    } else {
      rules = [e];
    }
    for (const r of rules) {
      const where = 'catalogue' in e ? `${field} (catalogue ${e.catalogue})` : field;
      const before = seen.get(r.name);
      if (before !== undefined) {
        throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: ${where}: rule name "${r.name}" is used twice (first in ${before})`, {
          field: `${field}.name`,
          fix: 'give the rule its own name (counters and the flows view show rules by name), or list the catalogue once',
        });
      }
      seen.set(r.name, where);
      out.push(toSpec(r));
    }
  });
  if (out.length > MAX_RULES) {
    throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: rules: ${out.length} rules with the catalogues expanded, at most ${MAX_RULES}`, {
      field: 'rules',
      fix: 'drop catalogues or rules you do not need',
    });
  }
  return out;
}
