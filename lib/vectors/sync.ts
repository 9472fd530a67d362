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
import { MAX_DEPTH, withinDepth } from "../collections/json.js";
import { warnOnce } from "../warnings.js";
import { type CacheEntry, DELETED } from "./cache.js";
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

/**
 * Brings `entry` up to the backend's current version. With `reload: false` (an own write
 * catching up) it never lists the store: where the change log cannot say what changed, the entry
 * is marked unsynced instead, and the next search reloads.
 */
export async function revalidate(
  entry: CacheEntry,
  source: SyncSource,
  options: SyncOptions,
  how: { reload: boolean } = { reload: true },
): Promise<void> {
  try {
    await sync(entry, source, options, how.reload);
  } catch (error) {
    // A load that failed half way leaves rows of two versions: the next use starts from scratch.
    entry.synced = false;
    throw error;
  } finally {
    entry.epoch++;
    // Own writes since the version now read: only those still under way (their names come later).
    entry.ownSince = entry.writing.size;
  }
}

async function sync(entry: CacheEntry, source: SyncSource, options: SyncOptions, canReload: boolean): Promise<void> {
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
  if (!canReload) {
    entry.synced = false;
    return;
  }
  entry.own.clear();
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

/** A stored value that could not be decoded, and why. */
class Unreadable {
  constructor(readonly reason: string) {}
}

const why = (error: unknown): Unreadable =>
  new Unreadable(error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/**
 * Decodes the values at `which` (all when omitted); awaits only when a custom deserializer is
 * async. A value whose decoding throws or rejects (too deep for a recursive reviver, not JSON)
 * becomes an Unreadable instead of failing the whole load.
 */
async function decodeSome(source: SyncSource, raws: unknown[], which?: number[]): Promise<unknown[]> {
  const out: unknown[] = new Array(raws.length);
  let pending = false;
  for (const i of which ?? raws.keys()) {
    try {
      out[i] = source.decode(raws[i]);
    } catch (error) {
      out[i] = why(error);
    }
    if (out[i] instanceof Promise) {
      out[i] = (out[i] as Promise<unknown>).catch(why);
      pending = true;
    }
  }
  return pending ? Promise.all(out) : out;
}

type Row = NonNullable<ReturnType<typeof parseRow>>;

/** Says once per process that `name` is stored but not searchable, and why. */
function unreadable(prefix: string, name: string, reason: string): undefined {
  warnOnce(
    "KVWS_UNREADABLE_ENTRY",
    `vector entry ${JSON.stringify(name)} under ${JSON.stringify(prefix)} cannot be read and is skipped by search: ${reason}`,
  );
  return undefined;
}

/**
 * The row in a decoded value; undefined, with a warning, when a stored value is not one.
 * Metadata deeper than MAX_DEPTH (written before the limit, or by another writer) is refused
 * here too: every search result is a structuredClone of it, which recursion would overflow.
 */
function readRow(prefix: string, name: string, raw: unknown, value: unknown): Row | undefined {
  if (value instanceof Unreadable) return unreadable(prefix, name, value.reason);
  // Missing, expired, or an envelope without a value: nothing stored to search.
  if (raw === undefined || value === undefined) return undefined;
  const row = parseRow(value);
  if (!row) return unreadable(prefix, name, "it is not a vector row");
  if (!withinDepth(row.m)) return unreadable(prefix, name, `its metadata nests deeper than ${MAX_DEPTH} levels`);
  return row;
}

/** Applies one stored row (undefined: not searchable, so removed). */
function apply(
  entry: CacheEntry,
  options: SyncOptions,
  at: { prefix: string; name: string },
  row: Row | undefined,
  raw: unknown,
  capacity = 16,
): void {
  const { prefix, name } = at;
  if (!row) {
    entry.matrix?.remove(name);
    return;
  }
  entry.matrix ??= new Matrix(options.kernel, row.d, { int8: options.int8, capacity });
  const matrix = entry.matrix;
  // A row of another dimension can only come from a writer that raced the dimension check.
  if (row.d !== matrix.d) {
    matrix.remove(name);
    unreadable(prefix, name, `it has ${row.d} dimensions; this workspace's vectors have ${matrix.d}`);
  } else if (!matrix.set(name, row.v, row.m, raw)) {
    matrix.remove(name);
    unreadable(prefix, name, "its vector is truncated or not finite");
  }
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
      const row = readRow(source.store.prefix, name, raw, values[i]);
      if (first && row) {
        // The workspace was emptied and refilled with another dimension: start over.
        first = false;
        if (matrix && matrix.d !== row.d && unchanged === 0) entry.matrix = matrix = undefined;
      }
      apply(entry, options, { prefix: source.store.prefix, name }, row, keepRaw ? raw : undefined, names.length);
      matrix = entry.matrix;
    }
  }
  if (entry.matrix?.n === 0) entry.matrix = undefined;
}

/**
 * Refetches the changed names. One this handle wrote, still holding the value it wrote, is in
 * the matrix already (collections/vectors.ts applies own writes): it is not decoded again.
 */
async function refetch(entry: CacheEntry, source: SyncSource, options: SyncOptions, names: string[]): Promise<void> {
  const { prefix } = source.store;
  const { own } = entry;
  const present: Array<[string, Row]> = [];
  for await (const [chunk, raws] of batches(source, names)) {
    const changed: number[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const mine = own.get(chunk[i]!);
      const raw = raws[i];
      if (mine === undefined || (mine === DELETED ? raw !== undefined : mine !== raw)) changed.push(i);
      own.delete(chunk[i]!);
    }
    const values = await decodeSome(source, raws, changed);
    for (const i of changed) {
      const name = chunk[i]!;
      const row = readRow(prefix, name, raws[i], values[i]);
      if (row) present.push([name, row]);
      else entry.matrix?.remove(name);
    }
  }
  // Deletions first: if they emptied the workspace, its next rows may set a new dimension.
  if (entry.matrix?.n === 0) entry.matrix = undefined;
  for (const [name, row] of present) apply(entry, options, { prefix, name }, row, undefined);
  if (entry.matrix?.n === 0) entry.matrix = undefined;
}
