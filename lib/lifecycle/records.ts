/**
 * The records an import reads, checked one by one: what each must hold, and the entry it becomes
 * (the value in Keyv's envelope, the remaining TTL). Sources that parse many records at once (the
 * NDJSON reader) hand them over in batches (BATCHES_OF), so a record costs no promise of its own.
 */
import { InvalidValueError } from "../errors.js";
import { COLLECTIONS, metaKey, validateCollection, validateName } from "../keys.js";
import type { LifecycleHost } from "./registry.js";

/** Records parsed together, each with its line (cli/ndjson.ts). */
export interface RecordBatch {
  records: unknown[];
  lines: number[];
}

/**
 * Record sources that can also hand their records over in batches: the import takes that way
 * instead of one `next()` per record. A batch before an unreadable line comes first, then the error.
 */
export const BATCHES_OF = new WeakMap<object, () => AsyncIterable<RecordBatch>>();

const RECORD_KEYS = new Set(["collection", "name", "value", "expiresAt", "raw"]);
const BUILT_IN = new Set<string>(COLLECTIONS);

/** An entry as the store takes it; its collection is the Source's target. */
export interface Checked {
  name: string;
  value: string;
  ttl?: number;
}

/** What check() works out once per collection name rather than once per record. */
export interface Target {
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
export interface Source {
  /** Its line in the NDJSON it was read from, when known. */
  line: number | undefined;
  index: number;
  /** The target of the record before, while records name the same collection. */
  target?: Target;
}

/** The error of a bad record, naming where it came from. */
function failAt(source: Source, why: string, cause?: unknown): never {
  const where = source.line !== undefined ? `line ${source.line}` : `record ${source.index + 1}`;
  throw new InvalidValueError(`${where}: ${why}`, cause === undefined ? undefined : { cause });
}

export function check(host: LifecycleHost, record: unknown, source: Source): Checked | undefined {
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
