import { joinKey } from "../keys.js";
import type { Driver, DriverEntry } from "./driver.js";

// Keyv keeps a Map's expiry inside the value, serialised last: `{"value":…,"expires":<ms>}`.
const EXPIRES = /"expires":(\d+)\}$/;

function expired(value: unknown): boolean {
  const expires =
    typeof value === "string"
      ? Number(EXPIRES.exec(value)?.[1] ?? Number.NaN)
      : (value as { expires?: unknown } | null)?.expires;
  return typeof expires === "number" && expires <= Date.now();
}

interface PrefixRecord {
  version: number;
  /**
   * The prefix's names, built on its first listing and then kept in step by every write.
   * Only for Maps the library owns, where every write passes through this driver.
   */
  names: Set<string> | undefined;
}

/**
 * Driver over a Map (Keyv's default store). TTL is left to Keyv, which keeps the expiry
 * inside the value exactly as it does with a raw Map.
 *
 * Listing walks the Map's keys in place (nothing is copied or re-serialised). For a Map the
 * library owns (`memory:` URLs) every write passes through here, so the first listing of a
 * prefix also builds a name set that later writes keep current, and from then on listing
 * costs O(entries of that scope). Prefixes never listed pay nothing for it on writes.
 */
// biome-ignore lint/suspicious/noExplicitAny: Keyv accepts any Map as a store
export function mapDriver(map: Map<any, any>, options: { owned?: boolean } = {}): Driver {
  const owned = options.owned === true;
  // One lookup per write finds both the version (for vector caches) and the name set.
  const prefixes = new Map<string, PrefixRecord>();
  const record = (prefix: string): PrefixRecord => {
    let found = prefixes.get(prefix);
    if (!found) {
      found = { version: 0, names: undefined };
      prefixes.set(prefix, found);
    }
    return found;
  };
  const done = Promise.resolve();
  const remove = (prefix: string, name: string): boolean => {
    const deleted = map.delete(joinKey(prefix, name));
    const rec = record(prefix);
    rec.names?.delete(name);
    if (deleted) rec.version++;
    return deleted;
  };

  function* walk(prefix: string): Generator<string> {
    const start = `${prefix}:`;
    for (const key of map.keys()) {
      if (typeof key === "string" && key.startsWith(start)) yield key.slice(start.length);
    }
  }
  const indexed = (prefix: string): Set<string> | undefined => {
    if (!owned) return undefined;
    const rec = record(prefix);
    rec.names ??= new Set(walk(prefix));
    return rec.names;
  };

  return {
    get: (key) => Promise.resolve(map.get(key)),
    getMany: (keys) => Promise.resolve(keys.map((key) => map.get(key))),
    has: (key) => {
      const value = map.get(key);
      return Promise.resolve(value !== undefined && !expired(value));
    },
    set(prefix, name, value) {
      map.set(joinKey(prefix, name), value);
      const rec = prefixes.get(prefix) ?? record(prefix);
      rec.version++;
      if (rec.names !== undefined) rec.names.add(name);
      return done;
    },
    async setMany(prefix, entries: readonly DriverEntry[]) {
      const rec = record(prefix);
      for (const { name, value } of entries) {
        map.set(joinKey(prefix, name), value);
        rec.names?.add(name);
      }
      rec.version++;
    },
    delete: (prefix, name) => Promise.resolve(remove(prefix, name)),
    async deleteMany(prefix, names) {
      let all = true;
      for (const name of names) all = remove(prefix, name) && all;
      return all;
    },
    async *names(prefix) {
      yield* indexed(prefix) ?? walk(prefix);
    },
    async clear(prefix) {
      const rec = record(prefix);
      // Spread first: deleting from the set we iterate is safe, but keys come from either source.
      for (const name of [...(indexed(prefix) ?? walk(prefix))]) map.delete(joinKey(prefix, name));
      rec.names?.clear();
      rec.version++;
    },
    version: async (prefix) => String(prefixes.get(prefix)?.version ?? 0),
  };
}
