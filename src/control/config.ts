/**
 * Site configuration: one YAML file, validated at load with zod. Every problem becomes one
 * BraidError line naming the place in the file, the field and the fix, e.g.
 *   /etc/braid/braid.yaml:14:16: links[1].interface: interface "eth9" does not exist on this box; fix: ...
 * Checks throw `config FILE: field: problem` with `field` set; parseConfigText (and
 * checkInterfaces) turn the prefix into FILE:LINE:COLUMN through yaml-source.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { BraidError, ErrorCode } from '../core/errors.ts';
import { parseYamlSource, YamlSyntaxError, type YamlSource } from './yaml-source.ts';
import { checkPeers, peersSchema } from './config-peers.ts';
import { checkRegistry, registrySchema } from './config-registry.ts';
import { expandRules, rulesSchema } from './config-rules.ts';
import type { RuleSpec } from '../core/steer/rules.ts';
import { formatAddress, parsePrefix } from '../core/routing/prefix.ts';
import { DEFAULT_TUN_QUEUES, DEFAULT_TUN_TX_QUEUE_LEN } from '../io/tun.ts';
import { DEFAULT_LISTEN_PORT, DEFAULT_TUN_MTU, MAX_LINKS } from '../core/constants.ts';
import { CLASS_NAMES, DEFAULT_POLICIES, NO_BOND_CLASSES, STRATEGIES, type ClassName, type ClassPolicy } from '../core/steer/classes.ts';
import { RESEQ_MAX_BOUND_MS } from '../core/constants.ts';
import { DEFAULT_FEC_POLICIES, checkFecPolicy, type ClassFecPolicy } from '../core/fec/policy.ts';
import { FEC_MAX_FLUSH_MS, FEC_MAX_K, FEC_MAX_M } from '../core/fec/limits.ts';
import { CODEL_TARGET_MS, DEFAULT_QUEUE_POLICIES, EQUALIZE_QUEUE_MS, EQUALIZE_QUEUE_PACKETS, MAX_QUEUE_PACKETS, type ClassQueuePolicy } from '../core/qos/policy.ts';

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const IFNAME_RE = /^[A-Za-z0-9_.:@-]{1,15}$/;

/** "100mbit", "1.5gbit", "800kbit", or a number of bits per second. */
const bandwidth = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)?$/i.exec(v.trim());
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `expected a rate like "100mbit" or a number of bit/s, got "${v}"` });
    return z.NEVER;
  }
  const n = Number(m[1]);
  const unit = (m[2] ?? 'bit').toLowerCase();
  const mult: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9 };
  return Math.round(n * mult[unit]!);
});

const ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, 'expected an IPv4 address like 192.0.2.1');
const cidr = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/, 'expected an IPv4 prefix like 10.0.0.1/30');
const endpoint = z
  .string()
  .regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}:\d{1,5}$/, 'expected "address:port" like 192.0.2.20:51900')
  .transform((s) => {
    const i = s.lastIndexOf(':');
    return { address: s.slice(0, i), port: Number(s.slice(i + 1)) };
  })
  .refine((e) => e.port > 0 && e.port < 65536, 'port must be 1..65535');
/** A local address to bind a link's socket to: IPv4, or IPv6 ('::' binds both families). */
const bindAddress = z.string().transform((s, ctx): string => {
  const t = s.trim();
  if (/^[\d.]+$/.test(t) && ipv4.safeParse(t).success) return t;
  if (t.includes(':')) {
    const text = t.startsWith('[') && t.endsWith(']') ? t.slice(1, -1) : t;
    try {
      const p = parsePrefix(text);
      if (p.family === 6) return formatAddress(p.bytes);
    } catch {
      // reported below
    }
  }
  ctx.addIssue({ code: 'custom', message: `expected an IPv4 address like 192.0.2.10 or an IPv6 one like 2001:db8::10 or "::" (both families), got "${s}"` });
  return z.NEVER;
});
/** An IPv6 prefix with the host's address, e.g. fd99::1/64 (the TUN's IPv6 address). */
const cidr6 = z.string().transform((s, ctx): string => {
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(s.trim());
  if (m && m[1]!.includes(':') && Number(m[2]) <= 128) {
    try {
      const p = parsePrefix(m[1]!);
      if (p.family === 6) return `${formatAddress(p.bytes)}/${m[2]}`;
    } catch {
      // reported below
    }
  }
  ctx.addIssue({ code: 'custom', message: `expected an IPv6 address with its prefix length like fd99::1/64, got "${s}"` });
  return z.NEVER;
});
const key = z.string().regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/, 'expected a base64 X25519 key (44 characters, as printed by `braid pubkey`)');

export const linkSchema = z.strictObject({
  name: z.string().regex(NAME_RE, 'expected a short lowercase name like "mpls" (a-z, 0-9, - and _, at most 32)'),
  interface: z.string().regex(IFNAME_RE, 'expected a Linux interface name like "eth1"'),
  /** Local address: IPv4, IPv6 (an IPv6-only link), or '::' (both families); default 0.0.0.0. */
  bind: bindAddress.default('0.0.0.0'),
  port: z.number().int().min(1).max(65535).default(DEFAULT_LISTEN_PORT),
  bandwidthUp: bandwidth.optional(),
  bandwidthDown: bandwidth.optional(),
  costTier: z.enum(['primary', 'overflow', 'backup']).default('primary'),
  dscp: z.number().int().min(0).max(63).default(0),
  /**
   * Optional external target pinged through this link's interface (an ISP gateway): tells
   * "the ISP is down" from "the peer is down". Needs CAP_NET_RAW.
   */
  healthTarget: ipv4.optional(),
});

export { peerSchema } from './config-peers.ts';

/**
 * Per-class overrides (`classes:`), each field optional, merged onto the built-in defaults
 * (steer/classes.ts, fec/policy.ts, qos/policy.ts):
 *   classes:
 *     voice: { outerDscp: 46, strategy: duplicate, sla: { lossRatio: 0.02 }, fec: { k: 16, maxM: 6 } }
 *     bulk:  { fec: { enabled: true, minM: 4, maxM: 4 }, queue: { weight: 2 } }
 */
const classOverrideSchema = z.strictObject({
  /** DSCP on this class's underlay packets. */
  outerDscp: z.number().int().min(0).max(63).optional(),
  /** best | balance | duplicate | bond (issue 17: one flow's packets over every usable link; never voice). */
  strategy: z.enum(STRATEGIES, { error: (iss) => `expected best, balance, duplicate or bond, got ${JSON.stringify(iss.input)}` }).optional(),
  /**
   * strategy bond: maxDelayGapMs: paths whose one-way delay exceeds the fastest's by more than this
   * stay out of the bond. equalizeDelay: the receiver gives every packet of the class the slowest
   * member's delay (one RTT for TCP whatever path a packet took; docs/STEERING.md "Bonding").
   */
  bond: z.strictObject({ maxDelayGapMs: z.number().positive().max(RESEQ_MAX_BOUND_MS).optional(), equalizeDelay: z.boolean().optional() }).optional(),
  sla: z
    .strictObject({
      lossRatio: z.number().min(0).max(1).optional(),
      rttMs: z.number().positive().optional(),
      jitterMs: z.number().min(0).optional(),
    })
    .optional(),
  fec: z
    .strictObject({
      enabled: z.boolean().optional(),
      k: z.number().int().min(1).max(FEC_MAX_K).optional(),
      minM: z.number().int().min(0).max(FEC_MAX_M).optional(),
      maxM: z.number().int().min(0).max(FEC_MAX_M).optional(),
      flushMs: z.number().min(0).max(FEC_MAX_FLUSH_MS).optional(),
      targetResidualLossRatio: z.number().gt(0).lt(1).optional(),
      parityPlacement: z.enum(['spread', 'same']).optional(),
      maxOverheadRatio: z.number().gt(0).max(FEC_MAX_M).optional(),
      /** Judge paths for this class on the loss left after FEC (default: voice on, others off). */
      slaAfterFec: z.boolean().optional(),
    })
    .optional(),
  queue: z
    .strictObject({
      weight: z.number().int().min(1).max(100).optional(),
      maxPackets: z.number().int().min(1).max(MAX_QUEUE_PACKETS).optional(),
      maxBytes: z.number().int().min(1500).optional(),
      /**
       * CoDel on this class's queue of a shaped link (WFQ classes: video, signaling, business,
       * default, bulk): the sojourn-time target in ms; default 5, "off" for tail drop only.
       */
      codelTargetMs: z.union([z.number().min(0.5).max(1000), z.literal('off')]).optional(),
    })
    .optional(),
});
export type ClassOverride = z.output<typeof classOverrideSchema>;

const classesSchema = z.strictObject({
  control: classOverrideSchema.optional(),
  voice: classOverrideSchema.optional(),
  video: classOverrideSchema.optional(),
  signaling: classOverrideSchema.optional(),
  business: classOverrideSchema.optional(),
  default: classOverrideSchema.optional(),
  bulk: classOverrideSchema.optional(),
} satisfies Record<ClassName, unknown>);

export const configSchema = z.strictObject({
  site: z.string().regex(NAME_RE, 'expected a short lowercase site name like "branch-1"'),
  /** This site's X25519 private key (`braid keygen --out FILE`). Required unless insecurePlaintext. */
  privateKeyFile: z.string().min(1).optional(),
  /** Benchmarks only: carry frames unencrypted and unauthenticated. Never on a real network. */
  insecurePlaintext: z.boolean().default(false),
  /**
   * Data cipher: auto (default: AES-256-GCM when both ends have AES instructions, else
   * ChaCha20-Poly1305, negotiated in the handshake), chacha20-poly1305 or aes-256-gcm (an explicit
   * setting wins over the peer's auto; two explicit settings that differ give ChaCha20-Poly1305).
   */
  cipher: z.enum(['auto', 'chacha20-poly1305', 'aes-256-gcm']).default('auto'),
  tun: z
    .strictObject({
      name: z.string().regex(IFNAME_RE, 'expected an interface name like "braid0"').default('braid0'),
      address: cidr,
      /** Optional IPv6 address of the TUN (IPv6 inner traffic), e.g. fd99::1/64. */
      address6: cidr6.optional(),
      /** The TUN's queue in packets: the delay in front of Braid under load (kernel default 500). */
      txQueueLen: z.number().int().min(16).max(10000).default(DEFAULT_TUN_TX_QUEUE_LEN),
      /**
       * Queues of the TUN (default 8; 1 is the plain single-queue device): realtime classes in one,
       * other flows spread over the rest by hash, each read in turn, so that a sparse flow does not
       * wait behind a bulk one's ring (native/src/tun-queues.h). Falls back to 1 when the kernel
       * refuses (no multi-queue TUN or eBPF); `braid status` shows the queues.
       */
      queues: z.number().int().min(1).max(16).default(DEFAULT_TUN_QUEUES),
      mtu: z.number().int().min(576).max(9000).default(DEFAULT_TUN_MTU),
      /**
       * TUN offloads (IFF_VNET_HDR + TUNSETOFFLOAD): auto (default) asks the kernel for them, so TCP
       * leaves the site in 64 KB super-segments (split by Braid) and arrives as coalesced ones (one
       * TCP receive per 64 KB), and falls back to the plain device when the kernel refuses; off
       * never asks. `braid status` says which one runs.
       */
      offload: z.enum(['auto', 'off'], { error: (iss) => `expected "auto" (TUN offloads when the kernel has them) or "off", got ${JSON.stringify(iss.input)}` }).default('auto'),
    }),
  /**
   * latency.keepWarm: auto (default) keeps the data path in the CPU's caches while the tunnel is in
   * use but quiet (src/io/keep-warm.ts: one packet through a throwaway in-process pair each ms
   * without real traffic, for 3 s after the last inner packet); off never does.
   */
  latency: z
    .strictObject({
      keepWarm: z.enum(['auto', 'off'], { error: (iss) => `expected "auto" (keep the data path warm while the tunnel is in use) or "off", got ${JSON.stringify(iss.input)}` }).default('auto'),
    })
    .default({ keepWarm: 'auto' }),
  links: z.array(linkSchema).min(1, 'at least one link is needed').max(MAX_LINKS, `at most ${MAX_LINKS} links`),
  peers: peersSchema,
  log: z.strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') }).default({ level: 'info' }),
  control: z.strictObject({ socket: z.string().default('/run/braid/braid.sock') }).default({ socket: '/run/braid/braid.sock' }),
  /** Per-class overrides of the outer DSCP map, strategy, SLA, FEC and queueing. */
  classes: classesSchema.optional(),
  /** Application rules, first match wins: `{catalogue: teams}` (profiles/apps/) or `{name, match, set}`. */
  rules: rulesSchema.optional(),
  /**
   * The LAN's DSCP marks: by default network control (CS6/CS7) is capped at 2 Mbit/s and voice (EF)
   * at 20 Mbit/s, the excess re-marked best effort; `remarkUntrusted: true` re-marks everything.
   */
  dscpTrust: z
    .strictObject({
      remarkUntrusted: z.boolean().default(false),
      controlCap: bandwidth.optional(),
      voiceCap: bandwidth.optional(),
    })
    .optional(),
  /** The fleet registry in etcd (config-registry.ts): publish this site, peer with the ones listed. */
  registry: registrySchema.optional(),
  metrics: z.strictObject({ listen: z.string().regex(/^[^:]+:\d+$/, 'expected "address:port" like 127.0.0.1:9731').default('127.0.0.1:9731'), enabled: z.boolean().default(true), pathSeries: z.boolean().optional() }).optional(),
});

export type BraidConfig = z.output<typeof configSchema>;
export type LinkConfig = z.output<typeof linkSchema>;

function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

/** Validates a parsed YAML document. `source` names the file in messages. */
export function validateConfig(doc: unknown, source: string): BraidConfig {
  const res = configSchema.safeParse(doc);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    const field = fieldPath(issue.path);
    let msg = issue.message;
    let fix = `correct ${field} in ${source} (see README "Configuration")`;
    if (issue.code === 'unrecognized_keys') {
      msg = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      fix = `remove or rename ${issue.keys.join(', ')} (check the spelling against README "Configuration")`;
      // `field` names the unknown key itself, so the position points at it.
      throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: ${field}: ${msg}`, { field: fieldPath([...issue.path, issue.keys[0]!]), fix });
    } else if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
      msg = `missing (${issue.message.replace(/^Invalid input: /, '')})`;
      fix = `add ${field} to ${source}`;
    }
    throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: ${field}: ${msg}`, { field, fix });
  }
  const cfg = res.data;
  // Cross-field rules zod can't express locally.
  const names = new Set<string>();
  cfg.links.forEach((l, i) => {
    if (names.has(l.name)) {
      throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: links[${i}].name: duplicate link name "${l.name}"`, {
        field: `links[${i}].name`,
        fix: 'give every link a unique name',
      });
    }
    names.add(l.name);
  });
  const binds = new Set<string>();
  cfg.links.forEach((l, i) => {
    const k = `${l.bind}:${l.port}:${l.interface}`;
    if (binds.has(k)) {
      throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: links[${i}].port: two links bind ${l.bind}:${l.port} on ${l.interface}`, {
        field: `links[${i}].port`,
        fix: 'give each link its own port or interface',
      });
    }
    binds.add(k);
  });
  if (!cfg.insecurePlaintext) {
    if (!cfg.privateKeyFile) {
      throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: privateKeyFile: missing (the overlay is encrypted)`, {
        field: 'privateKeyFile',
        fix: 'create a key with `braid keygen --out /etc/braid/private.key` and set privateKeyFile to its path',
      });
    }
  }
  for (const name of CLASS_NAMES) {
    const fec = cfg.classes?.[name]?.fec;
    if (!fec) continue;
    const merged = classFecPolicies(cfg)[CLASS_NAMES.indexOf(name)]!;
    try {
      checkFecPolicy(merged, `class ${name}`);
    } catch (e) {
      throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: classes.${name}.fec: ${(e as Error).message.replace(/^.*?fec\./, '')} (with the defaults for the fields not given)`, {
        field: `classes.${name}.fec`,
        fix: `set classes.${name}.fec.minM and maxM together so that minM <= maxM`,
      });
    }
  }
  for (const name of NO_BOND_CLASSES) {
    if (cfg.classes?.[name as ClassName]?.strategy !== 'bond') continue;
    throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: classes.${name}.strategy: ${name} may not bond: the receiver holds bonded packets up to the links' delay difference to put them in order, a delay calls and network control cannot take`, {
      field: `classes.${name}.strategy`,
      fix: `use best or duplicate for ${name}; bond suits default, bulk and business`,
    });
  }
  if (cfg.peers.length === 0 && !cfg.registry) {
    throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: peers: missing (at least one peer is needed)`, { field: 'peers', fix: 'list the remote sites under peers:, or add a registry: section to find them in etcd' });
  }
  if (cfg.registry) checkRegistry(cfg.registry, source, cfg.links.map((l) => l.name), !cfg.insecurePlaintext);
  checkPeers(cfg.peers, { source, linkNames: cfg.links.map((l) => l.name), requirePublicKeys: !cfg.insecurePlaintext });
  checkEndpointFamilies(cfg, source);
  RULE_SPECS.set(cfg, expandRules(cfg.rules ?? [], source));
  return cfg;
}

/**
 * A link's socket reaches one family unless it is bound to '::' (both): an IPv6 endpoint over a
 * link bound to an IPv4 address (0.0.0.0 included) could never be sent to, nor an IPv4 one over
 * a link bound to a specific IPv6 address.
 */
function checkEndpointFamilies(cfg: BraidConfig, source: string): void {
  cfg.peers.forEach((p, pi) => {
    for (const [linkName, e] of Object.entries(p.endpoints ?? {})) {
      const li = cfg.links.findIndex((l) => l.name === linkName);
      const bind = cfg.links[li]?.bind;
      if (bind === undefined || bind === '::') continue;
      const bindFamily = bind.includes(':') ? 6 : 4;
      if (bindFamily === e.family) continue;
      const field = `peers[${pi}].endpoints.${linkName}`;
      throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: ${field}: an IPv${e.family} endpoint, but link "${linkName}" is bound to IPv${bindFamily} address ${bind}`, {
        field,
        fix: `set links[${li}].bind to an IPv${e.family} address of ${cfg.links[li]!.interface} (or "::" for both families), or give the peer's IPv${bindFamily} endpoint`,
      });
    }
  });
}

/** Rules with the catalogues expanded, per loaded config (expandRules reads profiles/apps/). */
const RULE_SPECS = new WeakMap<object, RuleSpec[]>();

/** The application rules of a validated config, catalogues expanded. */
export function ruleSpecs(cfg: BraidConfig): RuleSpec[] {
  return RULE_SPECS.get(cfg) ?? expandRules(cfg.rules ?? [], 'config');
}

/** Where each loaded config came from, for errors found after loading (checkInterfaces). */
const SOURCES = new WeakMap<object, YamlSource>();

/**
 * `config FILE: field: problem` -> `FILE:LINE:COLUMN: field: problem`, the position of `field`
 * (of the key for an unknown key; of the document for errors without a field).
 */
function located(e: unknown, src: YamlSource): unknown {
  const prefix = `config ${src.file}: `;
  if (!(e instanceof BraidError) || !e.message.startsWith(prefix)) return e;
  const where = src.where(e.field ?? [], { key: /: unknown keys? /.test(e.message) });
  return new BraidError(e.code, `${where}: ${e.message.slice(prefix.length)}`, {
    ...(e.field === undefined ? {} : { field: e.field }),
    ...(e.fix === undefined ? {} : { fix: e.fix }),
    ...(e.cause === undefined ? {} : { cause: e.cause }),
  });
}

export function parseConfigText(text: string, source: string): BraidConfig {
  let src: YamlSource;
  try {
    src = parseYamlSource(text, source);
  } catch (e) {
    if (!(e instanceof YamlSyntaxError)) throw e;
    throw new BraidError(ErrorCode.CONFIG_INVALID, e.message, { fix: 'fix the YAML syntax (indentation, quotes, colons, brackets) at that line' });
  }
  const doc = src.value;
  try {
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${source}: expected a YAML mapping with site, tun, links and peers`, { fix: 'start from the example in README "Configuration"' });
    }
    const cfg = validateConfig(doc, source);
    SOURCES.set(cfg, src);
    return cfg;
  } catch (e) {
    throw located(e, src);
  }
}

export function loadConfig(path: string): BraidConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BraidError(ErrorCode.CONFIG_INVALID, `config ${path}: cannot read (${code ?? 'error'})`, {
      fix: code === 'ENOENT' ? 'pass the right path with -c FILE' : 'check the file permissions',
    });
  }
  return parseConfigText(text, path);
}

/** Checks that every configured interface exists on this box (`braid check` and `braid up`). */
export function checkInterfaces(cfg: BraidConfig, source: string, exists: (ifname: string) => boolean = (n) => existsSync(`/sys/class/net/${n}`)): void {
  cfg.links.forEach((l, i) => {
    if (!exists(l.interface)) {
      const e = new BraidError(ErrorCode.INTERFACE_MISSING, `config ${source}: links[${i}].interface: interface "${l.interface}" does not exist on this box`, {
        field: `links[${i}].interface`,
        fix: `use one of the interfaces in \`ip -br link\`, or bring ${l.interface} up first`,
      });
      const src = SOURCES.get(cfg);
      throw src && src.file === source ? located(e, src) : e;
    }
  });
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (o) for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** Class policies (outer DSCP, strategy, SLA) with the config's `classes:` overrides applied. */
export function classPolicies(cfg: Pick<BraidConfig, 'classes'>): ClassPolicy[] {
  return DEFAULT_POLICIES.map((p) => {
    const o = cfg.classes?.[p.name];
    if (!o) return p;
    return {
      ...p,
      ...(o.outerDscp !== undefined ? { outerDscp: o.outerDscp } : {}),
      ...(o.strategy !== undefined ? { strategy: o.strategy } : {}),
      ...(o.bond?.maxDelayGapMs !== undefined ? { bondMaxDelayGapMs: o.bond.maxDelayGapMs } : {}),
      ...(o.bond?.equalizeDelay !== undefined ? { bondEqualizeDelay: o.bond.equalizeDelay } : {}),
      sla: { ...p.sla, ...defined(o.sla) },
    };
  });
}

/** FEC policies with the overrides applied (for validation; the Edge merges the same way). */
export function classFecPolicies(cfg: Pick<BraidConfig, 'classes'>): ClassFecPolicy[] {
  return DEFAULT_FEC_POLICIES.map((p, i) => ({ ...p, ...defined(cfg.classes?.[CLASS_NAMES[i]!]?.fec) }));
}

/** The Edge's per-class `fec` and `queues` overrides from the config (EdgeConfig.fec / .queues). */
export function classOverrides(cfg: Pick<BraidConfig, 'classes'>): {
  fec: Partial<Record<ClassName, Partial<ClassFecPolicy>>>;
  queues: Partial<Record<ClassName, Partial<ClassQueuePolicy>>>;
} {
  const fec: Partial<Record<ClassName, Partial<ClassFecPolicy>>> = {};
  const queues: Partial<Record<ClassName, Partial<ClassQueuePolicy>>> = {};
  for (const name of CLASS_NAMES) {
    const o = cfg.classes?.[name];
    if (o?.fec) fec[name] = defined(o.fec);
    // CoDel (5 ms) on every WFQ class's queue unless the config says otherwise ("off": tail drop only).
    const { codelTargetMs, ...rest } = o?.queue ?? {};
    const q: Partial<ClassQueuePolicy> = defined(rest);
    const wfq = !DEFAULT_QUEUE_POLICIES[CLASS_NAMES.indexOf(name)]!.priority;
    if (typeof codelTargetMs === 'number') q.codelTargetMs = codelTargetMs;
    else if (codelTargetMs === undefined && wfq) q.codelTargetMs = CODEL_TARGET_MS;
    // An equalizing bond's senders see the slowest member's RTT: a queue of ~2 x that RTT, unless
    // the operator sized it (EQUALIZE_QUEUE_MS says what was measured).
    if (o?.bond?.equalizeDelay === true) {
      if (q.maxBytes === undefined) q.maxQueueMs = EQUALIZE_QUEUE_MS;
      if (q.maxPackets === undefined) q.maxPackets = Math.max(EQUALIZE_QUEUE_PACKETS, DEFAULT_QUEUE_POLICIES[CLASS_NAMES.indexOf(name)]!.maxPackets);
    }
    if (Object.keys(q).length > 0) queues[name] = q;
  }
  return { fec, queues };
}
