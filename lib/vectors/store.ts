/**
 * The vector collection's engine: rows stored compactly through Keyv (codec.ts), searched exactly
 * by a SIMD scan over a cached contiguous matrix that every search revalidates against the
 * backend (sync.ts), so writes from other processes are seen. Loaded by its front,
 * collections/vectors.ts, on the first call.
 */

import { decodeValue } from "../collections/codec.js";
import { assertMetadata } from "../collections/json.js";
import { checkListOptions, listNames, listNamesWith } from "../collections/list.js";
import type { CollectionContext, VectorMatch, VectorOptions, VectorStore } from "../collections/types.js";
import { DimensionMismatchError, InvalidArgumentError } from "../errors.js";
import { validateName } from "../keys.js";
import { CATCH_UP, type CacheEntry, DELETED, VECTOR_CACHE, type VectorCache } from "./cache.js";
import { decodeVector, encodeRow, parseKeyvText, parseRow, toFloat32 } from "./codec.js";
import { compileFilter } from "./filter.js";
import { defaultKernel, type Kernel } from "./kernel.js";
import { Matrix } from "./matrix.js";
import { keepsStoredValues, revalidate, type SyncSource } from "./sync.js";

export interface VectorInternals {
  /** Force a kernel (tests compare the SIMD and fallback paths). */
  kernel?: Kernel;
  /** Whose cache this store shares (one per opened storage); default: a cache of its own. */
  owner?: object;
}

function checkK(k: unknown): number {
  if (typeof k !== "number" || !Number.isInteger(k) || k <= 0) {
    throw new InvalidArgumentError(`k must be a positive integer, got ${String(k)}`);
  }
  return k;
}

/** The vector store behind collections/vectors.ts createVectorStore, which checked `options` and found `cache`. */
export function vectorStore(
  ctx: CollectionContext,
  options: VectorOptions,
  internals: VectorInternals,
  cache: VectorCache,
): VectorStore {
  const { store } = ctx;
  const quantization = options.quantization ?? "none";
  const int8 = quantization === "int8";
  const kernel = internals.kernel ?? defaultKernel();
  const key = `${store.prefix}\u0000${quantization}\u0000${kernel.name}`;
  const syncOptions = { kernel, int8 };
  // Only a store that can say what changed since a version lets a cache follow its own writes.
  const tracked = Boolean(store.version && store.changedSince);

  const unwrap = (data: unknown): unknown => {
    if (data === null || typeof data !== "object") return undefined;
    const { value, expires } = data as { value?: unknown; expires?: unknown };
    return typeof expires === "number" && expires <= Date.now() ? undefined : value;
  };
  const source: SyncSource = {
    store,
    names: () => store.names(),
    fetch: (names) => store.getMany(names),
    decode(raw) {
      if (raw === undefined || raw === null) return undefined;
      return typeof raw === "string" ? unwrap(parseKeyvText(raw)) : unwrap(raw);
    },
  };

  /** The dimension of the first readable stored row, or undefined when the workspace holds none. */
  const storedDimension = async (): Promise<number | undefined> => {
    for await (const name of store.names()) {
      let row: ReturnType<typeof parseRow>;
      try {
        row = parseRow(source.decode(await store.get(name)));
      } catch {
        continue; // an unreadable row sets no dimension; search skips it and says so
      }
      if (row) return row.d;
    }
    return undefined;
  };

  // The dimension this handle last saw (its own writes, or one read of the store), so an upsert
  // costs the same at 50k rows as at 5: reading it from the store per write lists the collection.
  // A process that empties the workspace and refills it at another dimension is noticed here only
  // on a mismatch (then the store decides); until then search reports the odd rows and skips them.
  let knownD: number | undefined;
  let reading: Promise<number | undefined> | undefined;
  const readDimension = (): Promise<number | undefined> => {
    reading ??= storedDimension().finally(() => {
      reading = undefined;
    });
    return reading;
  };

  /** Refuses `d` when the workspace holds vectors of another dimension; remembers it otherwise. */
  const admit = async (d: number, what: string): Promise<void> => {
    const entry = cache.peek(key);
    let expected = entry?.synced && entry.matrix ? entry.matrix.d : knownD;
    if (expected === undefined) expected = await readDimension();
    // A remembered dimension may be stale (the workspace was emptied since); the store decides.
    if (expected !== undefined && expected !== d) expected = await readDimension();
    if (expected !== undefined && expected !== d) {
      throw new DimensionMismatchError(`${what} has ${d} dimensions; this workspace's vectors have ${expected}`);
    }
    knownD = d;
  };

  interface Prepared {
    id: string;
    values: Float32Array;
    meta: Record<string, unknown>;
    stored: string;
  }
  const prepare = (id: string, vector: ArrayLike<number>, metadata: unknown, what: string): Prepared => {
    validateName(id, "vector id");
    const values = toFloat32(vector, what);
    const meta = assertMetadata(metadata);
    // Serialised exactly as keyv.set would, so the cache can keep this very value: a later resync
    // then recognises the row as unchanged without decoding it.
    const stored = encodeRow(values, meta);
    return { id, values, meta, stored };
  };

  /**
   * An own write of `count` names, bracketed so that a loaded cache follows it without reloading:
   * before it, the cache catches up (changedSince, never a listing) whenever its own writes since
   * the version it read would come near what the change log keeps; after it, `apply` puts the
   * write into the matrix — unless a revalidation ended meanwhile (it read the store itself, and
   * may have seen a later write by someone else). Other writers' changes are still found by the
   * next revalidation, exactly: their names are in the log after the cache's version.
   */
  const ownWrite = async <T>(
    count: number,
    write: () => Promise<T>,
    apply: (entry: CacheEntry) => void,
  ): Promise<T> => {
    const entry = cache.peek(key);
    if (!entry?.synced || !tracked) {
      const result = await write();
      if (entry) await entry.exclusive(() => entry.synced && apply(entry));
      return result;
    }
    while (entry.synced && entry.ownSince > 0 && entry.ownSince + count > CATCH_UP) {
      entry.catching ??= (async () => {
        // The writes under way first: applied, they need no decoding when the log lists them.
        await Promise.allSettled([...entry.writing]);
        await entry.exclusive(() => revalidate(entry, source, syncOptions, { reload: false }));
      })()
        .catch(() => {}) // an entry that could not catch up is unsynced: the next search reloads
        .finally(() => {
          entry.ownSince = entry.writing.size;
          entry.catching = undefined;
        });
      await entry.catching;
    }
    entry.ownSince += count;
    const epoch = entry.epoch;
    const done = (async () => {
      const result = await write();
      await entry.exclusive(() => {
        if (entry.synced && entry.epoch === epoch) apply(entry);
      });
      return result;
    })();
    entry.writing.add(done);
    try {
      return await done;
    } finally {
      entry.writing.delete(done);
    }
  };

  /** Own rows into a loaded matrix (ownWrite decides whether). */
  const applyRows =
    (rows: readonly Prepared[]) =>
    (entry: CacheEntry): void => {
      const keep = keepsStoredValues(store);
      for (const { id, values, meta, stored } of rows) {
        if (!entry.synced) return;
        entry.matrix ??= new Matrix(kernel, values.length, { int8 });
        const copy = structuredClone(meta);
        if (entry.matrix.d !== values.length || !entry.matrix.set(id, values, copy, keep ? stored : undefined)) {
          entry.synced = false;
          return;
        }
        if (tracked) entry.own.set(id, stored);
      }
    };

  const vectors: VectorStore & { [VECTOR_CACHE]: VectorCache } = {
    [VECTOR_CACHE]: cache,

    async upsert(id, vector, metadata) {
      const row = prepare(id, vector, metadata, "vector");
      await admit(row.values.length, `vector ${JSON.stringify(id)}`);
      await ownWrite(1, () => store.set(id, row.stored), applyRows([row]));
      cache.trim();
    },

    async upsertMany(rows) {
      if (!Array.isArray(rows)) throw new InvalidArgumentError("vectors.upsertMany takes an array of rows");
      // Every row is checked before the first write, so a bad row leaves the store as it was.
      const prepared = rows.map((row: unknown, i) => {
        if (row === null || typeof row !== "object") {
          throw new InvalidArgumentError(`vectors.upsertMany: row ${i} must be an object { id, vector, metadata? }`);
        }
        const { id, vector, metadata } = row as { id: string; vector: ArrayLike<number>; metadata?: unknown };
        return prepare(id, vector, metadata, `vector of row ${i}`);
      });
      if (prepared.length === 0) return;
      const d = prepared[0]!.values.length;
      const odd = prepared.findIndex((row) => row.values.length !== d);
      if (odd >= 0) {
        throw new DimensionMismatchError(
          `vectors.upsertMany: row ${odd} has ${prepared[odd]!.values.length} dimensions, row 0 has ${d}`,
        );
      }
      await admit(d, "vectors.upsertMany: each vector");
      await ownWrite(
        prepared.length,
        () => store.setMany(prepared.map(({ id, stored }) => ({ name: id, value: stored }))),
        applyRows(prepared),
      );
      cache.trim();
    },

    async get(id) {
      const row = parseRow(decodeValue(await store.get(validateName(id, "vector id")), id));
      if (!row) return undefined;
      const vector = decodeVector(row.v);
      return vector ? { vector, metadata: row.m } : undefined;
    },

    async delete(id) {
      validateName(id, "vector id");
      return ownWrite(
        1,
        () => store.delete(id),
        (entry) => {
          entry.matrix?.remove(id);
          if (entry.matrix?.n === 0) entry.matrix = undefined;
          if (tracked) entry.own.set(id, DELETED);
        },
      );
    },

    count: async () => (await listNames(store)).length,
    ids: async (options) => listNamesWith(store, checkListOptions(options, "vectors.ids")),

    async search(query, searchOptions = {}) {
      const q = toFloat32(query, "query vector");
      const k = checkK(searchOptions?.k ?? 10);
      // Validated here, before the first read: a malformed filter never reaches the store.
      const filter = compileFilter(searchOptions?.filter);
      const entry = cache.entry(key);
      try {
        return await entry.exclusive(async (): Promise<VectorMatch[]> => {
          await revalidate(entry, source, syncOptions);
          const matrix = entry.matrix;
          if (!matrix) return [];
          if (matrix.d !== q.length) {
            throw new DimensionMismatchError(
              `query vector has ${q.length} dimensions; this workspace's vectors have ${matrix.d}`,
            );
          }
          const { rows, scores } = matrix.search(q, k, filter && matrix.select(filter));
          return Array.from(rows, (row, i) => ({
            id: matrix.ids[row]!,
            score: scores[i]!,
            metadata: structuredClone(matrix.metadata[row]!),
          }));
        });
      } finally {
        cache.trim(entry);
      }
    },
  };
  return vectors;
}
