import type { CollectionContext } from "./types.js";

const BATCH = 500;

/** Every name in the collection, sorted by code unit order (stable across backends and locales). */
export async function listNames(store: CollectionContext["store"]): Promise<string[]> {
  const names = new Set<string>();
  for await (const name of store.names()) names.add(name);
  return [...names].sort(compare);
}

/** [name, value] for every live entry, sorted by name; entries that vanish meanwhile are skipped. */
export async function listValues<T>({ keyv, store }: CollectionContext): Promise<Array<[string, T]>> {
  const names = await listNames(store);
  const out: Array<[string, T]> = [];
  for (let i = 0; i < names.length; i += BATCH) {
    const chunk = names.slice(i, i + BATCH);
    const values = await keyv.getMany<T>(chunk);
    chunk.forEach((name, j) => {
      const value = values[j];
      if (value !== undefined && value !== null) out.push([name, value as T]);
    });
  }
  return out;
}

export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
