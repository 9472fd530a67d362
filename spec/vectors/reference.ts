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

/** Canonical JSON (sorted keys): two JSON values are deeply equal when these strings are. */
function canon(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canon).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The documented filter semantics written out plainly (docs/vectors.md), independent of
 * lib/vectors/filter.ts: the yardstick for filtered search.
 */
export function referenceMatches(filter: Record<string, unknown>, metadata: Record<string, unknown>): boolean {
  return Object.entries(filter).every(([field, condition]) => {
    const present = Object.hasOwn(metadata, field);
    const value = metadata[field];
    const isOps =
      condition !== null &&
      typeof condition === "object" &&
      !Array.isArray(condition) &&
      Object.keys(condition).some((k) => k.startsWith("$"));
    const ops = (isOps ? condition : { $eq: condition }) as Record<string, unknown>;
    return Object.entries(ops).every(([op, operand]) => {
      const same = (x: unknown) => present && canon(value) === canon(x);
      const ordered =
        present && typeof value === typeof operand && (typeof value === "number" || typeof value === "string");
      const v = value as number;
      const b = operand as number;
      switch (op) {
        case "$eq":
          return same(operand);
        case "$ne":
          return !same(operand);
        case "$in":
          return (operand as unknown[]).some(same);
        case "$nin":
          return !(operand as unknown[]).some(same);
        case "$gt":
          return ordered && v > b;
        case "$gte":
          return ordered && v >= b;
        case "$lt":
          return ordered && v < b;
        case "$lte":
          return ordered && v <= b;
        default:
          throw new Error(`reference: unknown operator ${op}`);
      }
    });
  });
}
