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

/** Line numbers of records read from NDJSON, for errors that name the line. */
export const LINE_OF = new WeakMap<object, number>();

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

const RECORD_KEYS = new Set(["collection", "name", "value", "expiresAt", "raw"]);
const BUILT_IN = new Set<string>(COLLECTIONS);

interface Checked {
  collection: string;
  prefix: string;
  name: string;
  stored: string;
  ttl: number | undefined;
}

function check(host: LifecycleHost, record: unknown, index: number, now: number): Checked | undefined {
  const where =
    typeof record === "object" && record !== null && LINE_OF.has(record)
      ? `line ${LINE_OF.get(record)}`
      : `record ${index + 1}`;
  const fail = (why: string, cause?: unknown): never => {
    throw new InvalidValueError(`${where}: ${why}`, cause === undefined ? undefined : { cause });
  };
  if (typeof record !== "object" || record === null || Array.isArray(record)) return fail("not an object");
  const unknown = Object.keys(record).filter((key) => !RECORD_KEYS.has(key));
  if (unknown.length > 0) fail(`unknown field ${JSON.stringify(unknown[0])}`);
  const { collection, name, value, expiresAt, raw } = record as Record<string, unknown>;
  if (typeof collection !== "string") return fail("collection must be a string");
  const isIndex = collection.endsWith("#vectors");
  const base = isIndex ? collection.slice(0, -"#vectors".length) : collection;
  try {
    validateCollection(base);
    validateName(name);
  } catch (error) {
    return fail((error as Error).message, error);
  }
  const ks = host.keyspace;
  if (isIndex && !BUILT_IN.has(base)) fail(`${JSON.stringify(collection)} is no collection's index`);
  if (!ks.isScoped(base)) fail(`collection ${JSON.stringify(base)} is shared by all workspaces, not part of one`);
  if (value === undefined) fail("value is missing");
  if (expiresAt !== undefined && (typeof expiresAt !== "number" || !Number.isFinite(expiresAt))) {
    fail("expiresAt must be a number (ms since the epoch)");
  }
  if (raw !== undefined && typeof raw !== "boolean") fail("raw must be a boolean");
  if (raw === true && typeof value !== "string") fail("a raw value must be the stored text");
  const prefix = isIndex ? metaKey(ks.prefix(base), "vectors") : ks.prefix(base);
  let stored: string;
  if (raw === true) stored = value as string;
  else {
    try {
      stored = JSON.stringify(expiresAt === undefined ? { value } : { value, expires: expiresAt });
    } catch (error) {
      return fail(`value cannot be written as JSON: ${(error as Error).message}`, error);
    }
  }
  if (expiresAt === undefined) return { collection: base, prefix, name: name as string, stored, ttl: undefined };
  const ttl = (expiresAt as number) - now;
  return ttl > 0 ? { collection: base, prefix, name: name as string, stored, ttl } : undefined;
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
  type Batch = Map<string, { collection: string; entries: { name: string; value: string; ttl?: number }[] }>;
  let pending: Batch = new Map();
  let size = 0;
  let written = 0;
  // One batch is written while the next is read and checked; a batch starts only once the one
  // before it is stored, so a name that comes twice ends with its last record, on every engine.
  let writing: Promise<void> = Promise.resolve();
  const write = async (batch: Batch) => {
    for (const [prefix, { collection, entries }] of batch) {
      await host.store(prefix, collection).setMany(entries);
      written += entries.length;
    }
    options.onProgress?.(written);
  };
  const flush = async () => {
    const batch = pending;
    pending = new Map();
    size = 0;
    await writing;
    writing = write(batch);
    // Awaited by the next flush or at the end; until then a failure must not count as unhandled.
    writing.catch(() => {});
  };
  const settle = async () => {
    await flush();
    await writing;
  };
  const iterator =
    Symbol.asyncIterator in records
      ? (records as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (records as Iterable<unknown>)[Symbol.iterator]();
  for (let index = 0; ; index++) {
    let checked: Checked | undefined;
    try {
      const step = await iterator.next();
      if (step.done) break;
      checked = check(host, step.value, index, Date.now());
    } catch (error) {
      // A bad record (or unreadable input) ends the import; the records before it are kept.
      await settle();
      throw error;
    }
    if (!checked) continue;
    let group = pending.get(checked.prefix);
    if (!group) pending.set(checked.prefix, (group = { collection: checked.collection, entries: [] }));
    group.entries.push(
      checked.ttl === undefined
        ? { name: checked.name, value: checked.stored }
        : { name: checked.name, value: checked.stored, ttl: checked.ttl },
    );
    if (++size >= BATCH) await flush();
  }
  await settle();
  return written;
}
