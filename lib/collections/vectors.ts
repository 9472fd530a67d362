/**
 * The vector collection: rows stored compactly through Keyv (see vectors/codec.ts), searched
 * exactly by a SIMD scan over a cached contiguous matrix that every search revalidates
 * against the backend (see vectors/sync.ts), so writes from other processes are seen.
 *
 * This is its front: options are checked here, when the store is made, and the engine
 * (vectors/store.ts and the kernel, matrix and sync modules) loads on the first call, so an app
 * that never touches vectors does not load them at start (spec/cold-start.spec.ts).
 */
import { InvalidArgumentError } from "../errors.js";
import { cacheFor, cacheLimits, VECTOR_CACHE, type VectorCache } from "../vectors/cache.js";
import type { VectorInternals } from "../vectors/store.js";
import type { CollectionContext, VectorOptions, VectorStore } from "./types.js";

export { CATCH_UP, VECTOR_CACHE } from "../vectors/cache.js";
export type { VectorInternals } from "../vectors/store.js";

export function createVectorStore(
  ctx: CollectionContext,
  options: VectorOptions = {},
  internals: VectorInternals = {},
): VectorStore {
  const quantization = options.quantization ?? "none";
  if (quantization !== "none" && quantization !== "int8") {
    throw new InvalidArgumentError(`quantization must be "none" or "int8", got ${JSON.stringify(quantization)}`);
  }
  const limits = cacheLimits({ maxWorkspaces: options.maxCachedWorkspaces, maxBytes: options.maxCacheBytes });
  const cache: VectorCache = cacheFor(internals.owner ?? {}, limits);
  let engine: Promise<VectorStore> | undefined;
  const load = () => {
    engine ??= import("../vectors/store.js").then(({ vectorStore }) => vectorStore(ctx, options, internals, cache));
    return engine;
  };
  const vectors: VectorStore & { [VECTOR_CACHE]: VectorCache } = {
    [VECTOR_CACHE]: cache,
    upsert: async (id, vector, metadata) => (await load()).upsert(id, vector, metadata),
    upsertMany: async (rows) => (await load()).upsertMany(rows),
    get: async (id) => (await load()).get(id),
    delete: async (id) => (await load()).delete(id),
    count: async () => (await load()).count(),
    ids: async (options) => (await load()).ids(options),
    search: async (query, options) => (await load()).search(query, options),
  };
  return vectors;
}
