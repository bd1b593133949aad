/** Min-heap ordered by (atMs, seq): equal times pop in insertion order, so runs are deterministic. */
export interface HeapItem {
  atMs: number;
  seq: number;
}

/**
 * Sifts move a hole instead of swapping pairs: one store per level rather than a destructuring
 * swap's two (the World pushes and pops one item per datagram stage).
 */
export class MinHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    let i = a.length;
    a.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const up = a[p]!;
      if (!less(item, up)) break;
      a[i] = up;
      i = p;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && less(a[r]!, a[l]!) ? r : l;
        const child = a[m]!;
        if (!less(child, last)) break;
        a[i] = child;
        i = m;
      }
      a[i] = last;
    }
    return top;
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
