/**
 * Keeping a cached matrix coherent with the backend, across processes, at one cheap read per
 * search in the common case:
 *
 * - `store.version()` unchanged since the last load: the matrix is current.
 * - changed, and the driver can say which names changed (`changedSince`): refetch those rows.
 * - otherwise (or no version at all): list and fetch every row, but decode only rows whose
 *   stored value differs from the one the cached row came from. Stored values of the map and
 *   file backends are the backend's own strings, so keeping them costs no memory and
 *   comparing unchanged ones is a pointer check.
 *
 * The version is read before any data, so a write racing a load is seen by the next search.
 */
import type { PrefixStore } from "../backends/driver.js";
import type { CacheEntry } from "./cache.js";
import { parseRow } from "./codec.js";
import type { Kernel } from "./kernel.js";
import { Matrix } from "./matrix.js";

const FETCH_BATCH = 1000;

export interface SyncSource {
  readonly store: PrefixStore;
  names(): AsyncIterable<string>;
  /** Stored values (as the driver returns them) for these names; missing ones undefined. */
  fetch(names: string[]): Promise<unknown[]>;
  /** A stored value → the row object written by upsert, or undefined (missing, expired, not a row). */
  decode(raw: unknown): unknown;
}

export interface SyncOptions {
  kernel: Kernel;
  int8: boolean;
}

export async function revalidate(entry: CacheEntry, source: SyncSource, options: SyncOptions): Promise<void> {
  try {
    await sync(entry, source, options);
  } catch (error) {
    // A load that failed half way leaves rows of two versions: the next use starts from scratch.
    entry.synced = false;
    throw error;
  }
}

async function sync(entry: CacheEntry, source: SyncSource, options: SyncOptions): Promise<void> {
  const { store } = source;
  const version = store.version ? await store.version() : undefined;
  if (entry.synced && version !== undefined && entry.version === version) return;
  if (entry.synced && version !== undefined && entry.version !== undefined && store.changedSince) {
    const changed = await store.changedSince(entry.version);
    if (changed) {
      await refetch(entry, source, options, [...new Set(changed)]);
      entry.version = version;
      return;
    }
  }
  await reload(entry, source, options);
  entry.version = version;
  entry.synced = true;
}

async function* batches(source: SyncSource, names: string[]): AsyncGenerator<[string[], unknown[]]> {
  for (let i = 0; i < names.length; i += FETCH_BATCH) {
    const chunk = names.slice(i, i + FETCH_BATCH);
    yield [chunk, await source.fetch(chunk)];
  }
}

/** Decodes the values at `which` (all when omitted); awaits only when a custom deserializer is async. */
async function decodeSome(source: SyncSource, raws: unknown[], which?: number[]): Promise<unknown[]> {
  const out: unknown[] = new Array(raws.length);
  let pending = false;
  for (const i of which ?? raws.keys()) {
    out[i] = source.decode(raws[i]);
    if (out[i] instanceof Promise) pending = true;
  }
  return pending ? Promise.all(out) : out;
}

/** Applies one stored row; returns false when it does not fit the matrix (other dimension, bad values). */
function apply(entry: CacheEntry, options: SyncOptions, name: string, value: unknown, raw: unknown, capacity = 16) {
  const row = parseRow(value);
  if (!row) {
    entry.matrix?.remove(name);
    return;
  }
  entry.matrix ??= new Matrix(options.kernel, row.d, { int8: options.int8, capacity });
  const matrix = entry.matrix;
  // A row of another dimension can only come from a writer that raced the dimension check; it is not searchable.
  if (row.d !== matrix.d || !matrix.set(name, row.v, row.m, raw)) matrix.remove(name);
}

/** Whether cached rows remember their stored value: only needed (and only paid for) without changedSince. */
export function keepsStoredValues(store: PrefixStore): boolean {
  return !store.changedSince;
}

async function reload(entry: CacheEntry, source: SyncSource, options: SyncOptions): Promise<void> {
  const keepRaw = keepsStoredValues(source.store);
  const names: string[] = [];
  for await (const name of source.names()) names.push(name);
  const live = new Set(names);
  let matrix = entry.matrix;
  if (matrix) {
    // From the end: remove() moves the last row into the hole, and that row was already checked.
    for (let r = matrix.n - 1; r >= 0; r--) if (!live.has(matrix.ids[r]!)) matrix.remove(matrix.ids[r]!);
  }
  let first = true;
  let unchanged = 0;
  for await (const [chunk, raws] of batches(source, names)) {
    const changed: number[] = [];
    for (let i = 0; i < chunk.length; i++) {
      // Unchanged since decoded: `===` on strings is a pointer check when they are the same object.
      const raw = raws[i];
      if (keepRaw && raw !== undefined && matrix?.has(chunk[i]!) && matrix.rawOf(chunk[i]!) === raw) unchanged++;
      else changed.push(i);
    }
    const values = await decodeSome(source, raws, changed);
    for (const i of changed) {
      const name = chunk[i]!;
      const raw = raws[i];
      const value = values[i];
      if (first) {
        // The workspace was emptied and refilled with another dimension: start over.
        const d = parseRow(value)?.d;
        if (d !== undefined) {
          first = false;
          if (matrix && matrix.d !== d && unchanged === 0) entry.matrix = matrix = undefined;
        }
      }
      apply(entry, options, name, value, keepRaw ? raw : undefined, names.length);
      matrix = entry.matrix;
    }
  }
  if (entry.matrix?.n === 0) entry.matrix = undefined;
}

async function refetch(entry: CacheEntry, source: SyncSource, options: SyncOptions, names: string[]): Promise<void> {
  const present: Array<[string, unknown]> = [];
  for await (const [chunk, raws] of batches(source, names)) {
    const values = await decodeSome(source, raws);
    chunk.forEach((name, i) => {
      if (parseRow(values[i])) present.push([name, values[i]]);
      else entry.matrix?.remove(name);
    });
  }
  // Deletions first: if they emptied the workspace, its next rows may set a new dimension.
  if (entry.matrix?.n === 0) entry.matrix = undefined;
  for (const [name, value] of present) apply(entry, options, name, value, undefined);
  if (entry.matrix?.n === 0) entry.matrix = undefined;
}
