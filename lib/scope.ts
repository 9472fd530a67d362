/**
 * The namespacing decorator, as Keyv sees it: a Keyv store adapter over one prefix-bound store
 * (backends/driver.ts). It is the interop face of `collection()` and `scopeStore()`; the
 * collections use the prefix-bound store directly.
 */
import { EventEmitter } from "node:events";
import { Keyv, type KeyvOptions, type KeyvStoreAdapter, type StoredData } from "keyv";
import { type AnyStore, DRIVER, type Driver, hasOwnDriver, type PrefixStore } from "./backends/driver.js";
import { isKeyvFile, keyvFileDriver } from "./backends/file/keyv-file.js";
import { genericDriver, unsupportedWarning } from "./backends/generic.js";
import { mapDriver } from "./backends/map-scope.js";
import { redisDriverFor } from "./backends/redis/adapters.js";
import { sqlDriverFor } from "./backends/sql/adapters.js";
import { deserializeChecked, serializeChecked } from "./collections/codec.js";
import { readable } from "./collections/list.js";
import { InvalidArgumentError } from "./errors.js";
import { validatePrefix } from "./keys.js";
import { warnOnce } from "./warnings.js";

const drivers = new WeakMap<object, Driver>();

/** One driver per wrapped store, shared by every scope of it (a Map's names are booked once). */
export function driverFor(store: AnyStore): Driver {
  // WeakMap.get takes any value, so a known store (every per-request view) skips the shape check.
  let driver = drivers.get(store);
  if (!driver) {
    if (!isStore(store)) {
      throw new InvalidArgumentError(
        `store must be a Keyv store adapter (with get, set and delete) or a Map, got ${describeValue(store)}`,
      );
    }
    driver = knownDriver(store);
    if (!driver) {
      // A plain Keyv swallows the adapter's errors, so a refused clear() would pass unnoticed:
      // say so once, when the adapter is wrapped.
      warnOnce("KVWS_UNSUPPORTED_STORE", unsupportedWarning(store as KeyvStoreAdapter));
      driver = genericDriver(store as KeyvStoreAdapter);
    }
    drivers.set(store, driver);
  }
  return driver;
}

/** Recognised by what the store is (not `instanceof`: an app may hold another copy of an adapter's package). */
function knownDriver(store: AnyStore): Driver | undefined {
  if (hasOwnDriver(store)) return store[DRIVER];
  if (store instanceof Map) return mapDriver(store);
  if (isKeyvFile(store)) return keyvFileDriver(store);
  return redisDriverFor(store) ?? sqlDriverFor(store);
}

function isStore(store: unknown): store is AnyStore {
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

const ITERATE_BATCH = 256;

export class ScopedStore extends EventEmitter implements KeyvStoreAdapter {
  readonly store: PrefixStore;
  /**
   * Set when the reader's format is known (scopedKeyv's own codec): iteration then skips, with a
   * warning, an entry that cannot be decoded, instead of letting it end the whole iteration.
   */
  readable: ((name: string, raw: unknown) => boolean) | undefined;
  #namespace: string | undefined;
  /**
   * Whether the Keyv over this store passes keys without its namespace (`useKeyPrefix: false`).
   * Keyv does not tell its adapter; a key arriving without `<namespace>:` while one is set shows it.
   */
  #unprefixed = false;
  readonly opts: { prefix: string; dialect: string; url: string };

  constructor(store: PrefixStore) {
    super();
    this.store = store;
    // Keyv 5 only exposes keyv.iterator when it finds a dialect it knows in opts.url. Every
    // scoped store can iterate exactly (the driver lists one prefix), so we say so in its terms.
    this.opts = { prefix: store.prefix, dialect: "keyv-workspaces", url: "keyv-workspaces://scoped?iterable=redis" };
  }

  get prefix(): string {
    return this.store.prefix;
  }

  /**
   * Keyv writes its namespace here. Its keys live at `<prefix>:<namespace>:<key>` whether Keyv
   * adds the namespace (default) or leaves that to the adapter (`useKeyPrefix: false`, as
   * @keyv/redis does), so iterator()/clear() of one namespace find exactly its keys either way.
   */
  get namespace(): string | undefined {
    return this.#namespace;
  }

  set namespace(namespace: string | undefined) {
    this.#namespace = namespace || undefined;
  }

  /** The name a Keyv key is stored under. */
  #name(key: string): string {
    const namespace = this.#namespace;
    if (namespace === undefined) return key;
    if (!this.#unprefixed) {
      if (key.startsWith(`${namespace}:`)) return key;
      this.#unprefixed = true;
    }
    return `${namespace}:${key}`;
  }

  #names(keys: readonly string[]): string[] {
    return this.#namespace === undefined ? (keys as string[]) : keys.map((key) => this.#name(key));
  }

  // Every get/set passes through here: return the store's promise as is, no extra async frame.
  get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.store.get(this.#name(key)) as Promise<StoredData<Value> | undefined>;
  }

  getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return this.store.getMany(this.#names(keys)) as Promise<Array<StoredData<Value | undefined>>>;
  }

  has(key: string): Promise<boolean> {
    return this.store.has(this.#name(key));
  }

  hasMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(this.#names(keys).map((name) => this.store.has(name)));
  }

  /** Resolves once stored (Keyv reads a non-boolean result as success); rejects when the write failed. */
  set(key: string, value: unknown, ttl?: number): Promise<void> {
    return this.store.set(this.#name(key), value, ttl);
  }

  setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    return this.store.setMany(entries.map(({ key, value, ttl }) => ({ name: this.#name(key), value, ttl })));
  }

  delete(key: string): Promise<boolean> {
    return this.store.delete(this.#name(key));
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    return (await this.store.deleteMany(this.#names(keys))) === keys.length;
  }

  /** Deletes only this prefix's keys (only this Keyv namespace's, when one is set). */
  async clear(): Promise<void> {
    if (!this.namespace) return this.store.clear();
    const doomed: string[] = [];
    for await (const name of this.names()) doomed.push(name);
    if (doomed.length > 0) await this.store.deleteMany(doomed);
  }

  /** Names under this prefix (within the Keyv namespace, if set), prefix removed. */
  async *names(namespace = this.#namespace): AsyncGenerator<string> {
    const inNamespace = namespace ? `${namespace}:` : undefined;
    for await (const name of this.store.names()) {
      if (inNamespace === undefined || name.startsWith(inNamespace)) yield name;
    }
  }

  async *iterator<Value>(namespace?: string): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    // Keys as the Keyv over us passes them: without the namespace when it leaves that to us.
    const own = namespace ?? this.#namespace;
    const strip = own !== undefined && own === this.#namespace && this.#unprefixed ? own.length + 1 : 0;
    const key = (name: string) => (strip > 0 ? name.slice(strip) : name);
    let batch: string[] = [];
    const flush = async function* (this: ScopedStore, names: string[]) {
      const values = await this.store.getMany(names);
      for (let i = 0; i < names.length; i++) {
        // A key deleted between listing and reading is simply gone: skip it.
        const raw = values[i];
        if (raw === undefined || raw === null || (this.readable && !this.readable(names[i]!, raw))) continue;
        yield [key(names[i] as string), raw as Awaited<Value>];
      }
    };
    for await (const name of this.names(own)) {
      batch.push(name);
      if (batch.length >= ITERATE_BATCH) {
        yield* flush.call(this, batch);
        batch = [];
      }
    }
    if (batch.length > 0) yield* flush.call(this, batch);
  }

  /** The wrapped store belongs to whoever created it: a scoped view never closes it. */
  async disconnect(): Promise<void> {}
}

/** Wrap any Keyv store adapter (or Map) so every key lives under `<prefix>:`. */
export function scopeStore(store: AnyStore, prefix: string): ScopedStore {
  return new ScopedStore(driverFor(store).scope(validatePrefix(prefix, "scope prefix")));
}

/**
 * A Keyv over a scoped store whose key k lives at exactly `<prefix>:k`: no "keyv:"
 * namespace in between (useKeyPrefix: false also stops Keyv's iterator from cutting
 * keys at their first ":"), and failed writes reject instead of resolving false.
 */
export function scopedKeyv<T = unknown>(
  store: ScopedStore,
  options: Omit<KeyvOptions, "store" | "namespace"> = {},
): Keyv<T> {
  if (!options.serialize && !options.deserialize) {
    store.readable = (name, raw) => readable(store.store, name, raw) !== undefined;
  }
  return new Keyv<T>({
    throwOnErrors: true,
    serialize: serializeChecked,
    deserialize: deserializeChecked as NonNullable<KeyvOptions["deserialize"]>,
    ...options,
    store,
    namespace: undefined,
    useKeyPrefix: false,
  });
}
