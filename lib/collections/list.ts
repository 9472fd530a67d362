import { compareNames, type PageOptions, type PrefixStore } from "../backends/driver.js";
import { InvalidArgumentError } from "../errors.js";
import { isWellFormed } from "../keys.js";
import { warnOnce } from "../warnings.js";
import { decodeValue } from "./codec.js";

const BATCH = 500;

/** What `list({ prefix, after, limit })` takes; every field optional, all of them checked before any I/O. */
export interface ListOptions {
  /** Only names starting with this text. */
  prefix?: string | undefined;
  /** Only names sorted strictly after this one (the last name of the previous page). */
  after?: string | undefined;
  /** At most this many (a positive integer); omitted = all. */
  limit?: number | undefined;
}

interface Checked {
  startsWith: string | undefined;
  after: string | undefined;
  limit: number | undefined;
}

/** The options of a paged listing, checked; InvalidArgumentError names what is wrong. */
export function checkListOptions(options: unknown, what: string): Checked {
  if (options === undefined) return { startsWith: undefined, after: undefined, limit: undefined };
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${what} options must be an object ({ prefix?, after?, limit? })`);
  }
  const { prefix, after, limit } = options as ListOptions;
  const text = (value: unknown, field: string) => {
    if (value !== undefined && typeof value !== "string") {
      throw new InvalidArgumentError(`${what} ${field} must be a string, got ${typeof value}`);
    }
    // No name holds these (validateName), and Redis and SQL could not compare them faithfully.
    if (value !== undefined && (!isWellFormed(value) || value.includes("\u0000"))) {
      throw new InvalidArgumentError(`${what} ${field} contains an unpaired UTF-16 surrogate or a NUL character`);
    }
    return value === "" ? undefined : value;
  };
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) {
    throw new InvalidArgumentError(`${what} limit must be a positive integer, got ${String(limit)}`);
  }
  return { startsWith: text(prefix, "prefix"), after: text(after, "after"), limit };
}

/** Every name in the collection, sorted by code point order (stable across backends and locales). */
export async function listNames(store: PrefixStore): Promise<string[]> {
  const names = new Set<string>();
  for await (const name of store.names()) names.add(name);
  return [...names].sort(compare);
}

/**
 * One sorted page of names: the driver's own `page` (a range read on Redis), else every name
 * sorted and cut (O(n log n) per page).
 */
export async function pageNames(store: PrefixStore, options: PageOptions): Promise<string[]> {
  if (store.page) return store.page(options);
  const { after, startsWith, limit } = options;
  const names = new Set<string>();
  for await (const name of store.names()) {
    if ((after === undefined || compare(name, after) > 0) && (startsWith === undefined || name.startsWith(startsWith)))
      names.add(name);
  }
  return [...names].sort(compare).slice(0, limit);
}

/** The names of a listing with options: all of them when no limit is given, else one page. */
export async function listNamesWith(store: PrefixStore, options: Checked): Promise<string[]> {
  if (options.limit === undefined && options.after === undefined && options.startsWith === undefined) {
    return listNames(store);
  }
  if (options.limit === undefined) {
    const all = await listNames(store);
    return all.filter(
      (name) =>
        (options.after === undefined || compare(name, options.after) > 0) &&
        (options.startsWith === undefined || name.startsWith(options.startsWith)),
    );
  }
  return pageNames(store, { after: options.after, startsWith: options.startsWith, limit: options.limit });
}

/**
 * [name, value] for every live entry, sorted by name; entries that vanish meanwhile are skipped.
 * An entry that cannot be decoded is skipped too, with a process warning, so one bad entry never
 * takes the listing down. With a limit, pages are read until `limit` live entries are found or the
 * names run out: an entry whose value vanished (expired, deleted meanwhile) never shortens a page.
 */
export async function listValues<T>(store: PrefixStore, options?: Checked): Promise<Array<[string, T]>> {
  const out: Array<[string, T]> = [];
  const collect = async (names: string[]) => {
    for (let i = 0; i < names.length; i += BATCH) {
      const chunk = names.slice(i, i + BATCH);
      const raws = await store.getMany(chunk);
      chunk.forEach((name, j) => {
        const value = readable(store, name, raws[j]);
        if (value !== undefined && value !== null) out.push([name, value as T]);
      });
    }
  };
  const limit = options?.limit;
  if (options === undefined || limit === undefined) {
    await collect(options === undefined ? await listNames(store) : await listNamesWith(store, options));
    return out;
  }
  let after = options.after;
  for (;;) {
    const want = limit - out.length;
    const names = await pageNames(store, { after, startsWith: options.startsWith, limit: want });
    await collect(names);
    if (names.length < want || out.length >= limit) return out.slice(0, limit);
    after = names[names.length - 1];
  }
}

/** The decoded value, or undefined (with a warning) when it cannot be decoded. */
export function readable(store: PrefixStore, name: string, raw: unknown): unknown {
  try {
    return decodeValue(raw, name);
  } catch (error) {
    warnOnce(
      "KVWS_UNREADABLE_ENTRY",
      `skipped ${JSON.stringify(name)} under ${JSON.stringify(store.prefix)}: ${(error as Error).message}`,
    );
    return undefined;
  }
}

/**
 * Code point order, which is UTF-8 byte order: the order Redis (`ZRANGE … BYLEX`) and SQL's
 * "C" collation page in, so every backend sorts and pages alike (see compareNames).
 */
export const compare = compareNames;
