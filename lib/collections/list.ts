import type { PrefixStore } from "../backends/driver.js";
import { warnOnce } from "../warnings.js";
import { decodeValue } from "./codec.js";

const BATCH = 500;

/** Every name in the collection, sorted by code unit order (stable across backends and locales). */
export async function listNames(store: PrefixStore): Promise<string[]> {
  const names = new Set<string>();
  for await (const name of store.names()) names.add(name);
  return [...names].sort(compare);
}

/**
 * [name, value] for every live entry, sorted by name; entries that vanish meanwhile are skipped.
 * An entry that cannot be decoded is skipped too, with a process warning, so one bad entry never
 * takes the listing down.
 */
export async function listValues<T>(store: PrefixStore): Promise<Array<[string, T]>> {
  const names = await listNames(store);
  const out: Array<[string, T]> = [];
  for (let i = 0; i < names.length; i += BATCH) {
    const chunk = names.slice(i, i + BATCH);
    const raws = await store.getMany(chunk);
    chunk.forEach((name, j) => {
      const value = readable(store, name, raws[j]);
      if (value !== undefined && value !== null) out.push([name, value as T]);
    });
  }
  return out;
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

export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
