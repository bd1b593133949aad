/** Deliveries out of order: how many sequence numbers came below one delivered before them. */
export function outOfOrder(seqs: readonly number[]): number {
  let n = 0;
  let max = -1;
  for (const s of seqs) {
    if (s < max) n++;
    max = Math.max(max, s);
  }
  return n;
}
