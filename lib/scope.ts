/**
 * The namespacing decorator: a Keyv store adapter that stores key `k` at `<prefix>:k`
 * on the wrapped store. It maps keys and nothing else; how one prefix is listed or
 * cleared exactly is the backend driver's job (see backends/).
 */
import { EventEmitter } from "node:events";
import { Keyv, type KeyvOptions, type KeyvStoreAdapter, type StoredData } from "keyv";
import { type AnyStore, DRIVER, type Driver, hasOwnDriver, type WithDriver } from "./backends/driver.js";
import { genericDriver } from "./backends/generic.js";
import { mapDriver } from "./backends/map.js";
import { redisDriverFor } from "./backends/redis.js";
import { InvalidArgumentError } from "./errors.js";
import { joinKey, validateDepsPrefix } from "./keys.js";

const drivers = new WeakMap<object, Driver>();

/** One driver per wrapped store, shared by every scoped view of it. */
export function driverFor(store: AnyStore | WithDriver): Driver {
  // WeakMap.get takes any value, so a known store (every per-request view) skips the shape check.
  let driver = drivers.get(store);
  if (!driver) {
    if (!isStore(store)) {
      throw new InvalidArgumentError(
        `store must be a Keyv store adapter (with get, set and delete) or a Map, got ${describeValue(store)}`,
      );
    }
    if (hasOwnDriver(store)) driver = store[DRIVER];
    else if (store instanceof Map) driver = mapDriver(store);
    else driver = redisDriverFor(store) ?? genericDriver(store);
    drivers.set(store, driver);
  }
  return driver;
}

function isStore(store: unknown): store is AnyStore | WithDriver {
  if (typeof store !== "object" || store === null) return false;
  if (store instanceof Map || hasOwnDriver(store)) return true;
  const { get, set, delete: del } = store as Record<string, unknown>;
  return typeof get === "function" && typeof set === "function" && typeof del === "function";
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return `an object without them (${value.constructor?.name ?? "no prototype"})`;
}

export class ScopedStore extends EventEmitter implements KeyvStoreAdapter {
  readonly prefix: string;
  readonly driver: Driver;
  /** Keyv writes its namespace here; we honour it for iterator()/clear() like other adapters do. */
  namespace: string | undefined;
  readonly opts: { prefix: string; dialect: string; url: string };

  constructor(store: AnyStore | WithDriver, prefix: string) {
    super();
    this.prefix = validateDepsPrefix(prefix, "scope prefix");
    this.driver = driverFor(store);
    // Keyv 5 only exposes keyv.iterator when it finds a dialect it knows in opts.url. Every
    // scoped store can iterate exactly (the driver lists one prefix), so we say so in its terms.
    this.opts = { prefix: this.prefix, dialect: "keyv-workspaces", url: "keyv-workspaces://scoped?iterable=redis" };
  }

  key(name: string): string {
    return joinKey(this.prefix, name);
  }

  // Every get/set passes through here: return the driver's promise as is, no extra async frame.
  get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.driver.get(this.key(key)) as Promise<StoredData<Value> | undefined>;
  }

  getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return this.driver.getMany(keys.map((key) => this.key(key))) as Promise<Array<StoredData<Value | undefined>>>;
  }

  has(key: string): Promise<boolean> {
    return this.driver.has(this.key(key));
  }

  hasMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(keys.map((key) => this.has(key)));
  }

  /** Resolves once stored (Keyv reads a non-boolean result as success); rejects when the write failed. */
  set(key: string, value: unknown, ttl?: number): Promise<void> {
    return this.driver.set(this.prefix, key, value, ttl);
  }

  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    return this.driver.setMany(
      this.prefix,
      entries.map(({ key, value, ttl }) => ({ name: key, value, ttl })),
    );
  }

  delete(key: string): Promise<boolean> {
    return this.driver.delete(this.prefix, key);
  }

  deleteMany(keys: string[]): Promise<boolean> {
    return this.driver.deleteMany(this.prefix, keys);
  }

  /** Deletes only this prefix's keys (only this Keyv namespace's, when one is set). */
  async clear(): Promise<void> {
    if (!this.namespace) return this.driver.clear(this.prefix);
    const doomed: string[] = [];
    for await (const name of this.names()) doomed.push(name);
    if (doomed.length > 0) await this.driver.deleteMany(this.prefix, doomed);
  }

  /** Names under this prefix (within the Keyv namespace, if set), prefix removed. */
  async *names(): AsyncGenerator<string> {
    const inNamespace = this.namespace ? `${this.namespace}:` : undefined;
    for await (const name of this.driver.names(this.prefix)) {
      if (inNamespace === undefined || name.startsWith(inNamespace)) yield name;
    }
  }

  async *iterator<Value>(namespace?: string): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    const inNamespace = namespace ? `${namespace}:` : undefined;
    const batch: string[] = [];
    const flush = async function* (this: ScopedStore) {
      const values = await this.driver.getMany(batch.map((name) => this.key(name)));
      for (let i = 0; i < batch.length; i++) {
        // A key deleted between listing and reading is simply gone: skip it.
        if (values[i] !== undefined && values[i] !== null) yield [batch[i] as string, values[i] as Awaited<Value>];
      }
      batch.length = 0;
    };
    for await (const name of this.driver.names(this.prefix)) {
      if (inNamespace !== undefined && !name.startsWith(inNamespace)) continue;
      batch.push(name);
      if (batch.length >= 256) yield* flush.call(this);
    }
    if (batch.length > 0) yield* flush.call(this);
  }

  /** The wrapped store belongs to whoever created it: a scoped view never closes it. */
  async disconnect(): Promise<void> {}
}

/** Wrap any Keyv store adapter (or Map) so every key lives under `<prefix>:`. */
export function scopeStore(store: AnyStore, prefix: string): ScopedStore {
  return new ScopedStore(store, prefix);
}

/**
 * A Keyv over a scoped store whose key k lives at exactly `<prefix>:k`: no "keyv:"
 * namespace in between (useKeyPrefix: false also stops Keyv's iterator from cutting
 * keys at their first ":"), and failed writes reject instead of resolving false.
 */
export function scopedKeyv(store: ScopedStore, options: Omit<KeyvOptions, "store" | "namespace"> = {}): Keyv {
  return new Keyv({ throwOnErrors: true, ...options, store, namespace: undefined, useKeyPrefix: false });
}
