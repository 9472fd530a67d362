/**
 * Export and import of one workspace as ExportRecords, one per entry, streamed: a batch of names,
 * their values, then the next batch, so memory stays flat whatever the workspace's size.
 *
 * A record carries the value as Keyv stored it, decoded from its `{"value":…}` envelope: plain
 * JSON, with bytes as Keyv writes them (`":base64:<base64>"`, and a string that starts with ":"
 * gets one more ":"). The envelope's expiry becomes `expiresAt`. Importing writes the same
 * envelope back, so every collection reads its entries exactly as before. A value that is not
 * such an envelope (raw writes) travels as its stored text with `raw: true`.
 */
import { InvalidArgumentError, InvalidValueError } from "../errors.js";
import { COLLECTIONS, metaKey, validateCollection, validateName } from "../keys.js";
import { dropWorkspace } from "./drop.js";
import { collectionPrefixes, hostCollections, type LifecycleHost } from "./registry.js";
import { BATCH, batches } from "./stats.js";

export interface ExportRecord {
  collection: string;
  name: string;
  value: unknown;
  /** Absolute expiry, ms since the epoch; absent = none. */
  expiresAt?: number;
  /** The stored text itself, for a value that is not a Keyv envelope. */
  raw?: boolean;
}

export interface ImportOptions {
  /** Drop the workspace first; by default records are merged into what is there. */
  replace?: boolean;
  /** Called after each batch with the entries written so far. */
  onProgress?: (written: number) => void;
}

/**
 * For records read from NDJSON (cli/ndjson.ts): the source's line of the record it yielded last,
 * for errors that name the line. Keyed by the source, so a record costs no entry of its own.
 */
export const LINE_OF = new WeakMap<object, () => number>();

const ENVELOPE_KEYS = new Set(["value", "expires"]);

function decode(raw: unknown): { value: unknown; expiresAt?: number } | undefined {
  if (typeof raw !== "string" || !raw.startsWith('{"value"')) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof data !== "object" || data === null || !Object.keys(data).every((k) => ENVELOPE_KEYS.has(k))) {
    return undefined;
  }
  const { value, expires } = data as { value: unknown; expires?: unknown };
  if (expires === undefined || expires === null) return { value };
  return typeof expires === "number" ? { value, expiresAt: expires } : undefined;
}

/** The collection name a record may carry: a collection, or the workflow index beside one. */
function collectionOf(prefixCollection: string, prefix: string, own: string): string {
  return prefix === own ? prefixCollection : `${prefixCollection}#vectors`;
}

export async function* exportWorkspace(host: LifecycleHost): AsyncGenerator<ExportRecord> {
  const ks = host.keyspace;
  const now = Date.now();
  for (const collection of await hostCollections(host)) {
    for (const prefix of collectionPrefixes(ks, collection)) {
      const store = host.plain(prefix);
      const name = collectionOf(collection, prefix, ks.prefix(collection));
      for await (const names of batches(store)) {
        const values = await store.getMany(names);
        for (let i = 0; i < names.length; i++) {
          const stored = values[i];
          if (stored === undefined || stored === null) continue;
          const decoded = decode(stored);
          if (decoded === undefined) {
            yield { collection: name, name: names[i] as string, value: String(stored), raw: true };
            continue;
          }
          if (decoded.expiresAt !== undefined && decoded.expiresAt <= now) continue;
          yield { collection: name, name: names[i] as string, ...decoded };
        }
      }
    }
  }
}

/** Batches an import has in flight at most (memory: IN_FLIGHT × BATCH records). */
export const IN_FLIGHT = Number(process.env.XIF ?? 4);

const RECORD_KEYS = new Set(["collection", "name", "value", "expiresAt", "raw"]);
const BUILT_IN = new Set<string>(COLLECTIONS);

/** An entry as the store takes it; its collection is the Source's target. */
interface Checked {
  name: string;
  value: string;
  ttl?: number;
}

/** What check() works out once per collection name rather than once per record. */
interface Target {
  collection: string;
  base: string;
  prefix: string;
}

/** The collection a record names, checked (and remembered while the next records name the same one). */
function targetOf(host: LifecycleHost, collection: string, source: Source): Target {
  const isIndex = collection.endsWith("#vectors");
  const base = isIndex ? collection.slice(0, -"#vectors".length) : collection;
  try {
    validateCollection(base);
  } catch (error) {
    return failAt(source, (error as Error).message, error);
  }
  const ks = host.keyspace;
  if (isIndex && !BUILT_IN.has(base)) failAt(source, `${JSON.stringify(collection)} is no collection's index`);
  if (!ks.isScoped(base))
    failAt(source, `collection ${JSON.stringify(base)} is shared by all workspaces, not part of one`);
  return { collection, base, prefix: isIndex ? metaKey(ks.prefix(base), "vectors") : ks.prefix(base) };
}

/** Where a record came from, for its errors: its line, or its number among the records. */
interface Source {
  lineOf: (() => number) | undefined;
  index: number;
  /** The target of the record before, while records name the same collection. */
  target?: Target;
}

/** The error of a bad record, naming where it came from. */
function failAt(source: Source, why: string, cause?: unknown): never {
  const where = source.lineOf ? `line ${source.lineOf()}` : `record ${source.index + 1}`;
  throw new InvalidValueError(`${where}: ${why}`, cause === undefined ? undefined : { cause });
}

function check(host: LifecycleHost, record: unknown, source: Source): Checked | undefined {
  if (typeof record !== "object" || record === null || Array.isArray(record)) return failAt(source, "not an object");
  for (const key of Object.keys(record))
    if (!RECORD_KEYS.has(key)) failAt(source, `unknown field ${JSON.stringify(key)}`);
  const { collection, name, value, expiresAt, raw } = record as Record<string, unknown>;
  if (typeof collection !== "string") return failAt(source, "collection must be a string");
  let target = source.target;
  if (target?.collection !== collection) source.target = target = targetOf(host, collection, source);
  try {
    validateName(name);
  } catch (error) {
    return failAt(source, (error as Error).message, error);
  }
  if (value === undefined) failAt(source, "value is missing");
  if (expiresAt !== undefined && (typeof expiresAt !== "number" || !Number.isFinite(expiresAt))) {
    failAt(source, "expiresAt must be a number (ms since the epoch)");
  }
  if (raw !== undefined && typeof raw !== "boolean") failAt(source, "raw must be a boolean");
  if (raw === true && typeof value !== "string") failAt(source, "a raw value must be the stored text");
  let stored: string;
  if (raw === true) stored = value as string;
  else {
    try {
      stored = JSON.stringify(expiresAt === undefined ? { value } : { value, expires: expiresAt });
    } catch (error) {
      return failAt(source, `value cannot be written as JSON: ${(error as Error).message}`, error);
    }
  }
  if (expiresAt === undefined) return { name: name as string, value: stored };
  const ttl = (expiresAt as number) - Date.now();
  return ttl > 0 ? { name: name as string, value: stored, ttl } : undefined;
}

export async function importWorkspace(
  host: LifecycleHost,
  records: AsyncIterable<unknown> | Iterable<unknown>,
  options: ImportOptions = {},
): Promise<number> {
  if (host.keyspace.workspaceId === undefined) {
    throw new InvalidArgumentError(
      "importWorkspace() needs a workspace: this storage is unscoped (use storage.withWorkspace(id).importWorkspace())",
    );
  }
  if (options.replace) await dropWorkspace(host);
  type Group = { collection: string; entries: Checked[] };
  type Batch = Map<string, Group>;
  let pending: Batch = new Map();
  let size = 0;
  let written = 0;
  // Up to IN_FLIGHT batches are written while the next is read and checked, so neither the parser
  // nor the server waits on the other. Batches without a name in common commute; a batch that
  // shares a name with one still in flight waits until every earlier batch is stored, so a name
  // that comes twice ends with its last record, on every engine. A failed write ends the import
  // at the next flush (a batch already sent after it may be stored too: an import merges).
  const inFlight: { done: Promise<void>; names: Map<string, Set<string>> }[] = [];
  const write = async (batch: Batch) => {
    for (const [prefix, { collection, entries }] of batch) {
      await host.store(prefix, collection).setMany(entries);
      written += entries.length;
    }
    options.onProgress?.(written);
  };
  const namesOf = (batch: Batch) =>
    new Map([...batch].map(([prefix, group]) => [prefix, new Set(group.entries.map((entry) => entry.name))]));
  const shares = (names: Map<string, Set<string>>, earlier: Map<string, Set<string>>) => {
    for (const [prefix, own] of names) {
      const other = earlier.get(prefix);
      if (other) for (const name of own) if (other.has(name)) return true;
    }
    return false;
  };
  const oldest = async () => {
    await (inFlight.shift() as (typeof inFlight)[number]).done;
  };
  const flush = async () => {
    const batch = pending;
    pending = new Map();
    size = 0;
    if (batch.size === 0) return;
    const names = namesOf(batch);
    if (inFlight.some((earlier) => shares(names, earlier.names))) while (inFlight.length > 0) await oldest();
    while (inFlight.length >= IN_FLIGHT) await oldest();
    const done = write(batch);
    // Awaited by a later flush or at the end; until then a failure must not count as unhandled.
    done.catch(() => {});
    inFlight.push({ done, names });
  };
  const settle = async () => {
    await flush();
    while (inFlight.length > 0) await oldest();
  };
  const source: Source = { lineOf: LINE_OF.get(records), index: 0 };
  const iterator =
    Symbol.asyncIterator in records
      ? (records as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (records as Iterable<unknown>)[Symbol.iterator]();
  try {
    for (let index = 0; ; index++) {
      let checked: Checked | undefined;
      try {
        const step = await iterator.next();
        if (step.done) break;
        source.index = index;
        checked = check(host, step.value, source);
      } catch (error) {
        // A bad record (or unreadable input) ends the import; the records before it are kept.
        await settle();
        throw error;
      }
      if (!checked) continue;
      const { prefix, base } = source.target as Target;
      let group = pending.get(prefix);
      if (!group) pending.set(prefix, (group = { collection: base, entries: [] }));
      group.entries.push(checked);
      if (++size >= BATCH) await flush();
    }
    await settle();
  } catch (error) {
    // Nothing of this import is left running once it has failed.
    await Promise.allSettled(inFlight.splice(0).map((f) => f.done));
    throw error;
  }
  return written;
}
