// Placeholder: a straightforward exact search, replaced by the SIMD engine.
import { DimensionMismatchError, InvalidArgumentError, InvalidVectorError } from "../errors.js";
import { validateName } from "../keys.js";
import { assertMetadata } from "./json.js";
import { listNames, listValues } from "./list.js";
import type { CollectionContext, VectorOptions, VectorStore } from "./types.js";

interface Row {
  v: number[];
  m: Record<string, unknown>;
}

function check(vector: ArrayLike<number>): number[] {
  if (!vector || typeof vector.length !== "number" || vector.length === 0)
    throw new InvalidVectorError("vector is empty");
  const out = Array.from(vector);
  if (!out.every(Number.isFinite)) throw new InvalidVectorError("vector has NaN or Infinity components");
  return out;
}

export function createVectorStore(ctx: CollectionContext, _options: VectorOptions = {}): VectorStore {
  const { keyv, store } = ctx;
  const dims = async () => {
    for await (const name of store.names()) {
      const row = await keyv.get<Row>(name);
      if (row) return row.v.length;
    }
    return undefined;
  };
  return {
    async upsert(id, vector, metadata) {
      validateName(id, "vector id");
      const v = check(vector);
      const m = assertMetadata(metadata);
      const d = await dims();
      if (d !== undefined && d !== v.length)
        throw new DimensionMismatchError(`vector has ${v.length} dimensions; this workspace uses ${d}`);
      await keyv.set(id, { v, m });
    },
    async get(id) {
      const row = await keyv.get<Row>(validateName(id, "vector id"));
      return row ? { vector: Float32Array.from(row.v), metadata: row.m } : undefined;
    },
    delete: async (id) => keyv.delete(validateName(id, "vector id")),
    count: async () => (await listNames(store)).length,
    ids: async () => listNames(store),
    async search(query, options = {}) {
      const k = options.k ?? 10;
      if (!Number.isInteger(k) || k <= 0) throw new InvalidArgumentError(`k must be a positive integer, got ${k}`);
      const q = check(query);
      const rows = await listValues<Row>(ctx);
      if (rows.length > 0 && rows[0]![1].v.length !== q.length)
        throw new DimensionMismatchError("query dimension mismatch");
      const qn = Math.hypot(...q) || 1;
      return rows
        .map(([id, row]) => {
          const dot = row.v.reduce((s, x, i) => s + x * (q[i] ?? 0), 0);
          return { id, score: dot / (qn * (Math.hypot(...row.v) || 1)), metadata: row.m };
        })
        .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
        .slice(0, k);
    },
  };
}
