/**
 * Entries and bytes per collection of one scope: one call per collection prefix. Backends that
 * can count without fetching values answer natively (Redis: ZCOUNT of the index and STRLEN per
 * key); elsewhere the values are read in batches (in memory for the memory and file backends).
 */
import type { PrefixStats, PrefixStore } from "../backends/driver.js";
import { valueBytes } from "../quota.js";
import { hostCollections, type LifecycleHost } from "./registry.js";

export const BATCH = 500;

export type WorkspaceStats = Record<string, { entries: number; bytes: number }>;

/**
 * Names of a prefix in batches, while the caller may delete the ones handed out. A driver's own
 * scan() keeps memory constant but may repeat a name the prefix's writers move; names() lists each
 * once (on Redis by remembering every name: memory grows with the prefix).
 */
export async function* batches(store: PrefixStore, size = BATCH): AsyncGenerator<string[]> {
  if (store.scan) {
    for await (const page of store.scan()) {
      for (let i = 0; i < page.length; i += size) yield page.slice(i, i + size);
    }
    return;
  }
  let batch: string[] = [];
  for await (const name of store.names()) {
    batch.push(name);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

export async function prefixStats(store: PrefixStore): Promise<PrefixStats> {
  if (store.stats) return store.stats();
  let entries = 0;
  let bytes = 0;
  for await (const names of batches(store)) {
    for (const value of await store.getMany(names)) {
      if (value === undefined) continue;
      entries++;
      bytes += valueBytes(value);
    }
  }
  return { entries, bytes };
}

/** Every collection of the scope that holds data, by name; bookkeeping (a vector index) is not counted. */
export async function scopeStats(host: LifecycleHost): Promise<WorkspaceStats> {
  const result: WorkspaceStats = {};
  for (const collection of await hostCollections(host)) {
    const stats = await prefixStats(host.plain(host.keyspace.prefix(collection)));
    if (stats.entries > 0) result[collection] = { entries: stats.entries, bytes: stats.bytes };
  }
  return result;
}
