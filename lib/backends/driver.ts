import type { KeyvStoreAdapter } from "keyv";

/**
 * What a backend must offer so that a scoped view can be exact: reads by full key,
 * writes that know their prefix (so a backend can keep a per-prefix index in step
 * with the value), and listing/clearing of exactly one prefix.
 *
 * A "name" is the part after `<prefix>:`; the full key is always `joinKey(prefix, name)`.
 * Values are opaque to drivers (Keyv hands them serialised strings).
 */
export interface Driver {
  get(key: string): Promise<unknown>;
  getMany(keys: readonly string[]): Promise<unknown[]>;
  has(key: string): Promise<boolean>;
  /** `ttl` in milliseconds; undefined = no expiry. */
  set(prefix: string, name: string, value: unknown, ttl?: number): Promise<void>;
  setMany(prefix: string, entries: readonly DriverEntry[]): Promise<void>;
  delete(prefix: string, name: string): Promise<boolean>;
  deleteMany(prefix: string, names: readonly string[]): Promise<boolean>;
  /** Every live name under `<prefix>:`, each once, in no particular order. */
  names(prefix: string): AsyncIterable<string>;
  /** Deletes every key under `<prefix>:` and nothing else. */
  clear(prefix: string): Promise<void>;
  /**
   * A value that changes whenever anything under `prefix` changes (it may also change
   * more often). Lets caches revalidate with one cheap read.
   */
  version?(prefix: string): Promise<string>;
  /**
   * Names written or deleted under `prefix` since `version` (a value returned by
   * `version()`), or undefined when the driver cannot tell (the caller then reloads all).
   */
  changedSince?(prefix: string, version: string): Promise<string[] | undefined>;
}

/** A backend opened from a URL: the adapter, plus how to release it. */
export interface Backend {
  /** The adapter; scoped views wrap it with scopeStore(). */
  readonly store: AnyStore;
  /** Normalised URL for bootstrap configs (absolute file path, credentials kept as given). */
  readonly url: string;
  /** Flush pending writes and release connections/files. Idempotent. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Bound on connecting to a server; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Bound on waiting for one command's reply from a server; default twice connectTimeoutMs. */
  commandTimeoutMs?: number;
}

export interface DriverEntry {
  name: string;
  value: unknown;
  ttl?: number | undefined;
}

// biome-ignore lint/suspicious/noExplicitAny: Keyv's own signature accepts any Map
export type AnyStore = KeyvStoreAdapter | Map<any, any>;

/** Our own adapters carry their driver under this symbol, so detection is exact. */
export const DRIVER = Symbol.for("keyv-workspaces.driver");

export interface WithDriver {
  [DRIVER]: Driver;
}

export function hasOwnDriver(store: unknown): store is WithDriver {
  return typeof store === "object" && store !== null && DRIVER in store;
}
