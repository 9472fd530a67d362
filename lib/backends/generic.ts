import type { KeyvStoreAdapter } from "keyv";
import { UnsupportedStoreError } from "../errors.js";
import { joinKey } from "../keys.js";
import type { Driver } from "./driver.js";

/**
 * Driver over an adapter we know nothing about: point reads and writes map keys,
 * but listing or clearing one prefix would mean trusting the adapter's own
 * namespace/iterator semantics, which differ per adapter — so we refuse instead of guessing.
 */
export function genericDriver(store: KeyvStoreAdapter): Driver {
  const unsupported = (what: string) =>
    new UnsupportedStoreError(
      `${what} needs a store that can list keys by prefix; ${describe(store)} has no way this library trusts. ` +
        "Use a Map, @keyv/redis, or a backend opened with openStorage().",
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

function describe(store: object): string {
  return `the store ${store.constructor?.name ?? "object"}`;
}
