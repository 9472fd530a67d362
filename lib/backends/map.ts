import { joinKey, layoutPrefixLength, SEPARATOR } from "../keys.js";
import type { Quota, QuotaUsage } from "../quota.js";
import { ChangeLog, LOG_LIMIT } from "./change-log.js";
import type { PageOptions, StoreChange } from "./driver.js";
import { type CountedCore, MapQuotas } from "./map-quota.js";
import { expired, namesOf, type PrefixState } from "./map-state.js";
import { SortedNames } from "./sorted-names.js";

/**
 * One counter for every map of the process: a version is never handed out twice, so a version
 * kept from a prefix that was emptied (its state dropped) or from a store opened again is older
 * than anything that can be answered for now, and is refused instead of misread.
 */
let clock = 0;

type AnyMap = Map<unknown, unknown>;

const mapSet = Map.prototype.set;
const mapDelete = Map.prototype.delete;

/**
 * The bookkeeping of a Map-backed store (memory and file backends). Each prefix lists the names
 * written under it — never the keys that merely start with its text — and its state exists only
 * while it has entries: created by a write, dropped when the last name goes. Reads, listings and
 * deletes of empty prefixes allocate nothing.
 *
 * Values are written with Map.prototype methods, so a Map subclass that routes its own
 * set/delete here (MemoryStore) is not called back.
 */
export class MapCore {
  #map: AnyMap;
  readonly #prefixes = new Map<string, PrefixState>();
  readonly #logLimit: number;
  /** Set only while someone watches, so an unwatched write pays one check. */
  #listeners: Set<(change: StoreChange) => void> | undefined;
  /** Full keys written since track(), while a durable store records a batch (see track). */
  #touched: Set<string> | undefined;
  #touchedAll = false;
  /** Counts of the workspaces with a quota; undefined while none has one, so a write pays one check. */
  #quotas: MapQuotas | undefined;

  constructor(map: AnyMap, options: { logLimit?: number } = {}) {
    this.#map = map;
    this.#logLimit = options.logLimit ?? LOG_LIMIT;
    for (const key of map.keys()) if (typeof key === "string") this.#attribute(key);
  }

  /** Every change from now on, until the returned function is called (see Driver.watch). */
  watch(listener: (change: StoreChange) => void): () => void {
    (this.#listeners ??= new Set()).add(listener);
    return () => {
      this.#listeners?.delete(listener);
      if (this.#listeners?.size === 0) this.#listeners = undefined;
    };
  }

  /**
   * From now until untrack(), remember every full key a write touches (sets, deletes, prunes,
   * clears), so a durable store can log what a batch changed instead of the whole map.
   */
  track(): void {
    this.#touched = new Set();
    this.#touchedAll = false;
  }

  /** The keys touched since track(); `all` when the whole map was emptied in between. */
  untrack(): { keys: Set<string>; all: boolean } {
    const keys = this.#touched ?? new Set<string>();
    const all = this.#touchedAll;
    this.#touched = undefined;
    this.#touchedAll = false;
    return { keys, all };
  }

  #emit(change: StoreChange): void {
    const listeners = this.#listeners;
    if (listeners) for (const listener of [...listeners]) listener(change);
  }

  get quotas(): MapQuotas | undefined {
    return this.#quotas;
  }

  /** Sets or (null) removes the quota of workspace `base`, counting what it holds now. */
  setQuota(base: string, limit: Quota | null): void {
    (this.#quotas ??= new MapQuotas(this.#counted())).set(base, limit);
    if (this.#quotas.size === 0) this.#quotas = undefined;
  }

  /** Makes the quotas exactly `limits` (a file store read them from its files). */
  syncQuotas(limits: ReadonlyMap<string, Quota>): void {
    if (limits.size === 0 && !this.#quotas) return;
    (this.#quotas ??= new MapQuotas(this.#counted())).sync(limits);
    if (this.#quotas.size === 0) this.#quotas = undefined;
  }

  readQuota(base: string): QuotaUsage | undefined {
    return this.#quotas?.read(base);
  }

  #counted(): CountedCore {
    const prefixes = this.#prefixes;
    return {
      prefixes: () => [...prefixes].map(([prefix, state]): [string, Set<string>] => [prefix, state.keys]),
      value: (key) => this.#map.get(key),
      *expired(prefix, now) {
        for (const [name, at] of prefixes.get(prefix)?.expiring ?? []) if (at <= now) yield joinKey(prefix, name);
      },
      prune: (prefix) => void this.prune(prefix),
    };
  }

  /** Prefixes that currently hold state (exactly those with entries). */
  get prefixCount(): number {
    return this.#prefixes.size;
  }

  get(prefix: string, name: string): unknown {
    return this.#map.get(joinKey(prefix, name));
  }

  has(prefix: string, name: string): boolean {
    const value = this.#map.get(joinKey(prefix, name));
    return value !== undefined && !expired(value);
  }

  /** `expiresAt` (ms) when written with a TTL: listings hide the name once it passes. */
  set(prefix: string, name: string, value: unknown, expiresAt?: number): void {
    const key = joinKey(prefix, name);
    mapSet.call(this.#map, key, value);
    this.#touched?.add(key);
    const state = this.#added(prefix, name, key);
    this.#quotas?.added(prefix, key, value);
    if (expiresAt !== undefined) (state.expiring ??= new Map()).set(name, expiresAt);
    else state.expiring?.delete(name);
    if (this.#listeners) this.#emit({ prefix, name, op: "set", value });
  }

  /** Deletes the prefix's names whose TTL passed (logged, so caches drop them); run by TTL writes, as on Redis. */
  prune(prefix: string, now = Date.now()): number {
    const expiring = this.#prefixes.get(prefix)?.expiring;
    if (!expiring) return 0;
    const gone: string[] = [];
    for (const [name, at] of expiring) if (at <= now) gone.push(name);
    for (const name of gone) this.delete(prefix, name);
    return gone.length;
  }

  delete(prefix: string, name: string): boolean {
    const key = joinKey(prefix, name);
    const existed = mapDelete.call(this.#map, key);
    this.#touched?.add(key);
    this.#removed(prefix, name, key, existed);
    return existed;
  }

  clear(prefix: string): void {
    const state = this.#prefixes.get(prefix);
    if (!state) return;
    for (const key of state.keys) {
      mapDelete.call(this.#map, key);
      this.#touched?.add(key);
      this.#quotas?.removed(prefix, key);
    }
    // Nothing of the prefix is left, so nothing of it is kept: a cache from before it reloads.
    this.#prefixes.delete(prefix);
    if (this.#listeners) this.#emit({ prefix, name: null, op: "clear" });
  }

  /** The live names of the prefix, as a new array (names whose TTL passed are hidden until pruned). */
  names(prefix: string): string[] {
    const state = this.#prefixes.get(prefix);
    if (!state) return [];
    const names = namesOf(state.keys, prefix);
    const expiring = state.expiring;
    if (!expiring || expiring.size === 0) return names;
    const now = Date.now();
    return names.filter((name) => !((expiring.get(name) ?? Number.POSITIVE_INFINITY) <= now));
  }

  /**
   * One sorted page, O(log n + page) once the prefix has been paged before: the first page sorts
   * its names once (O(n log n)), and later writes keep that order (see sorted-names.ts).
   */
  page(prefix: string, options: PageOptions): string[] {
    const state = this.#prefixes.get(prefix);
    if (!state) return [];
    state.sorted ??= new SortedNames(namesOf(state.keys, prefix));
    const { keys, expiring } = state;
    const now = Date.now();
    return state.sorted.page(options, (name) => {
      if (!keys.has(joinKey(prefix, name))) return false;
      const at = expiring?.get(name);
      return at === undefined || at > now;
    });
  }

  /** "0" for a prefix without entries; otherwise a number no other state of any prefix had. */
  version(prefix: string): string {
    const state = this.#prefixes.get(prefix);
    if (!state) return "0";
    state.log ??= new ChangeLog(state.version, this.#logLimit);
    return String(state.version);
  }

  changedSince(prefix: string, version: string): string[] | undefined {
    const state = this.#prefixes.get(prefix);
    if (!state) return version === "0" ? [] : undefined;
    // "0" is an empty prefix: whatever changed since, what a reader lacks is what is there now.
    if (version === "0") return namesOf(state.keys, prefix);
    const since = Number(version);
    // Only the exact text handed out ("007" or "7.0" never was); a version from the future was
    // never handed out here (another store, or made up).
    if (!Number.isSafeInteger(since) || String(since) !== version || since > state.version) return undefined;
    if (since === state.version) return [];
    state.log ??= new ChangeLog(state.version, this.#logLimit);
    return state.log.since(since);
  }

  /** The length of the prefix `key` was written under, if any (for encoders that keep it). */
  prefixLengthOf(key: string): number | undefined {
    for (let i = key.lastIndexOf(SEPARATOR); i > 0; i = key.lastIndexOf(SEPARATOR, i - 1)) {
      if (this.#prefixes.get(key.slice(0, i))?.keys.has(key)) return i;
    }
    return undefined;
  }

  /** A write by full key (a plain Keyv over the adapter): it joins the prefix the layout gives it. */
  rawSet(key: string, value: unknown): void {
    mapSet.call(this.#map, key, value);
    this.#touched?.add(key);
    this.#attribute(key);
  }

  rawDelete(key: string): boolean {
    const at = this.prefixLengthOf(key);
    const existed = mapDelete.call(this.#map, key);
    this.#touched?.add(key);
    if (at !== undefined) this.#removed(key.slice(0, at), key.slice(at + 1), key, existed);
    return existed;
  }

  rawClear(): void {
    Map.prototype.clear.call(this.#map);
    if (this.#touched) this.#touchedAll = true;
    this.#prefixes.clear();
    this.#quotas?.reset();
    if (this.#listeners) this.#emit({ prefix: null, name: null, op: "reset" });
  }

  /**
   * The data now lives in `map` (may be the same Map) and the full keys `changed` were written or
   * deleted elsewhere (another process); `undefined` = anything may have changed. `prefixLength`
   * says where a key's prefix ends when its writer recorded it.
   */
  replace(
    map: AnyMap,
    changed: Iterable<string> | undefined,
    prefixLength?: (key: string) => number | undefined,
  ): void {
    const previous = this.#map;
    this.#map = map;
    if (changed === undefined) {
      this.#prefixes.clear();
      this.#quotas?.reset();
      const listeners = this.#listeners;
      this.#listeners = undefined;
      for (const key of map.keys()) if (typeof key === "string") this.#attribute(key, prefixLength?.(key));
      this.#listeners = listeners;
      if (listeners) this.#emit({ prefix: null, name: null, op: "reset" });
      return;
    }
    // Additions first, so a prefix whose names were all replaced keeps its state (and its log).
    const gone: string[] = [];
    for (const key of changed) {
      if (map.has(key)) this.#attribute(key, prefixLength?.(key));
      else gone.push(key);
    }
    for (const key of gone) {
      const at = this.prefixLengthOf(key);
      if (at !== undefined) this.#removed(key.slice(0, at), key.slice(at + 1), key, previous.has(key));
    }
  }

  #attribute(key: string, recorded?: number): void {
    const at = recorded ?? this.prefixLengthOf(key) ?? layoutPrefixLength(key);
    // A key with no ":" belongs to no prefix: raw Keyv data, never listed by a scope.
    if (at === undefined || at <= 0 || at >= key.length - 1) return;
    // A write this core did not make keeps its expiry (if any) inside the value, where readers see it.
    const name = key.slice(at + 1);
    const prefix = key.slice(0, at);
    this.#added(prefix, name, key).expiring?.delete(name);
    this.#quotas?.added(prefix, key, this.#map.get(key));
    if (this.#listeners) this.#emit({ prefix, name, op: "set", value: this.#map.get(key) });
  }

  /** `key` is joinKey(prefix, name), which the caller already has. */
  #added(prefix: string, name: string, key: string): PrefixState {
    let state = this.#prefixes.get(prefix);
    if (!state) {
      state = { keys: new Set(), version: 0, log: undefined, expiring: undefined, sorted: undefined };
      this.#prefixes.set(prefix, state);
    }
    const { keys } = state;
    if (state.sorted !== undefined && !keys.has(key)) state.sorted.added(name);
    keys.add(key);
    state.version = ++clock;
    state.log?.push(state.version, name);
    return state;
  }

  #removed(prefix: string, name: string, key: string, existed: boolean): void {
    const state = this.#prefixes.get(prefix);
    if (!state) return;
    const { keys } = state;
    const listed = keys.delete(key);
    if (listed) {
      state.sorted?.removed(keys.size, () => namesOf(keys, prefix));
      this.#quotas?.removed(prefix, key);
    }
    state.expiring?.delete(name);
    if (this.#listeners && (existed || listed)) this.#emit({ prefix, name, op: "delete" });
    if (keys.size === 0) {
      this.#prefixes.delete(prefix);
      return;
    }
    if (!existed && !listed) return;
    state.version = ++clock;
    state.log?.push(state.version, name);
  }
}
