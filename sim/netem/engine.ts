/**
 * A userspace netem: the kernel's sch_netem (net/sched/sch_netem.c) re-done as a deterministic,
 * sans-I/O state machine for kernels without sch_netem and for the virtual-time World.
 *
 *   const link = new NetemEngine(parseNetemSpec('delay 30ms 5ms loss gemodel 1% 20%'), rng);
 *   link.enqueue(nowMs, { bytes });                  // every packet offered to the link
 *   const t = link.nextDeadlineMs();                 // arm one timer (or jump there in virtual time)
 *   for (const d of link.poll(t)) deliver(d.bytes);  // what leaves at t
 *
 * Pipeline, per packet offered to enqueue(), in the kernel's order:
 *   1. duplicate?   decide whether a copy will be made (copies are never duplicated again)
 *   2. loss         random / 4-state / Gilbert-Elliott; with `ecn`, an ECN-capable IP packet is
 *                   marked CE instead of dropped
 *   3. corrupt      flip one random bit (of a private copy: the caller's bytes are never touched)
 *   4. limit        tail-drop when limitPackets packets are already held
 *   5. the copy     re-enters the pipeline at step 2, before the original is scheduled
 *   6. reorder      after gap-1 delayed packets, with the reorder probability the packet leaves
 *                   at once; otherwise
 *   7. delay        delayMs + jitter from the distribution table, correlated as netem does
 *   8. rate         serialized behind the last queued packet at the link rate (with packet and
 *                   cell overheads); with rate set, jitter does not reorder packets
 *   9. time queue   min-heap by (departure, arrival order)
 *  10. slot        optionally, packets leave only in slots of limited packets/bytes
 * and poll(now) hands out every packet whose departure time has come.
 *
 * No clock, no timers, no Math.random: time comes in as `nowMs` (non-decreasing) and randomness
 * from the injected Rng, so one seed reproduces a run. Output does not depend on how often poll()
 * is called. Known departures from the kernel, all deliberate:
 * - delay correlation acts on the uniform number's value, as NIST Net and netem's docs intend; the
 *   kernel takes that number modulo the table size (or 2*jitter in ns), which throws most of the
 *   correlation away, so with tc a correlated delay looks nearly uncorrelated;
 * - times are float milliseconds, not integer nanoseconds;
 * - a packet is "sent" the moment it is due: there is no device queue after netem.
 */
import { distributionTable } from './distributions.ts';
import type { NetemSpec } from './spec.ts';

/** Uniform random numbers in [0, 1); src/core/rng.ts's SeededRng fits. */
export interface Rng {
  nextFloat(): number;
}

export interface NetemPacket {
  readonly bytes: Uint8Array;
}

/** A packet leaving the emulator. */
export interface NetemDeparture<P extends NetemPacket = NetemPacket> {
  readonly packet: P;
  /** What to deliver: packet.bytes, or a corrupted or CE-marked copy of them. */
  readonly bytes: Uint8Array;
  readonly enqueuedMs: number;
  readonly departMs: number;
  readonly corrupted: boolean;
  /** The extra copy made by `duplicate` (the original leaves too, as its own departure). */
  readonly duplicate: boolean;
  /** Sent at once by `reorder`, skipping the delay. */
  readonly reordered: boolean;
  readonly ecnMarked: boolean;
}

export interface NetemCounters {
  /** Packets offered to enqueue(). */
  enqueued: number;
  /** Departures handed out by poll(), copies included. */
  delivered: number;
  dropped: { loss: number; limit: number };
  /** Copies made by duplicate; each then takes its own loss, corrupt and limit chances. */
  duplicated: number;
  corrupted: number;
  /** Packets sent at once by reorder. */
  reordered: number;
  /** Packets marked CE instead of dropped (ecn). */
  ecnMarked: number;
}

/** One held packet; handed out as the NetemDeparture. A class so every entry has one shape. */
class Entry<P extends NetemPacket> implements NetemDeparture<P> {
  constructor(
    public departMs: number,
    public readonly seq: number,
    public readonly enqueuedMs: number,
    public readonly packet: P,
    public readonly bytes: Uint8Array,
    public readonly corrupted: boolean,
    public readonly duplicate: boolean,
    public readonly reordered: boolean,
    public readonly ecnMarked: boolean,
  ) {}
}

/**
 * netem's correlated random numbers (get_crandom): next = (1 - rho) * uniform + rho * last.
 * With rho = 0, plain uniform numbers and no state, as in the kernel.
 */
class Correlated {
  last: number;

  constructor(
    readonly rho: number,
    rng: Rng,
  ) {
    this.last = rho === 0 ? 0 : rng.nextFloat();
  }

  next(rng: Rng): number {
    if (this.rho === 0) return rng.nextFloat();
    const value = (1 - this.rho) * rng.nextFloat() + this.rho * this.last;
    this.last = value;
    return value;
  }
}

const LOSS_NONE = 0;
const LOSS_RANDOM = 1;
const LOSS_STATE = 2;
const LOSS_GEMODEL = 3;

// 4-state model states (named as in the kernel; Salsano's numbering in parentheses).
const TX_IN_GAP = 1; // (1) good, within a gap
const TX_IN_BURST = 2; // (2) good, within a burst
const LOST_IN_BURST = 3; // (3) lost, within a burst
const LOST_IN_GAP = 4; // (4) isolated loss
// Gilbert-Elliott states.
const GOOD = 1;
const BAD = 2;

/** The kernel's "last packet" search finds nothing when the queue is empty. */
const NO_DEPARTURE = -Infinity;

export class NetemEngine<P extends NetemPacket = NetemPacket> {
  private spec!: NetemSpec;
  private limitPackets = 0;
  private delayMs = 0;
  private jitterMs = 0;
  private table: Int16Array | undefined;
  private delayCor!: Correlated;
  private lossModel = LOSS_NONE;
  private lossRatio = 0;
  private lossCor!: Correlated;
  /** 4-state: p13, p31, p32, p14, p23. Gilbert-Elliott: p, r, h (not 1-h), 1-k. */
  private a1 = 0;
  private a2 = 0;
  private a3 = 0;
  private a4 = 0;
  private a5 = 0;
  private lossState = 0;
  private ecn = false;
  private duplicateRatio = 0;
  private dupCor!: Correlated;
  private corruptRatio = 0;
  private corruptCor!: Correlated;
  private reorderRatio = 0;
  private reorderCor!: Correlated;
  private gap = 0;
  /** Packets delayed since the last reordered one (the kernel's q->counter). */
  private counter = 0;
  private rateBytesPerMs = 0;
  private packetOverheadBytes = 0;
  private cellSizeBytes = 0;
  private cellOverheadBytes = 0;
  private slotEnabled = false;
  private slotNextMs = NO_DEPARTURE;
  private slotPacketsLeft = 0;
  private slotBytesLeft = 0;
  /** Time of the latest dequeue attempt: packets found due then leave then, not earlier. */
  private slotClockMs = NO_DEPARTURE;

  /** Time queue: a binary min-heap on (departMs, seq). */
  private readonly heap: Array<Entry<P>> = [];
  /** Packets whose time has come, in departure order, until poll() takes them. */
  private ready: Array<Entry<P>> = [];
  /** Latest departure time scheduled (the kernel's "last packet in the queue", for rate). */
  private lastScheduledMs = NO_DEPARTURE;
  private seq = 0;
  private lastNowMs = -Infinity;
  private readonly stats: NetemCounters = {
    enqueued: 0,
    delivered: 0,
    dropped: { loss: 0, limit: 0 },
    duplicated: 0,
    corrupted: 0,
    reordered: 0,
    ecnMarked: 0,
  };

  constructor(
    spec: NetemSpec,
    private readonly rng: Rng,
  ) {
    this.configure(spec);
  }

  /**
   * Changes the impairment, like `tc qdisc change`: held packets keep their departure times,
   * counters go on, and loss-model state, correlation memory and the reorder gap restart.
   */
  setSpec(spec: NetemSpec): void {
    this.configure(spec);
  }

  get currentSpec(): NetemSpec {
    return this.spec;
  }

  /** Packets held (what `limit` counts). */
  get heldPackets(): number {
    return this.heap.length;
  }

  counters(): NetemCounters {
    const s = this.stats;
    return { ...s, dropped: { ...s.dropped } };
  }

  /** Offers one packet at `nowMs`. Drops are counted, never thrown. */
  enqueue(nowMs: number, packet: P): void {
    this.advance(nowMs);
    this.stats.enqueued++;
    this.process(nowMs, packet, packet.bytes, false);
    // The kernel dequeues right after an enqueue: a packet due now leaves now, and with slots,
    // this dequeue attempt is what may start a new slot.
    if (this.slotEnabled && this.heap.length > 0) this.slotAttempt(nowMs);
    this.advance(nowMs);
  }

  /**
   * When to call poll() next: the earliest departure (now or earlier if packets are waiting), or
   * with slots the moment the next slot opens or is drawn (a poll then may return nothing).
   * Undefined when nothing is held.
   */
  nextDeadlineMs(): number | undefined {
    if (this.ready.length > 0) return this.ready[0]!.departMs;
    if (this.heap.length === 0) return undefined;
    const top = this.heap[0]!.departMs;
    return this.slotEnabled && this.slotNextMs > top ? this.slotNextMs : top;
  }

  /** Every packet due by `nowMs`, in departure order, appended to `out` (a new array if absent). */
  poll(nowMs: number, out?: Array<NetemDeparture<P>>): Array<NetemDeparture<P>> {
    this.advance(nowMs);
    const ready = this.ready;
    if (ready.length === 0) return out ?? [];
    this.stats.delivered += ready.length;
    this.ready = [];
    if (out === undefined) return ready;
    for (let i = 0; i < ready.length; i++) out.push(ready[i]!);
    return out;
  }

  // -------------------------------------------------------------------------------------------

  private configure(spec: NetemSpec): void {
    assertSpec(spec);
    const rng = this.rng;
    this.spec = spec;
    this.limitPackets = spec.limitPackets;

    const d = spec.delay;
    this.delayMs = d?.delayMs ?? 0;
    this.jitterMs = d?.jitterMs ?? 0;
    this.table = d === undefined || d.distribution === 'uniform' ? undefined : distributionTable(d.distribution);
    this.delayCor = new Correlated(d?.correlationRatio ?? 0, rng);

    const loss = spec.loss;
    this.lossCor = new Correlated(loss?.model === 'random' ? loss.correlationRatio : 0, rng);
    if (loss === undefined) {
      this.lossModel = LOSS_NONE;
    } else if (loss.model === 'random') {
      this.lossModel = LOSS_RANDOM;
      this.lossRatio = loss.lossRatio;
    } else if (loss.model === 'state') {
      this.lossModel = LOSS_STATE;
      this.a1 = loss.p13Ratio;
      this.a2 = loss.p31Ratio;
      this.a3 = loss.p32Ratio;
      this.a4 = loss.p14Ratio;
      this.a5 = loss.p23Ratio;
      this.lossState = TX_IN_GAP;
    } else {
      this.lossModel = LOSS_GEMODEL;
      this.a1 = loss.pRatio;
      this.a2 = loss.rRatio;
      this.a3 = 1 - loss.oneMinusHRatio;
      this.a4 = loss.oneMinusKRatio;
      this.lossState = GOOD;
    }
    this.ecn = spec.ecn;

    this.duplicateRatio = spec.duplicate?.ratio ?? 0;
    this.dupCor = new Correlated(spec.duplicate?.correlationRatio ?? 0, rng);
    this.corruptRatio = spec.corrupt?.ratio ?? 0;
    this.corruptCor = new Correlated(spec.corrupt?.correlationRatio ?? 0, rng);
    this.reorderRatio = spec.reorder?.ratio ?? 0;
    this.reorderCor = new Correlated(spec.reorder?.correlationRatio ?? 0, rng);
    this.gap = spec.reorder === undefined ? 0 : spec.reorder.gapPackets;
    this.counter = 0;

    const r = spec.rate;
    this.rateBytesPerMs = r === undefined ? 0 : r.rateBps / 8000;
    this.packetOverheadBytes = r?.packetOverheadBytes ?? 0;
    this.cellSizeBytes = r?.cellSizeBytes ?? 0;
    this.cellOverheadBytes = r?.cellOverheadBytes ?? 0;

    const wasSlotted = this.slotEnabled;
    this.slotEnabled = spec.slot !== undefined;
    if (spec.slot !== undefined) {
      // The kernel opens the first slot at configuration time: the first dequeue attempt finds
      // it already past and draws a fresh one.
      if (!wasSlotted) this.slotNextMs = NO_DEPARTURE;
      this.slotPacketsLeft = spec.slot.maxPackets === 0 ? Infinity : spec.slot.maxPackets;
      this.slotBytesLeft = spec.slot.maxBytes === 0 ? Infinity : spec.slot.maxBytes;
    }
  }

  /** Steps 1-8 for one packet (or, with isCopy, for the copy made by `duplicate`). */
  private process(nowMs: number, packet: P, bytes: Uint8Array, isCopy: boolean): void {
    const rng = this.rng;
    let count = 1;
    if (!isCopy && this.duplicateRatio > 0 && this.dupCor.next(rng) < this.duplicateRatio) count++;

    let ecnMarked = false;
    if (this.lossModel !== LOSS_NONE && this.lossEvent()) {
      const marked = this.ecn ? markCe(bytes) : undefined;
      if (marked !== undefined) {
        bytes = marked;
        ecnMarked = true;
        this.stats.ecnMarked++;
      } else {
        count--;
      }
    }
    if (count === 0) {
      this.stats.dropped.loss++;
      return;
    }
    // The copy is taken before corruption, so it carries the uncorrupted bytes.
    const copyBytes = bytes;

    let corrupted = false;
    if (this.corruptRatio > 0 && this.corruptCor.next(rng) < this.corruptRatio && bytes.length > 0) {
      const copy = bytes.slice();
      const index = Math.floor(rng.nextFloat() * copy.length);
      copy[index] = copy[index]! ^ (1 << Math.floor(rng.nextFloat() * 8));
      bytes = copy;
      corrupted = true;
      this.stats.corrupted++;
    }

    if (this.heap.length >= this.limitPackets) {
      // The copy, not yet made, goes with it.
      this.stats.dropped.limit++;
      return;
    }

    if (count > 1) {
      this.stats.duplicated++;
      this.processCopy(nowMs, packet, copyBytes);
    }

    if (this.gap === 0 || this.counter < this.gap - 1 || this.reorderCor.next(rng) >= this.reorderRatio) {
      let departMs = nowMs + this.delaySampleMs();
      if (this.rateBytesPerMs > 0) {
        // Serialize behind the last packet still queued: max(last, now + delay) + tx time.
        const last = this.lastScheduledMs;
        if (last > nowMs && last > departMs) departMs = last;
        departMs += this.transmitMs(bytes.length);
      }
      if (departMs < nowMs) departMs = nowMs; // pareto with a large jitter can go negative
      if (departMs > this.lastScheduledMs) this.lastScheduledMs = departMs;
      this.counter++;
      this.push(new Entry(departMs, this.seq++, nowMs, packet, bytes, corrupted, isCopy, false, ecnMarked));
    } else {
      // Sent at once, ahead of everything held (the kernel puts it at the head of its queue).
      this.counter = 0;
      this.stats.reordered++;
      this.ready.push(new Entry(nowMs, this.seq++, nowMs, packet, bytes, corrupted, isCopy, true, ecnMarked));
    }
  }

  /** The copy takes the whole pipeline again except duplication (the kernel's tc_depth guard). */
  private processCopy(nowMs: number, packet: P, bytes: Uint8Array): void {
    this.process(nowMs, packet, bytes, true);
  }

  private lossEvent(): boolean {
    const rng = this.rng;
    switch (this.lossModel) {
      case LOSS_RANDOM:
        return this.lossRatio > 0 && this.lossCor.next(rng) < this.lossRatio;
      case LOSS_STATE: {
        // The next state is drawn with one number; the packet is lost when it lands in a loss state.
        const rnd = rng.nextFloat();
        switch (this.lossState) {
          case TX_IN_GAP:
            if (rnd < this.a4) {
              this.lossState = LOST_IN_GAP;
              return true;
            }
            if (rnd < this.a1 + this.a4) {
              this.lossState = LOST_IN_BURST;
              return true;
            }
            return false;
          case TX_IN_BURST:
            if (rnd < this.a5) {
              this.lossState = LOST_IN_BURST;
              return true;
            }
            return false;
          case LOST_IN_BURST:
            if (rnd < this.a3) this.lossState = TX_IN_BURST;
            else if (rnd < this.a2 + this.a3) this.lossState = TX_IN_GAP;
            else return true;
            return false;
          default:
            this.lossState = TX_IN_GAP;
            return false;
        }
      }
      case LOSS_GEMODEL:
        // As the kernel: move first, then decide the loss with the state the packet arrived in.
        if (this.lossState === GOOD) {
          if (rng.nextFloat() < this.a1) this.lossState = BAD;
          return rng.nextFloat() < this.a4;
        }
        if (rng.nextFloat() < this.a2) this.lossState = GOOD;
        return rng.nextFloat() >= this.a3;
      default:
        return false;
    }
  }

  /** netem's tabledist(): mu, or mu + sigma * table[index] / 8192, or uniform in mu +- sigma. */
  private delaySampleMs(): number {
    const sigma = this.jitterMs;
    if (sigma === 0) return this.delayMs;
    const rnd = this.delayCor.next(this.rng);
    const table = this.table;
    if (table === undefined) return this.delayMs - sigma + 2 * sigma * rnd;
    return this.delayMs + (sigma * table[Math.floor(rnd * table.length)]!) / 8192;
  }

  /** The kernel's packet_time_ns(), in ms. */
  private transmitMs(lengthBytes: number): number {
    let len = lengthBytes + this.packetOverheadBytes;
    const cell = this.cellSizeBytes;
    if (cell > 0) {
      let cells = Math.floor(len / cell);
      if (len > cells * cell) cells++;
      len = cells * (cell + this.cellOverheadBytes);
    }
    return len > 0 ? len / this.rateBytesPerMs : 0;
  }

  /** Moves every packet due by `nowMs` to the ready list (replaying slot openings on the way). */
  private advance(nowMs: number): void {
    if (!(nowMs >= this.lastNowMs)) {
      throw new RangeError(`netem: time went backwards or is not a number (${nowMs} after ${this.lastNowMs})`);
    }
    this.lastNowMs = nowMs;
    const heap = this.heap;
    if (!this.slotEnabled) {
      while (heap.length > 0 && heap[0]!.departMs <= nowMs) this.ready.push(this.pop());
      return;
    }
    // The kernel's watchdog fires at max(head's time, next slot); replay each firing up to now.
    while (heap.length > 0) {
      const top = heap[0]!.departMs;
      let fireMs = this.slotNextMs > top ? this.slotNextMs : top;
      if (fireMs < this.slotClockMs) fireMs = this.slotClockMs;
      if (fireMs > nowMs) return;
      this.slotAttempt(fireMs);
    }
  }

  /** One dequeue attempt at `atMs` (netem_dequeue with slots configured). */
  private slotAttempt(atMs: number): void {
    this.slotClockMs = atMs;
    const head = this.heap[0]!;
    // A slot that opened before the head packet was due is wasted: a new one is drawn from now.
    if (this.slotNextMs < head.departMs) this.drawSlot(atMs);
    if (head.departMs <= atMs && this.slotNextMs <= atMs) {
      this.pop();
      head.departMs = atMs;
      this.ready.push(head);
      this.slotPacketsLeft--;
      this.slotBytesLeft -= head.bytes.length;
      if (this.slotPacketsLeft <= 0 || this.slotBytesLeft <= 0) this.drawSlot(atMs);
    }
  }

  private drawSlot(atMs: number): void {
    const slot = this.spec.slot!;
    let delayMs: number;
    if (slot.kind === 'range') {
      delayMs = slot.minDelayMs + (slot.maxDelayMs - slot.minDelayMs) * this.rng.nextFloat();
    } else {
      const rnd = this.rng.nextFloat();
      if (slot.distribution === 'uniform') {
        delayMs = slot.delayMs - slot.jitterMs + 2 * slot.jitterMs * rnd;
      } else {
        const table = distributionTable(slot.distribution);
        delayMs = slot.delayMs + (slot.jitterMs * table[Math.floor(rnd * table.length)]!) / 8192;
      }
      if (delayMs < 0) delayMs = 0;
    }
    this.slotNextMs = atMs + delayMs;
    this.slotPacketsLeft = slot.maxPackets === 0 ? Infinity : slot.maxPackets;
    this.slotBytesLeft = slot.maxBytes === 0 ? Infinity : slot.maxBytes;
  }

  private push(entry: Entry<P>): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(entry);
    const t = entry.departMs;
    const s = entry.seq;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.departMs < t || (parent.departMs === t && parent.seq < s)) break;
      heap[i] = parent;
      i = parentIndex;
    }
    heap[i] = entry;
  }

  private pop(): Entry<P> {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    const n = heap.length;
    if (n === 0) return top;
    const t = last.departMs;
    const s = last.seq;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      let c = heap[child]!;
      const right = child + 1;
      if (right < n) {
        const r = heap[right]!;
        if (r.departMs < c.departMs || (r.departMs === c.departMs && r.seq < c.seq)) {
          child = right;
          c = r;
        }
      }
      if (t < c.departMs || (t === c.departMs && s < c.seq)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

/**
 * Specs from parseNetemSpec always pass; this catches hand-built ones (a programmer error, so it
 * throws rather than counting anything).
 */
function assertSpec(spec: NetemSpec): void {
  const bad = (what: string): never => {
    throw new RangeError(`netem: invalid spec, ${what}`);
  };
  const ratio = (name: string, v: number): void => {
    if (!(v >= 0 && v <= 1)) bad(`${name} must be a ratio from 0 to 1, got ${v}`);
  };
  const time = (name: string, v: number): void => {
    if (!(v >= 0 && Number.isFinite(v))) bad(`${name} must be a finite time >= 0 ms, got ${v}`);
  };
  if (!(Number.isInteger(spec.limitPackets) && spec.limitPackets >= 0)) bad(`limitPackets must be an integer >= 0, got ${spec.limitPackets}`);
  if (spec.delay !== undefined) {
    time('delayMs', spec.delay.delayMs);
    time('jitterMs', spec.delay.jitterMs);
    ratio('delay correlationRatio', spec.delay.correlationRatio);
  }
  const loss = spec.loss;
  if (loss?.model === 'random') [loss.lossRatio, loss.correlationRatio].forEach((v) => ratio('loss', v));
  if (loss?.model === 'state') [loss.p13Ratio, loss.p31Ratio, loss.p32Ratio, loss.p23Ratio, loss.p14Ratio].forEach((v) => ratio('loss state', v));
  if (loss?.model === 'gemodel') [loss.pRatio, loss.rRatio, loss.oneMinusHRatio, loss.oneMinusKRatio].forEach((v) => ratio('loss gemodel', v));
  for (const [name, c] of [['duplicate', spec.duplicate], ['corrupt', spec.corrupt], ['reorder', spec.reorder]] as const) {
    if (c !== undefined) [c.ratio, c.correlationRatio].forEach((v) => ratio(name, v));
  }
  if (spec.reorder !== undefined && !(Number.isInteger(spec.reorder.gapPackets) && spec.reorder.gapPackets >= 1)) {
    bad(`reorder gapPackets must be an integer >= 1, got ${spec.reorder.gapPackets}`);
  }
  if (spec.rate !== undefined && !(spec.rate.rateBps >= 0 && Number.isFinite(spec.rate.rateBps))) bad(`rateBps must be finite and >= 0, got ${spec.rate.rateBps}`);
  const slot = spec.slot;
  if (slot?.kind === 'range') {
    time('slot minDelayMs', slot.minDelayMs);
    time('slot maxDelayMs', slot.maxDelayMs);
    if (slot.maxDelayMs < slot.minDelayMs) bad('slot maxDelayMs must not be below minDelayMs');
  }
  if (slot?.kind === 'distribution') {
    time('slot delayMs', slot.delayMs);
    time('slot jitterMs', slot.jitterMs);
  }
}

/**
 * INET_ECN_set_ce for an IPv4 or IPv6 packet: a CE-marked copy, the packet itself when it is
 * CE already, or undefined when it is not ECN-capable (or not IP), in which case it is dropped.
 */
export function markCe(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length === 0) return undefined;
  const version = bytes[0]! >> 4;
  if (version === 4) {
    const ihl = (bytes[0]! & 0x0f) * 4;
    if (ihl < 20 || bytes.length < ihl) return undefined;
    const ecn = bytes[1]! & 3;
    if (ecn === 3) return bytes;
    if (ecn === 0) return undefined;
    const copy = bytes.slice();
    copy[1] = copy[1]! | 3;
    // Recompute the header checksum rather than patch it: simpler, and this path is rare.
    copy[10] = 0;
    copy[11] = 0;
    let sum = 0;
    for (let i = 0; i < ihl; i += 2) sum += (copy[i]! << 8) | copy[i + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const checksum = ~sum & 0xffff;
    copy[10] = checksum >> 8;
    copy[11] = checksum & 0xff;
    return copy;
  }
  if (version === 6) {
    if (bytes.length < 40) return undefined;
    const ecn = (bytes[1]! >> 4) & 3;
    if (ecn === 3) return bytes;
    if (ecn === 0) return undefined;
    const copy = bytes.slice();
    copy[1] = copy[1]! | 0x30;
    return copy;
  }
  return undefined;
}
