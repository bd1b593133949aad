// Attribution of the hub's heap per spoke (issue 12): the fleet World of bench/fleet.ts (hub +
// BENCH_FLEET_SPOKES spokes, 2 paths each, 10% with voice + business), then two heap snapshots:
// A with the hub, B after an empty hub took its place. Objects in A and not in B (V8 keeps node ids
// stable across snapshots of one process) are the hub's; each is charged to the first path from
// the hub Endpoint that reaches it (breadth first, through the hub's objects only), e.g.
// `Peer.steering.flows` or `PathRuntime.stats.rtt`, and to its constructor.
// Usage: BENCH_FLEET_SPOKES=200 node bin/run-ts.js bench/fleet-heap.ts [idle|traffic]
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { World } from '../sim/world.ts';
import { makePacket } from '../sim/packets.ts';
import { buildFleetWorld, spokeAddr, spokeName } from './lib/fleet-world.ts';
import { Endpoint } from '../src/core/endpoint.ts';
import { SeededRng } from '../src/core/rng.ts';
import { PEER_IDLE_AFTER_MS } from '../src/core/peer-idle.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const SPOKES = Math.max(10, Number(process.env.BENCH_FLEET_SPOKES ?? 200));
const MODE = process.argv[2] ?? 'traffic';
const buildWorld = (): World => buildFleetWorld(SPOKES, 12);

interface Snap {
  fields: number;
  nodes: Uint32Array | number[];
  edges: number[];
  strings: string[];
  nodeTypes: string[];
  edgeTypes: string[];
  firstEdge: Uint32Array;
  idIndex: Map<number, number>;
}

function write(): { file: string; heapBytes: number; bufferBytes: number } {
  gc();
  gc();
  const { heapUsed: heapBytes, arrayBuffers: bufferBytes } = process.memoryUsage();
  const file = join(tmpdir(), `fleet-heap-${process.pid}-${Date.now()}.heapsnapshot`);
  writeHeapSnapshot(file);
  return { file, heapBytes, bufferBytes };
}

function parse(file: string): Snap {
  const j = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[]; edge_fields: string[]; node_types: [string[]]; edge_types: [string[]] } }; nodes: number[]; edges: number[]; strings: string[] };
  rmSync(file);
  const nf = j.snapshot.meta.node_fields.length;
  const ef = j.snapshot.meta.edge_fields.length;
  const n = j.nodes.length / nf;
  const firstEdge = new Uint32Array(n + 1);
  let e = 0;
  const idIndex = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    firstEdge[i] = e;
    e += j.nodes[i * nf + 4]! * ef;
    idIndex.set(j.nodes[i * nf + 2]!, i);
  }
  firstEdge[n] = e;
  return { fields: nf, nodes: j.nodes, edges: j.edges, strings: j.strings, nodeTypes: j.snapshot.meta.node_types[0], edgeTypes: j.snapshot.meta.edge_types[0], firstEdge, idIndex };
}

const w = buildWorld();
w.runFor(4000);
w.runFor(PEER_IDLE_AFTER_MS + 2000);
if (MODE === 'traffic') {
  const busy = Array.from({ length: Math.floor(SPOKES / 10) }, (_, k) => 1 + k * 10);
  const start = w.nowMs + 1;
  const end = start + 2000;
  w.every(20, { startMs: start, untilMs: end }, (k) => {
    for (const i of busy) w.site(spokeName(i)).sendTun(makePacket({ src: spokeAddr(i, 5), dst: [10, 0, 0, 5], srcPort: 50_000, dstPort: 3479, sizeBytes: 200, dscp: 46, flowId: i, seq: k }));
  });
  w.every(40, { startMs: start + 7, untilMs: end }, (k) => {
    for (const i of busy) w.site('hub').sendTun(makePacket({ src: [10, 0, 0, 5], dst: spokeAddr(i, 5), srcPort: 443, dstPort: 50_001, sizeBytes: 1000, dscp: 18, flowId: 10_000 + i, seq: k }));
  });
  w.runFor(2001);
}
// Tag the hub so the snapshot can find it (and hold no other reference to it here).
(globalThis as Record<string, unknown>)['__fleetHub'] = w.site('hub').edge;
const fa = write();
(globalThis as Record<string, unknown>)['__fleetHub'] = undefined;
w.site('hub').setEdge(new Endpoint({ site: 'hub', links: [{ name: 'mpls' }, { name: 'inet' }], peers: [], crypto: { privateKey: w.keys['hub']!.privateKey, wallClockEpochMs: 1_800_000_000_000 } }, w.nowMs, new SeededRng(1)));
const fb = write();
const heapA = fa.heapBytes;
const heapB = fb.heapBytes;
const b = parse(fb.file);
const a = parse(fa.file);
const buffersKb = (fa.bufferBytes - fb.bufferBytes) / SPOKES / 1024;
console.log(`mode ${MODE}, ${SPOKES} spokes: heapUsed ${(heapA / 1e6).toFixed(1)} MB with the hub, ${(heapB / 1e6).toFixed(1)} MB empty: ${((heapA - heapB) / SPOKES / 1024).toFixed(1)} KB per spoke, + ArrayBuffers ${buffersKb.toFixed(1)} KB = ${((heapA - heapB) / SPOKES / 1024 + buffersKb).toFixed(1)} KB per spoke`);

// The hub's objects: in A, not in B.
const F = a.fields;
const nNodes = a.firstEdge.length - 1;
const gone = new Uint8Array(nNodes);
let goneBytes = 0;
for (let i = 0; i < nNodes; i++) {
  if (!b.idIndex.has(a.nodes[i * F + 2]!)) {
    gone[i] = 1;
    goneBytes += a.nodes[i * F + 3]!;
  }
}
console.log(`objects gone with the hub: ${(goneBytes / SPOKES / 1024).toFixed(1)} KB per spoke (self sizes)`);
const nodeName = (i: number): string => a.strings[a.nodes[i * F + 1]!]!;
const nodeType = (i: number): string => a.nodeTypes[a.nodes[i * F]!]!;
const ctor = (i: number): string => {
  const t = nodeType(i);
  return t === 'object' || t === 'native' ? nodeName(i) : `(${t})`;
};
// Find the hub: the global's __fleetHub property.
let hubNode = -1;
for (let i = 0; i < nNodes && hubNode < 0; i++) {
  for (let e = a.firstEdge[i]!; e < a.firstEdge[i + 1]!; e += 3) {
    const et = a.edgeTypes[a.edges[e]!]!;
    if ((et === 'property') && a.strings[a.edges[e + 1]!] === '__fleetHub') {
      hubNode = a.edges[e + 2]! / F;
      break;
    }
  }
}
if (hubNode < 0) throw new Error('hub not found');
// BFS from the hub through gone objects; label = path of property names, collapsing array indices
// and restarting at named classes (Peer, PathRuntime-like objects keep the class name).
const label = new Array<string | undefined>(nNodes);
const seen = new Uint8Array(nNodes);
const queue: number[] = [hubNode];
label[hubNode] = 'Endpoint';
seen[hubNode] = 1;
const LABEL_DEPTH = Number(process.env.LABEL_DEPTH ?? 3);
const RESTART = new Set(['Peer', 'PathStats', 'PathStateMachine', 'Steering', 'FecTx', 'FecReceiver', 'PeerTx', 'PeerBond', 'SessionManager', 'PmtuDiscovery', 'DedupeWindow', 'FlowTable', 'IdleProbing', 'PeerSession', 'Map', 'Array']);
for (let qi = 0; qi < queue.length; qi++) {
  const i = queue[qi]!;
  const base = label[i]!;
  for (let e = a.firstEdge[i]!; e < a.firstEdge[i + 1]!; e += 3) {
    const to = a.edges[e + 2]! / F;
    if (seen[to] || !gone[to]) continue;
    const et = a.edgeTypes[a.edges[e]!]!;
    if (et === 'weak') continue;
    seen[to] = 1;
    let name: string;
    if (et === 'element' || et === 'hidden') name = '[]';
    else if (et === 'internal') name = `<${a.strings[a.edges[e + 1]!] ?? ''}>`;
    else name = a.strings[a.edges[e + 1]!] ?? '?';
    const c = ctor(to);
    let l: string;
    if (RESTART.has(c) && c !== 'Map' && c !== 'Array') l = c;
    else {
      const parts = `${base}.${name}`.split('.');
      l = parts.length > LABEL_DEPTH ? parts.slice(0, LABEL_DEPTH).join('.') : parts.join('.');
    }
    label[to] = l;
    queue.push(to);
  }
}
const byLabel = new Map<string, { bytes: number; n: number }>();
const byCtor = new Map<string, { bytes: number; n: number }>();
let reached = 0;
for (let i = 0; i < nNodes; i++) {
  if (!gone[i]) continue;
  const sz = a.nodes[i * F + 3]!;
  const l = label[i] ?? '(not reached from the hub)';
  if (label[i] !== undefined) reached += sz;
  const x = byLabel.get(l) ?? { bytes: 0, n: 0 };
  x.bytes += sz;
  x.n++;
  byLabel.set(l, x);
  const c = ctor(i);
  const y = byCtor.get(c) ?? { bytes: 0, n: 0 };
  y.bytes += sz;
  y.n++;
  byCtor.set(c, y);
}
const top = (m: Map<string, { bytes: number; n: number }>, k: number): void => {
  for (const [key, v] of [...m].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, k)) {
    console.log(`${(v.bytes / SPOKES / 1024).toFixed(2).padStart(8)} KB/spoke ${(v.n / SPOKES).toFixed(1).padStart(8)} obj/spoke  ${key}`);
  }
};
console.log(`reached from the hub: ${(reached / SPOKES / 1024).toFixed(1)} KB per spoke`);
console.log('--- by path from the hub');
top(byLabel, Number(process.env.TOP ?? 45));
console.log('--- by constructor');
top(byCtor, 30);
