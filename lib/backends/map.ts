import { joinKey, SEPARATOR } from "../keys.js";
import { ChangeLog, MAP_LOG_LIMIT } from "./change-log.js";
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

/**
 * One counter for every map driver of the process: a version is never handed out twice, so a
 * version kept from a store that was closed and opened again is older than anything the new
 * store can answer for, and is refused instead of misread.
 */
let clock = 0;

interface PrefixRecord {
  version: number;
  /**
   * The prefix's names, built on its first listing and then kept in step by every write.
   * Only for Maps the library owns, where every write passes through this driver.
   */
  names: Set<string> | undefined;
  /** What changed since when; only kept once someone asked for the prefix's version. */
  log: ChangeLog | undefined;
}

export interface MapDriverOptions {
  /** The library owns the Map (every write passes through a driver): listing may keep an index. */
  owned?: boolean;
  /** Change-log entries kept per prefix (default 1000). */
  logLimit?: number;
}

export interface MapDriver extends Driver {
  version(prefix: string): Promise<string>;
  changedSince(prefix: string, version: string): Promise<string[] | undefined>;
  /**
   * Tells the driver that its data now lives in `map` (may be the same Map) and that the full
   * keys `changed` were written or deleted outside it; `undefined` = anything may have changed.
   * `changed` is only iterated when some prefix is tracked, so a lazy generator costs nothing otherwise.
   */
  // biome-ignore lint/suspicious/noExplicitAny: Keyv accepts any Map as a store
  external(map: Map<any, any>, changed: Iterable<string> | undefined): void;
}

/**
 * Driver over a Map (Keyv's default store). TTL is left to Keyv, which keeps the expiry
 * inside the value exactly as it does with a raw Map.
 *
 * Listing walks the Map's keys in place (nothing is copied or re-serialised). For a Map the
 * library owns (`memory:` URLs) every write passes through here, so the first listing of a
 * prefix also builds a name set that later writes keep current, and from then on listing
 * costs O(entries of that scope). Prefixes never listed pay nothing for it on writes.
 *
 * Versions and change log: every write bumps the prefix's version; once a prefix's version has
 * been asked for, each write also logs the names it touched (a bounded ring), so
 * `changedSince` can name them. Writes made to a Map directly (not through this driver, e.g. a
 * caller's own Map also used with raw Keyv) are seen by neither: as before, caches over such a
 * Map only follow writes made through the library.
 */
// biome-ignore lint/suspicious/noExplicitAny: Keyv accepts any Map as a store
export function mapDriver(map: Map<any, any>, options: MapDriverOptions = {}): MapDriver {
  const owned = options.owned === true;
  const logLimit = options.logLimit ?? MAP_LOG_LIMIT;
  // One lookup per write finds the version, the name set and the log.
  const prefixes = new Map<string, PrefixRecord>();
  const record = (prefix: string): PrefixRecord => {
    let found = prefixes.get(prefix);
    if (!found) {
      found = { version: ++clock, names: undefined, log: undefined };
      prefixes.set(prefix, found);
    }
    return found;
  };
  const logged = (prefix: string): PrefixRecord => {
    const rec = record(prefix);
    rec.log ??= new ChangeLog(rec.version, logLimit);
    return rec;
  };
  const done = Promise.resolve();
  const remove = (prefix: string, name: string): boolean => {
    const deleted = map.delete(joinKey(prefix, name));
    const rec = record(prefix);
    rec.names?.delete(name);
    if (deleted) {
      rec.version = ++clock;
      rec.log?.push(rec.version, name);
    }
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
  /** A key changed behind our back: every tracked prefix it lies under learns of it. */
  const touch = (key: string): void => {
    const present = map.has(key);
    for (let i = key.indexOf(SEPARATOR); i !== -1; i = key.indexOf(SEPARATOR, i + 1)) {
      const rec = prefixes.get(key.slice(0, i));
      if (!rec) continue;
      const name = key.slice(i + 1);
      if (present) rec.names?.add(name);
      else rec.names?.delete(name);
      rec.version = ++clock;
      rec.log?.push(rec.version, name);
    }
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
      rec.version = ++clock;
      if (rec.names !== undefined) rec.names.add(name);
      if (rec.log !== undefined) rec.log.push(rec.version, name);
      return done;
    },
    async setMany(prefix, entries: readonly DriverEntry[]) {
      const rec = record(prefix);
      rec.version = ++clock;
      for (const { name, value } of entries) {
        map.set(joinKey(prefix, name), value);
        rec.names?.add(name);
        rec.log?.push(rec.version, name);
      }
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
      rec.version = ++clock;
      // As on Redis, a clear is not spelled out name by name: a cache from before it reloads.
      rec.log?.reset(rec.version);
    },
    version: async (prefix) => String(logged(prefix).version),
    async changedSince(prefix, version) {
      const since = Number(version);
      // Only the exact text handed out ("007" or "7.0" never was).
      if (!Number.isSafeInteger(since) || String(since) !== version) return undefined;
      const rec = logged(prefix);
      // A version from the future was never handed out here (another store, or made up).
      if (since > rec.version) return undefined;
      if (since === rec.version) return [];
      return rec.log!.since(since);
    },
    external(next, changed) {
      map = next;
      if (prefixes.size === 0) return;
      if (changed === undefined) {
        for (const rec of prefixes.values()) {
          rec.names = undefined;
          rec.version = ++clock;
          rec.log?.reset(rec.version);
        }
        return;
      }
      for (const key of changed) touch(key);
    },
  };
}
