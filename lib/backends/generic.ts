import type { KeyvStoreAdapter } from "keyv";
import { UnsupportedStoreError } from "../errors.js";
import { joinKey } from "../keys.js";
import type { Driver } from "./driver.js";

/** What can list one prefix exactly, for messages that say what would work instead. */
const WORKS =
  "a Map, @keyv/redis (any copy or version, standalone or cluster), @keyv/valkey, keyv-file, " +
  "or a backend opened by URL with openStorage()";

// Adapters known by class name, so a message names the package an app installed.
const PACKAGES: Record<string, string> = {
  KeyvSqlite: "@keyv/sqlite",
  KeyvPostgres: "@keyv/postgres",
  KeyvMysql: "@keyv/mysql",
  KeyvMongo: "@keyv/mongo",
  KeyvMemcache: "@keyv/memcache",
  KeyvEtcd: "@keyv/etcd",
  KeyvRedis: "@keyv/redis",
  KeyvValkey: "@keyv/valkey",
};

/** The adapter as a user would recognise it: its package (when known) and its class. */
export function describeAdapter(store: object): string {
  const name = store.constructor?.name;
  if (!name || name === "Object") return "a plain-object store adapter";
  const known = PACKAGES[name];
  // A Redis adapter lands here only over a client we cannot drive (e.g. a Sentinel client).
  const how = name === "KeyvRedis" || name === "KeyvValkey" ? " over a client this library cannot drive" : "";
  return known ? `the ${known} adapter (${name})${how}` : `the store adapter ${name}`;
}

/** The process warning told once when such an adapter is wrapped (scopeStore, createStorage). */
export function unsupportedWarning(store: object): string {
  return (
    `keyv-workspaces cannot list keys by prefix through ${describeAdapter(store)}: get/set/has/delete work, ` +
    "but iterator(), clear() and listing (list()) of a scope over it fail with ERR_UNSUPPORTED_STORE — " +
    "and under a plain Keyv, which swallows adapter errors, clear() then deletes nothing. " +
    `What works: ${WORKS}.`
  );
}

/**
 * Driver over an adapter we know nothing about: point reads and writes map keys,
 * but listing or clearing one prefix would mean trusting the adapter's own
 * namespace/iterator semantics, which differ per adapter — so we refuse instead of guessing.
 */
export function genericDriver(store: KeyvStoreAdapter): Driver {
  const unsupported = (what: string) =>
    new UnsupportedStoreError(
      `${what} needs a store that can list keys by prefix, and ${describeAdapter(store)} has no way this ` +
        `library trusts. What works: ${WORKS}.`,
    );
  return {
    scope(prefix) {
      const key = (name: string) => joinKey(prefix, name);
      const remove = async (name: string) => (await store.delete(key(name))) === true;
      return {
        prefix,
        get: async (name) => store.get(key(name)),
        getMany: async (names) =>
          store.getMany ? store.getMany(names.map(key)) : Promise.all(names.map((name) => store.get(key(name)))),
        has: async (name) => (store.has ? store.has(key(name)) : (await store.get(key(name))) !== undefined),
        async set(name, value, ttl) {
          await store.set(key(name), value, ttl);
        },
        async setMany(entries) {
          for (const { name, value, ttl } of entries) await store.set(key(name), value, ttl);
        },
        delete: remove,
        async deleteMany(names) {
          // One at a time: some adapters' deleteMany stop at the first missing key.
          let deleted = 0;
          for (const name of names) if (await remove(name)) deleted++;
          return deleted;
        },
        names() {
          throw unsupported("Listing a scope");
        },
        clear: () => Promise.reject(unsupported("Clearing a scope")),
      };
    },
  };
}
