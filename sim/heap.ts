/** Min-heap ordered by (atMs, seq): equal times pop in insertion order, so runs are deterministic. */
export interface HeapItem {
  atMs: number;
  seq: number;
}

/**
 * The keys live in two typed arrays beside the items: a sift compares contiguous numbers instead of
 * loading each item (scattered on the JS heap, a cache miss per compare once the engines' work has
 * evicted them); the comparisons were the heap's whole cost in the fleet profile. Sifts move a hole
 * instead of swapping pairs.
 */
export class MinHeap<T extends HeapItem> {
  private items: (T | undefined)[] = [];
  private atMs = new Float64Array(64);
  private seq = new Float64Array(64);
  private n = 0;

  get size(): number {
    return this.n;
  }

  peek(): T | undefined {
    return this.n > 0 ? this.items[0] : undefined;
  }

  push(item: T): void {
    if (this.n === this.atMs.length) this.grow();
    const items = this.items;
    const at = this.atMs;
    const sq = this.seq;
    const kAt = item.atMs;
    const kSeq = item.seq;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pAt = at[p]!;
      if (pAt < kAt || (pAt === kAt && sq[p]! < kSeq)) break;
      items[i] = items[p];
      at[i] = pAt;
      sq[i] = sq[p]!;
      i = p;
    }
    items[i] = item;
    at[i] = kAt;
    sq[i] = kSeq;
  }

  pop(): T | undefined {
    if (this.n === 0) return undefined;
    const items = this.items;
    const at = this.atMs;
    const sq = this.seq;
    const top = items[0]!;
    const n = --this.n;
    const last = items[n]!;
    const lAt = at[n]!;
    const lSeq = sq[n]!;
    items[n] = undefined;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let m = l;
        if (r < n && (at[r]! < at[l]! || (at[r] === at[l] && sq[r]! < sq[l]!))) m = r;
        const mAt = at[m]!;
        if (lAt < mAt || (lAt === mAt && lSeq < sq[m]!)) break;
        items[i] = items[m];
        at[i] = mAt;
        sq[i] = sq[m]!;
        i = m;
      }
      items[i] = last;
      at[i] = lAt;
      sq[i] = lSeq;
    }
    return top;
  }

  private grow(): void {
    const at = new Float64Array(this.atMs.length * 2);
    at.set(this.atMs);
    this.atMs = at;
    const sq = new Float64Array(this.seq.length * 2);
    sq.set(this.seq);
    this.seq = sq;
  }
}

/** An item of an IndexedHeap: its key, and where it sits in the heap (-1: not in it). */
export interface IndexedHeapItem extends HeapItem {
  heapPos: number;
}

/**
 * A min-heap by (atMs, seq) whose items know their position, so an item's key can change in place
 * (O(log n)) and the heap never holds stale copies: the World keeps one entry per site here, moved
 * whenever the site's engine deadline moves (one per event, against a dead entry and a rebuild per
 * few thousand before).
 */
export class IndexedHeap<T extends IndexedHeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** Files `item` under its current key: inserts it, or moves it after its key changed. */
  update(item: T): void {
    const a = this.items;
    let i = item.heapPos;
    if (i < 0) {
      i = a.length;
      a.push(item);
      this.up(item, i);
      return;
    }
    if (i > 0 && less(item, a[(i - 1) >> 1]!)) this.up(item, i);
    else this.down(item, i);
  }

  remove(item: T): void {
    const i = item.heapPos;
    if (i < 0) return;
    item.heapPos = -1;
    const a = this.items;
    const last = a.pop()!;
    if (last === item) return;
    if (i > 0 && less(last, a[(i - 1) >> 1]!)) this.up(last, i);
    else this.down(last, i);
  }

  private up(item: T, from: number): void {
    const a = this.items;
    let i = from;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (!less(item, parent)) break;
      a[i] = parent;
      parent.heapPos = i;
      i = p;
    }
    a[i] = item;
    item.heapPos = i;
  }

  private down(item: T, from: number): void {
    const a = this.items;
    const n = a.length;
    let i = from;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const m = r < n && less(a[r]!, a[l]!) ? r : l;
      const child = a[m]!;
      if (!less(child, item)) break;
      a[i] = child;
      child.heapPos = i;
      i = m;
    }
    a[i] = item;
    item.heapPos = i;
  }
}

function less(x: HeapItem, y: HeapItem): boolean {
  return x.atMs < y.atMs || (x.atMs === y.atMs && x.seq < y.seq);
}
