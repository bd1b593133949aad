/**
 * Indexed binary min-heap of items by deadline: the Endpoint keeps each peer's earliest timer here,
 * so pollTimeout() is O(1) and re-arming one peer is O(log peers), however many peers there are.
 * Items carry their own heap position (`heapIndex`, -1 when absent) and deadline.
 */
export interface HeapItem {
  heapIndex: number;
  heapDeadlineMs: number;
}

export class TimerHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** Inserts, moves or (deadline Infinity) removes `item`. */
  update(item: T, deadlineMs: number): void {
    if (deadlineMs === Infinity) return this.remove(item);
    item.heapDeadlineMs = deadlineMs;
    if (item.heapIndex < 0) {
      item.heapIndex = this.items.length;
      this.items.push(item);
      this.up(item.heapIndex);
      return;
    }
    this.up(item.heapIndex);
    this.down(item.heapIndex);
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const last = this.items.pop()!;
    item.heapIndex = -1;
    if (last === item) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.up(i);
    this.down(i);
  }

  private up(i: number): void {
    const items = this.items;
    const item = items[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (p.heapDeadlineMs <= item.heapDeadlineMs) break;
      items[i] = p;
      p.heapIndex = i;
      i = parent;
    }
    items[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && items[r]!.heapDeadlineMs < items[l]!.heapDeadlineMs ? r : l;
      if (items[c]!.heapDeadlineMs >= item.heapDeadlineMs) break;
      items[i] = items[c]!;
      items[i]!.heapIndex = i;
      i = c;
    }
    items[i] = item;
    item.heapIndex = i;
  }
}
