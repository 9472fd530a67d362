import { StoreCorruptError } from "../../errors.js";
import { type Quota, validateQuota } from "../../quota.js";

/**
 * On-disk layout of a file store's snapshot: one JSON document,
 * `{"format":"keyv-workspaces/file","version":2,"generation":G,"folded":[g,offset]?,"entries":[[key, value, expiresAtMs|null, prefixLength?], …]}`.
 * Tuples keep it compact and decode straight into a Map. `prefixLength` records which prefix a
 * scope wrote the key under, so listing stays exact across reloads (a key of root `R:crm` is never
 * a name of root `R`'s collection `crm`); entries without it (0.1.0 files, raw writes) are placed
 * by the key layout (keys.ts layoutPrefixLength). Readers that ignore the fourth element still read it.
 *
 * Changes since the snapshot are in `<file>.log` (log.ts), whose header names the generation it
 * continues. `folded` says the snapshot already holds log generation g up to byte `offset`: a
 * compaction renames its snapshot first and replaces the log after, and readers in between replay
 * only the rest. Version 1 documents (no generation, no log) are read as generation 0 and
 * rewritten as version 2 by the first write, which version-1 code then refuses instead of
 * overwriting changes it cannot see.
 *
 * `quotas` (`{"<workspace base>": {"maxEntries"?, "maxBytes"?}, …}`, absent when there are none)
 * holds the workspaces' quota limits, in the file so that every process sharing it obeys them.
 * Older readers ignore the field: a quota is never read as data, by old code or new.
 *
 * Files written by keyv-file (`{"cache":[[key,{value,expire}]…],"lastExpire":…}`) are read too,
 * so an app can point this backend at its existing keyv-file store; the first write converts it.
 */
export const FORMAT = "keyv-workspaces/file";
export const FORMAT_VERSION = 2;

/** A snapshot entry: key, value, expiry (ms) or null, and the prefix length when known. */
export type Tuple = [string, unknown, number | null] | [string, unknown, number | null, number];

export interface Contents {
  data: Map<string, unknown>;
  /** Expiry (ms since epoch) of the keys written with a TTL. */
  expires: Map<string, number>;
  /** Where each key's prefix ends, for keys whose writer recorded it. */
  prefixLengths: Map<string, number>;
  /** The snapshot's generation: 0 for an absent, version 1 or keyv-file document. */
  generation: number;
  /** The log generation and offset this snapshot already holds, while a compaction replaces the log. */
  folded: [generation: number, offset: number] | undefined;
  /** Quota limits by workspace base (see the top of this file and log.ts QUOTA_KEY). */
  quotas: Map<string, Quota>;
}

export function emptyContents(): Contents {
  return {
    data: new Map(),
    expires: new Map(),
    prefixLengths: new Map(),
    generation: 0,
    folded: undefined,
    quotas: new Map(),
  };
}

export function corrupt(path: string, why: string, cause?: unknown): StoreCorruptError {
  return new StoreCorruptError(
    path,
    `store file ${path} cannot be decoded (${why}); it was left untouched. ` +
      "Restore it from a backup, or move it away to start with an empty store.",
    cause === undefined ? undefined : { cause },
  );
}

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function decode(path: string, text: string, now = Date.now()): Contents {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    const why = text.length === 0 ? "the file is empty" : `not valid JSON: ${(error as Error).message}`;
    throw corrupt(path, why, error);
  }
  if (!isRecord(doc)) throw corrupt(path, "the top level is not an object");
  const contents = emptyContents();
  const add = (key: unknown, value: unknown, expires: unknown, at: number, prefixLength?: unknown) => {
    if (typeof key !== "string") throw corrupt(path, `entry ${at} has no string key`);
    if (expires !== null && expires !== undefined && typeof expires !== "number") {
      throw corrupt(path, `entry ${at} has a non-numeric expiry`);
    }
    if (typeof expires === "number" && expires <= now) return;
    contents.data.set(key, value);
    if (typeof expires === "number") contents.expires.set(key, expires);
    if (Number.isSafeInteger(prefixLength) && (prefixLength as number) > 0 && (prefixLength as number) < key.length) {
      contents.prefixLengths.set(key, prefixLength as number);
    }
  };
  if (doc.format === FORMAT) {
    if (doc.version !== 1 && doc.version !== FORMAT_VERSION) {
      throw corrupt(path, `unknown format version ${JSON.stringify(doc.version)}`);
    }
    if (!Array.isArray(doc.entries)) throw corrupt(path, "entries is not an array");
    if (doc.version === FORMAT_VERSION) {
      const { generation, folded } = doc;
      if (!isCount(generation) || generation < 1) throw corrupt(path, "generation is not a positive integer");
      contents.generation = generation;
      if (folded !== undefined) {
        if (!Array.isArray(folded) || !isCount(folded[0]) || !isCount(folded[1]) || folded[0] >= generation) {
          throw corrupt(path, "folded is not [generation, offset] of an earlier log");
        }
        contents.folded = [folded[0], folded[1]];
      }
      if (doc.quotas !== undefined) readQuotas(path, doc.quotas, contents.quotas);
    }
    doc.entries.forEach((entry: unknown, at: number) => {
      if (!Array.isArray(entry)) throw corrupt(path, `entry ${at} is not a [key, value, expires] tuple`);
      add(entry[0], entry[1], entry[2], at, entry[3]);
    });
    return contents;
  }
  if ("cache" in doc) {
    const cache = doc.cache;
    const entries: unknown[] = Array.isArray(cache) ? cache : isRecord(cache) ? Object.entries(cache) : [];
    if (!Array.isArray(cache) && !isRecord(cache)) throw corrupt(path, "keyv-file cache is neither a list nor a map");
    entries.forEach((entry, at) => {
      if (!Array.isArray(entry) || !isRecord(entry[1])) throw corrupt(path, `keyv-file entry ${at} is malformed`);
      add(entry[0], entry[1].value, entry[1].expire, at);
    });
    return contents;
  }
  throw corrupt(path, `not a ${FORMAT} document`);
}

/** A quota as stored (snapshot field or log op): StoreCorruptError if it is not one. */
export function storedQuota(path: string, base: unknown, quota: unknown): [string, Quota | null] {
  try {
    if (typeof base !== "string") throw new Error("its workspace base is not a string");
    return [base, validateQuota(quota)];
  } catch (error) {
    throw corrupt(path, `a quota is malformed: ${(error as Error).message}`, error);
  }
}

function readQuotas(path: string, quotas: unknown, into: Map<string, Quota>): void {
  if (!isRecord(quotas)) throw corrupt(path, "quotas is not an object");
  for (const [base, quota] of Object.entries(quotas)) {
    const [, limit] = storedQuota(path, base, quota);
    if (limit) into.set(base, limit);
  }
}

/** The live entries, in the Map's order; drops expiry records of keys deleted since (they would pile up). */
export function entriesOf(
  contents: Contents,
  prefixLengthOf: (key: string) => number | undefined = () => undefined,
  now = Date.now(),
): Tuple[] {
  return [...liveEntries(contents, prefixLengthOf, now)];
}

/** entriesOf, one at a time: a compaction encodes them a slice at a time without a second copy. */
export function* liveEntries(
  contents: Pick<Contents, "data" | "expires">,
  prefixLengthOf: (key: string) => number | undefined = () => undefined,
  now = Date.now(),
): Generator<Tuple> {
  const { data, expires } = contents;
  for (const key of expires.keys()) if (!data.has(key)) expires.delete(key);
  for (const [key, value] of data) {
    const at = expires.get(key);
    if (at !== undefined && at <= now) continue;
    const prefixLength = prefixLengthOf(key);
    yield prefixLength === undefined ? [key, value, at ?? null] : [key, value, at ?? null, prefixLength];
  }
}

/** The snapshot document's text before its entries; `]}` closes it. */
export function snapshotHead(
  generation: number,
  folded?: [number, number],
  quotas?: ReadonlyMap<string, Quota>,
): string {
  const head = {
    format: FORMAT,
    version: FORMAT_VERSION,
    generation,
    ...(folded && { folded }),
    ...(quotas && quotas.size > 0 && { quotas: Object.fromEntries(quotas) }),
  };
  return `${JSON.stringify(head).slice(0, -1)},"entries":[`;
}

/**
 * Full keys whose value or expiry differs between two contents, each once. Values are the
 * serialised strings Keyv hands over, so equal text is an equal value (anything else counts
 * as changed). O(entries), no parsing; a generator, so nothing runs unless someone asks.
 */
export function* changedKeys(before: Contents, after: Contents): Generator<string> {
  for (const [key, value] of after.data) {
    if (before.data.get(key) !== value || before.expires.get(key) !== after.expires.get(key)) yield key;
  }
  for (const key of before.data.keys()) if (!after.data.has(key)) yield key;
}
