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
    get: async (key) => store.get(key),
    getMany: async (keys) =>
      store.getMany ? store.getMany([...keys]) : Promise.all(keys.map((key) => store.get(key))),
    has: async (key) => (store.has ? store.has(key) : (await store.get(key)) !== undefined),
    async set(prefix, name, value, ttl) {
      await store.set(joinKey(prefix, name), value, ttl);
    },
    async setMany(prefix, entries) {
      for (const { name, value, ttl } of entries) await store.set(joinKey(prefix, name), value, ttl);
    },
    delete: async (prefix, name) => store.delete(joinKey(prefix, name)),
    async deleteMany(prefix, names) {
      // One at a time: some adapters' deleteMany stop at the first missing key.
      let all = true;
      for (const name of names) all = (await store.delete(joinKey(prefix, name))) && all;
      return all;
    },
    names() {
      throw unsupported("Listing a scope");
    },
    clear() {
      return Promise.reject(unsupported("Clearing a scope"));
    },
  };
}

function describe(store: object): string {
  return `the store ${store.constructor?.name ?? "object"}`;
}
