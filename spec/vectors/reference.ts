// Straightforward float64 cosine search, the yardstick for the engine's results.

/** Deterministic Gaussian-ish numbers (sum of uniforms) from a seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
  return () => uniform() + uniform() + uniform() - 1.5;
}

export function randomVectors(n: number, d: number, seed: number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, next));
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** The k best ids by float64 cosine, ties by id (code unit order). */
export function referenceTopK(
  rows: ReadonlyArray<[string, ArrayLike<number>]>,
  query: ArrayLike<number>,
  k: number,
): Array<{ id: string; score: number }> {
  return rows
    .map(([id, v]) => ({ id, score: cosine(v, query) }))
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, k);
}
