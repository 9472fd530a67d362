/**
 * The k best of n scores without sorting all n: a bounded min-heap whose root is the worst
 * kept entry, so most rows cost one comparison. Order is score descending, then id
 * ascending (code units), so equal scores come back in the same order everywhere.
 */

/**
 * Positions i in 0..count-1 of the best min(k, count) entries, best first.
 * Entry i has score scores[i] and id ids[rows ? rows[i] : i].
 */
export function topK(
  scores: Float32Array,
  count: number,
  k: number,
  ids: readonly string[],
  rows?: Int32Array,
): Int32Array {
  const size = Math.min(k, count);
  const heapRow = new Int32Array(size);
  const heapScore = new Float64Array(size);
  let filled = 0;

  const idOf = rows ? (i: number) => ids[rows[i]!]! : (i: number) => ids[i]!;
  // "a worse than b": lower score, or same score and later id.
  const worse = (sa: number, ra: number, sb: number, rb: number) => sa < sb || (sa === sb && idOf(ra) > idOf(rb));

  const siftDown = (at: number) => {
    const s = heapScore[at]!;
    const r = heapRow[at]!;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= filled) break;
      const right = left + 1;
      let child = left;
      if (right < filled && worse(heapScore[right]!, heapRow[right]!, heapScore[left]!, heapRow[left]!)) child = right;
      if (!worse(heapScore[child]!, heapRow[child]!, s, r)) break;
      heapScore[at] = heapScore[child]!;
      heapRow[at] = heapRow[child]!;
      at = child;
    }
    heapScore[at] = s;
    heapRow[at] = r;
  };

  for (let i = 0; i < count; i++) {
    const s = scores[i]!;
    const row = i;
    if (filled < size) {
      // Sift up.
      let at = filled++;
      while (at > 0) {
        const parent = (at - 1) >> 1;
        if (!worse(s, row, heapScore[parent]!, heapRow[parent]!)) break;
        heapScore[at] = heapScore[parent]!;
        heapRow[at] = heapRow[parent]!;
        at = parent;
      }
      heapScore[at] = s;
      heapRow[at] = row;
    } else if (s > heapScore[0]! || (s === heapScore[0]! && idOf(row) < idOf(heapRow[0]!))) {
      heapScore[0] = s;
      heapRow[0] = row;
      siftDown(0);
    }
  }

  // Pop worst-first into the back of the result.
  const out = new Int32Array(size);
  for (let i = size - 1; i >= 0; i--) {
    out[i] = heapRow[0]!;
    filled--;
    if (filled > 0) {
      heapScore[0] = heapScore[filled]!;
      heapRow[0] = heapRow[filled]!;
      siftDown(0);
    }
  }
  return out;
}
