/**
 * Decoded matrices kept between searches, per opened storage (its driver) and prefix, with an
 * LRU bound on how many workspaces and how many bytes stay resident. Entries are revalidated
 * against the backend before every use (see sync.ts); this module only holds and evicts them.
 */
import { LOG_LIMIT } from "../backends/change-log.js";
import { InvalidArgumentError } from "../errors.js";
import type { Matrix } from "./matrix.js";

export interface CacheLimits {
  /** Workspaces (vector collections) kept decoded at once; default 64. */
  maxWorkspaces: number;
  /**
   * Bytes kept at once, counting all a cached workspace holds: its matrix memory plus an
   * estimate (on the high side) of its ids, metadata and kept stored values; default 1 GiB.
   */
  maxBytes: number;
}

export const DEFAULT_CACHE_LIMITS: Readonly<CacheLimits> = Object.freeze({
  maxWorkspaces: 64,
  maxBytes: 1024 ** 3,
});

/** Where tests and benchmarks find a store's cache (not part of the public API). */
export const VECTOR_CACHE = Symbol.for("keyv-workspaces.vectorCache");

/**
 * Own writes a loaded cache lets pass before it catches up with the store (vectors/store.ts): a
 * quarter of what every backend's change log keeps, so the log still reaches back to the cache's
 * version with room for other writers' changes and for writes still in flight.
 */
export const CATCH_UP = LOG_LIMIT / 4;

/** What `OwnWrites` remembers of a delete. */
export const DELETED = Symbol("deleted");

/**
 * This handle's writes since `version`, already in the matrix: name → the stored value written
 * (or DELETED). A revalidation that finds a name still holding that value skips decoding it.
 */
export type OwnWrites = Map<string, string | typeof DELETED>;

export class CacheEntry {
  matrix: Matrix | undefined;
  /** The backend version the contents reflect; undefined when the driver has none. */
  version: string | undefined;
  /** False until the first full load: own writes are not applied to an entry nobody loaded. */
  synced = false;
  readonly own: OwnWrites = new Map();
  /** Names this handle has written (or is writing) since `version`: bounded, see vectors.ts. */
  ownSince = 0;
  /** Own writes begun and not yet applied: a catch-up waits for them, so it need not decode them. */
  readonly writing = new Set<Promise<unknown>>();
  /** Bumped by every revalidation that ends: an own write that saw it change applies nothing. */
  epoch = 0;
  /** The catch-up under way (collections/vectors.ts), shared by every writer that waits for it. */
  catching: Promise<void> | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  get bytes(): number {
    return this.matrix?.bytes ?? 0;
  }

  /** Runs `fn` after every earlier call has settled: loads and own writes never interleave. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }
}

export class VectorCache {
  readonly limits: CacheLimits;
  /** Insertion order = recency: the first entry is the least recently used. */
  readonly #entries = new Map<string, CacheEntry>();

  constructor(limits: Partial<CacheLimits> = {}) {
    this.limits = cacheLimits(limits);
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    let total = 0;
    for (const entry of this.#entries.values()) total += entry.bytes;
    return total;
  }

  /** The entry for `key`, created if missing, now the most recently used. */
  entry(key: string): CacheEntry {
    let entry = this.#entries.get(key);
    if (entry) this.#entries.delete(key);
    else entry = new CacheEntry();
    this.#entries.set(key, entry);
    return entry;
  }

  peek(key: string): CacheEntry | undefined {
    return this.#entries.get(key);
  }

  /** Evicts least recently used entries until both limits hold (`keep` goes last, if at all). */
  trim(keep?: CacheEntry): void {
    let bytes = this.bytes;
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.limits.maxWorkspaces && bytes <= this.limits.maxBytes) return;
      if (entry === keep) continue;
      this.#entries.delete(key);
      bytes -= entry.bytes;
    }
    // Only `keep` is left over budget: a workspace larger than maxBytes is not kept between searches.
    if (keep && bytes > this.limits.maxBytes) {
      for (const [key, entry] of this.#entries) if (entry === keep) this.#entries.delete(key);
    }
  }
}

/** Defaults filled in; a negative or fractional limit is an InvalidArgumentError. */
export function cacheLimits(limits: Partial<CacheLimits>): CacheLimits {
  const out = { ...DEFAULT_CACHE_LIMITS };
  for (const field of ["maxWorkspaces", "maxBytes"] as const) {
    const value = limits[field];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new InvalidArgumentError(`vector cache ${field} must be a non-negative integer, got ${String(value)}`);
    }
    out[field] = value;
  }
  return out;
}

const caches = new WeakMap<object, VectorCache>();

/** One cache per opened storage (`owner` is its shared state), shared by its withWorkspace views. */
export function cacheFor(owner: object, limits: Partial<CacheLimits>): VectorCache {
  let cache = caches.get(owner);
  if (!cache) {
    cache = new VectorCache(limits);
    caches.set(owner, cache);
  }
  return cache;
}
