/**
 * Peer sets and class policies as the Endpoint takes them: the checks a whole peer set must pass
 * before any of it is applied (a reload is all or nothing), and the merges of per-class overrides
 * onto the defaults.
 */
import { BraidError, ErrorCode } from './errors.ts';
import { checkFecPolicy, DEFAULT_FEC_POLICIES, type ClassFecPolicy } from './fec/policy.ts';
import { PrefixTable } from './routing/prefix-table.ts';
import { CLASS_NAMES, type ClassName } from './steer/classes.ts';
import type { PeerConfig } from './types.ts';

/** Refuses a peer set that cannot be applied whole: duplicate names or keys, conflicting prefixes. */
export function checkPeerSet(peers: readonly PeerConfig[], encrypted: boolean): void {
  const names = new Set<string>();
  const keys = new Set<string>();
  const trial = new PrefixTable();
  peers.forEach((p, i) => {
    if (names.has(p.name)) throw new BraidError(ErrorCode.CONFIG_INVALID, `peers[${i}].name: "${p.name}" is used twice`, { field: `peers[${i}].name` });
    names.add(p.name);
    if (encrypted && p.publicKey === undefined) throw new BraidError(ErrorCode.CONFIG_INVALID, `peers[${i}].publicKey: missing`, { field: `peers[${i}].publicKey` });
    if (p.publicKey) {
      const k = Array.from(p.publicKey).join(',');
      if (keys.has(k)) throw new BraidError(ErrorCode.CONFIG_INVALID, `peers[${i}].publicKey: the same key as another peer`, { field: `peers[${i}].publicKey` });
      keys.add(k);
    }
    for (const prefix of p.prefixes) trial.insert(prefix, i);
  });
}

export function mergeFec(fec: Partial<Record<ClassName, Partial<ClassFecPolicy>>>): ClassFecPolicy[] {
  return CLASS_NAMES.map((name, i) => {
    const p: ClassFecPolicy = { ...DEFAULT_FEC_POLICIES[i]!, ...stripUndefined(fec[name]) };
    checkFecPolicy(p, `class ${name}`);
    return p;
  });
}

/** A partial policy without its undefined fields, so spreading it never erases a default. */
export function stripUndefined<T extends object>(o: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (o === undefined) return out;
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

export function sameKey(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a reload compares (everything but the key, compared on its own). */
export function publicFacts(p: PeerConfig): unknown {
  return { prefixes: p.prefixes, endpoints: p.endpoints ?? {}, links: p.links ?? null, keepalive: p.persistentKeepaliveMs ?? 0 };
}

