/**
 * Routing lookup cost per inner packet (issue 11): the PrefixTable trie with 4,096 peers x 4
 * prefixes (IPv4 and IPv6 mixed) against a linear scan of the same prefixes, destination hit and
 * miss. The measurement lives in bench/lib/routing-lookup.ts so that the hub benchmark reports the
 * same figure. Run: `npm run bench -- routing` (or node bin/run-ts.js bench/routing.ts).
 * Last stdout lines: one JSON object per figure (DESIGN.md section 6).
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { measureRoutingLookup } from './lib/routing-lookup.ts';

const r = measureRoutingLookup();
const round = (x: number): number => Math.round(x * 10) / 10;
process.stderr.write(
  `routing: ${r.peers} peers, ${r.prefixes} prefixes, ${r.trieNodes} trie nodes; ` +
    `hit ${r.hitNs.toFixed(1)} ns (v4 ${r.hitV4Ns.toFixed(1)}, v6 ${r.hitV6Ns.toFixed(1)}), miss ${r.missNs.toFixed(1)} ns; ` +
    `linear scan hit ${r.linearHitNs.toFixed(0)} ns, miss ${r.linearMissNs.toFixed(0)} ns\n`,
);
const figures = [
  { bench: 'routing-lookup-hit', value: round(r.hitNs), unit: 'ns/lookup', peers: { 'linear-scan': Math.round(r.linearHitNs) } },
  { bench: 'routing-lookup-miss', value: round(r.missNs), unit: 'ns/lookup', peers: { 'linear-scan': Math.round(r.linearMissNs) } },
];
const notesFile = process.env['BENCH_NOTES_FILE'];
if (notesFile) {
  writeFileSync(
    notesFile,
    [
      `Outbound route lookup (\`PrefixTable.lookupDestination\`, src/core/routing/prefix-table.ts) with ${r.peers.toLocaleString('en-US')} peers x 4 prefixes ` +
        `(a /24 and a /26 IPv4, a /48 and a /64 IPv6 each, under a 10.0.0.0/8 aggregate: ${r.prefixes.toLocaleString('en-US')} prefixes, ${r.trieNodes.toLocaleString('en-US')} trie nodes). ` +
        `Hit: destinations inside a random peer's prefix, IPv4 and IPv6 alternating; miss: destinations in no prefix (a counted noRoute drop). ` +
        `CPU time (user + system, so that neighbours on this shared box count less), median of ${r.reps} runs of ${r.lookups.toLocaleString('en-US')} lookups over 2,048 packets (${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0]!.toFixed(2)}). ` +
        `Hits by family: IPv4 ${r.hitV4Ns.toFixed(1)} ns, IPv6 ${r.hitV6Ns.toFixed(1)} ns. ` +
        `The peer figure \`linear-scan\` checks every prefix per packet (what a table without a trie costs; it grows with the peers, the trie with the prefix lengths).`,
      '',
    ].join('\n'),
  );
}
for (const f of figures) console.log(JSON.stringify(f));
