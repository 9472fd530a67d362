import type { KeyvStoreAdapter } from "keyv";
import type { Quota, QuotaUsage } from "../quota.js";

/**
 * The one store layer: a backend driver hands out `scope(prefix)`, a store bound to one
 * prefix that takes names only. A "name" is the part after `<prefix>:`; the key a backend
 * stores it at is always `joinKey(prefix, name)`. Values are opaque to drivers (the
 * serialised strings Keyv and the collections hand over).
 *
 * Listing is exact: a prefix lists the names written under it, never the keys that merely
 * start with its text (a nested root `R:crm`'s keys are not names of `R`'s collection `crm`).
 */
export interface PrefixStore {
  readonly prefix: string;
  /** The stored value, or undefined when missing or expired. */
  get(name: string): Promise<unknown>;
  getMany(names: readonly string[]): Promise<unknown[]>;
  has(name: string): Promise<boolean>;
  /** `ttl` in milliseconds; undefined (or not positive) = no expiry. */
  set(name: string, value: unknown, ttl?: number): Promise<void>;
  setMany(entries: readonly Entry[]): Promise<void>;
  /**
   * Overwrites a name that holds a value, without a TTL, in one atomic step, and resolves with the
   * value it replaced (as stored); undefined when it wrote nothing: the name held no value, or the
   * store cannot do it in one step right now (the caller then reads and writes as usual). A store
   * that cannot refuse a new name (the Redis hash layout: `HSET`) resolves with null when the name
   * held no value and it wrote one. Optional: where one round trip can do it (Redis `SET … XX GET`,
   * `MULTI HGET HSET EXEC`), artifacts.save spends one round trip.
   */
  replace?(name: string, value: unknown): Promise<unknown>;
  /** Whether a value existed. */
  delete(name: string): Promise<boolean>;
  /** How many of the names had a value. */
  deleteMany(names: readonly string[]): Promise<number>;
  /** Every live name under the prefix, each once, in no particular order. */
  names(): AsyncIterable<string>;
  /** Deletes every name of this prefix and nothing else. */
  clear(): Promise<void>;
  /**
   * Live names starting with `startsWith`, strictly after `after`, sorted by UTF-16 code unit
   * order, at most `limit`. Optional: lib/collections/list.ts sorts `names()` for drivers
   * without it. Options arrive validated.
   */
  page?(options: PageOptions): Promise<string[]>;
  /**
   * A value that changes whenever anything under the prefix changes (it may also change more
   * often), so a cache revalidates with one cheap read. Kept where `tracksChanges(prefix)` says
   * (vector prefixes); a driver may keep it for every prefix.
   */
  version?(): Promise<string>;
  /**
   * Names written or deleted since `version` (a value `version()` returned), or undefined when
   * the driver cannot tell (the caller then reloads everything).
   */
  changedSince?(version: string): Promise<string[] | undefined>;
  /**
   * Live entries and the bytes of their stored values, where the backend can tell without
   * fetching every value (lib/lifecycle/stats.ts falls back to reading them).
   */
  stats?(): Promise<PrefixStats>;
  /**
   * Live names in batches, in constant memory: unlike names() a name may come twice when the
   * prefix is written meanwhile (callers must tolerate that: deletes, idempotent copies). Where a
   * driver has no cheaper way, callers batch names() instead.
   */
  scan?(): AsyncIterable<string[]>;
  /**
   * Atomic read-modify-write of `names` (distinct): reads their stored values (undefined where
   * missing; a value Keyv marked expired is passed as stored, for the caller to judge), calls
   * `decide` with them, and applies its decisions in one all-or-nothing write, with no other write
   * to those names in between — across storages and processes. `decide` may be called again when
   * an engine lost a race and retries, so it must depend on its argument only. Resolves with the
   * decisions applied. Optional: collections refuse conditional writes (UnsupportedStoreError)
   * on a driver without it.
   */
  transact?(names: readonly string[], decide: (current: readonly unknown[]) => Decision[]): Promise<Decision[]>;
  /**
   * setMany that also writes the registry entries `registering` (value "1" at each `name` under
   * its `prefix`; lifecycle/registry.ts), in the same all-or-nothing write where the backend can:
   * the entries are never stored without them. Optional: without it the caller writes the
   * registry first and waits for it (one more round trip per new workspace).
   */
  setRegistering?(entries: readonly Entry[], registering: readonly RegistryName[]): Promise<void>;
}

/** One name a registry (lifecycle/registry.ts) lists: stored as "1" at `name` under `prefix`. */
export interface RegistryName {
  readonly prefix: string;
  readonly name: string;
}

/** What transact does to one name: write `value` (with an optional `ttl` in ms), delete it, or leave it. */
export type Decision = { value: unknown; ttl?: number | undefined } | "delete" | undefined;

export interface PrefixStats {
  entries: number;
  /** Bytes of the stored (serialised) values, UTF-8; keys and bookkeeping are not counted. */
  bytes: number;
}

export interface PageOptions {
  after?: string | undefined;
  startsWith?: string | undefined;
  /** A positive integer. */
  limit: number;
}

export interface Entry {
  name: string;
  value: unknown;
  ttl?: number | undefined;
}

/**
 * One change a driver saw: a name written (with the value written, where the driver has it) or
 * deleted, a prefix cleared, or "reset" — changes may have been missed, so a watcher reloads.
 */
export interface StoreChange {
  /** null for "reset". */
  prefix: string | null;
  /** null for "clear" and "reset". */
  name: string | null;
  op: "set" | "delete" | "clear" | "reset";
  value?: unknown;
}

/** A backend's way in: one prefix-bound store per prefix. */
export interface Driver {
  /**
   * `options.quota`: the workspace base (keys.ts workspaceBase) whose quota this prefix's entries
   * count against; set by storages for the data prefixes of a workspace, never for bookkeeping.
   * A driver with `quotas` enforces it on every write of the returned store.
   */
  scope(prefix: string, options?: ScopeOptions): PrefixStore;
  /** Per-workspace quotas kept in the backend. Optional: setQuota refuses (UnsupportedStoreError) without it. */
  readonly quotas?: QuotaBook;
  /**
   * Calls `listener` with every change any storage or process makes to the backend from now on,
   * in order per name, until the returned function is called. Optional: storage.watch() refuses
   * (UnsupportedStoreError) on a driver without it. A driver nobody watches pays nothing for it.
   * `bases` (keys.ts changeBase of the prefixes wanted) lets a server driver listen to those
   * scopes only (Redis: their channels); in-process drivers report everything.
   */
  watch?(listener: (change: StoreChange) => void, bases?: readonly string[]): () => void;
}

export interface ScopeOptions {
  quota?: string | undefined;
}

/**
 * Where a backend keeps its workspaces' quotas. Writes through a scope opened with
 * `{ quota: base }` check and count against it atomically across storages and processes: a write
 * that lib/quota.ts `exceeds()` refuses throws `quotaExceeded(…)` and writes nothing. A workspace
 * with no quota pays nothing for the feature on its write path.
 */
export interface QuotaBook {
  /**
   * Sets (or with null removes) the quota of workspace `base`, counting what its data prefixes
   * (`prefixes`, those stats() counts) hold now — consistently with writers that race it.
   */
  set(base: string, quota: Quota | null, prefixes: readonly string[]): Promise<void>;
  /** The quota of `base` and the use it counts, or undefined when it has none. */
  read(base: string): Promise<QuotaUsage | undefined>;
}

/** A backend opened from a URL: the adapter, its driver, and how to release it. */
export interface Backend {
  /** A plain Keyv store adapter over the same data (full keys), for apps that also use raw Keyv. */
  readonly store: AnyStore;
  readonly driver: Driver;
  /** Normalised URL for bootstrap configs (absolute file path, credentials kept as given). */
  readonly url: string;
  /** Opened as a Redis Cluster client from a seed node (bootstrap configs carry it). */
  readonly cluster?: boolean;
  /** Redis collections kept one hash each (config redisLayout "hash"; bootstrap configs carry it). */
  readonly redisLayout?: "hash";
  /** Writes wait for a replica (config durability "replicated"; bootstrap configs carry it). */
  readonly durability?: "replicated";
  /** Flush pending writes and release connections/files. Idempotent. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Bound on connecting to a server; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Bound on waiting for one command's reply from a server; default twice connectTimeoutMs. */
  commandTimeoutMs?: number;
  /** redis:// names one seed node of a Redis Cluster. */
  cluster?: boolean;
  /** How Redis keeps a collection (config redisLayout); default "keys". */
  redisLayout?: "keys" | "hash" | undefined;
  /** "replicated": a Redis write resolves once a replica holds it (WAIT), else NotReplicatedError. */
  durability?: "default" | "replicated" | undefined;
  /** How long a replicated write waits for a replica; default 1000 ms, at most half commandTimeoutMs. */
  replicationTimeoutMs?: number;
}

export type AnyStore = KeyvStoreAdapter | Map<unknown, unknown>;

/** The library's own adapters carry their driver under this symbol, so detection is exact. */
export const DRIVER = Symbol.for("keyv-workspaces.driver");

export interface WithDriver {
  [DRIVER]: Driver;
}

export function hasOwnDriver(store: unknown): store is WithDriver {
  return typeof store === "object" && store !== null && DRIVER in store;
}

// UTF-16 code units from 0xD800 up, shifted so surrogates (code points above U+FFFF) sort after U+E000–U+FFFF.
const point = (unit: number) => (unit < 0xd800 ? unit : unit < 0xe000 ? unit + 0x2000 : unit - 0x800);

/**
 * The order names are listed and paged in: code point order, which is UTF-8 byte order — what
 * Redis `ZRANGE … BYLEX` and SQL's "C" collation use, so every backend pages alike. It differs
 * from JavaScript's `<` (code unit order) only where a character above U+FFFF meets one in U+E000–U+FFFF.
 */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x < 0xd800 && y < 0xd800 ? x - y : point(x) - point(y);
  }
  return a.length - b.length;
}
