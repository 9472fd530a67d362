/**
 * Driver over a keyv-file adapter (KeyvFile) the app already holds. Reads and writes go through
 * the adapter's own get/set/delete, so its persistence (write delay, file or one file per key)
 * keeps working; listing uses per-prefix name sets kept here, the way MapCore does for a Map —
 * never string matching over the adapter's keys.
 *
 * Booked: every name written through this driver, and the keys already in the store when the
 * driver first sees it (attributed by the key layout). A key the app writes straight into the
 * KeyvFile afterwards is not listed by any scope; a booked key the app deletes or clears
 * behind our back is dropped when listing finds it gone.
 */
import { IOError, KeyvWorkspacesError } from "../../errors.js";
import { joinKey, layoutPrefixLength } from "../../keys.js";
import type { Driver, Entry, PrefixStore } from "../driver.js";

/** The parts of KeyvFile this driver uses. */
interface KeyvFileLike {
  get(key: string): Promise<unknown>;
  has(key: string): Promise<boolean>;
  set(key: string, value: unknown, ttl?: number): Promise<unknown>;
  delete(key: string): Promise<unknown>;
  keys(): Promise<Iterable<string>>;
}

/** Deletes at once at most: each is a file unlink in keyv-file's one-file-per-key mode. */
const BATCH = 256;

const isFn = (value: unknown) => typeof value === "function";

/**
 * keyv-file's KeyvFile, recognised by shape (it claims `dialect: "redis"`, so that says nothing):
 * its file name option, its key listing and its own disk writer.
 */
export function isKeyvFile(store: object): boolean {
  const s = store as Record<string, unknown>;
  const opts = s.opts as Record<string, unknown> | undefined;
  return (
    isFn(s.get) &&
    isFn(s.set) &&
    isFn(s.delete) &&
    isFn(s.has) &&
    isFn(s.keys) &&
    isFn(s.saveToDisk) &&
    typeof opts?.filename === "string"
  );
}

function ioError(error: unknown): KeyvWorkspacesError {
  if (error instanceof KeyvWorkspacesError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new IOError(`the keyv-file adapter failed: ${message}`, { cause: error });
}

export function keyvFileDriver(adapter: object): Driver {
  const file = adapter as KeyvFileLike;
  const book = new Map<string, Set<string>>();
  const add = (prefix: string, name: string) => {
    let names = book.get(prefix);
    if (!names) book.set(prefix, (names = new Set()));
    names.add(name);
  };
  const drop = (prefix: string, name: string) => {
    const names = book.get(prefix);
    if (names?.delete(name) && names.size === 0) book.delete(prefix);
  };
  // Booked once, at first use: the one-file-per-key mode lists its directory asynchronously.
  let booked: Promise<void> | undefined;
  const ready = () => {
    booked ??= (async () => {
      for (const key of await file.keys()) {
        const at = typeof key === "string" ? layoutPrefixLength(key) : undefined;
        if (at !== undefined && at > 0 && at < key.length - 1) add(key.slice(0, at), key.slice(at + 1));
      }
    })();
    return booked;
  };
  const run = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      await ready();
      return await work();
    } catch (error) {
      throw ioError(error);
    }
  };
  const inBatches = async <T>(items: readonly T[], each: (item: T) => Promise<boolean>) => {
    let count = 0;
    for (let i = 0; i < items.length; i += BATCH) {
      // Concurrent within a batch: keyv-file resolves every write with its next (delayed) save.
      const done = await Promise.all(items.slice(i, i + BATCH).map(each));
      count += done.filter(Boolean).length;
    }
    return count;
  };

  const scope = (prefix: string): PrefixStore => {
    const key = (name: string) => joinKey(prefix, name);
    const setOne = async ({ name, value, ttl }: Entry) => {
      add(prefix, name);
      await file.set(key(name), value, typeof ttl === "number" && ttl > 0 ? ttl : undefined);
      return true;
    };
    const removeOne = async (name: string) => {
      const existed = await file.has(key(name));
      drop(prefix, name);
      await file.delete(key(name));
      return existed;
    };
    const live = async () => {
      const names = [...(book.get(prefix) ?? [])];
      const present = await Promise.all(names.map((name) => file.has(key(name))));
      const listed: string[] = [];
      names.forEach((name, i) => {
        if (present[i]) listed.push(name);
        else drop(prefix, name); // gone behind our back (or expired)
      });
      return listed;
    };
    return {
      prefix,
      get: (name) => run(() => file.get(key(name))),
      getMany: (names) => run(() => Promise.all(names.map((name) => file.get(key(name))))),
      has: (name) => run(() => file.has(key(name))),
      set: (name, value, ttl) => run(async () => void (await setOne({ name, value, ttl }))),
      setMany: (entries) => run(async () => void (await inBatches(entries, setOne))),
      delete: (name) => run(() => removeOne(name)),
      deleteMany: (names) => run(() => inBatches([...new Set(names)], removeOne)),
      names: () => {
        const listed = run(live);
        return (async function* () {
          yield* await listed;
        })();
      },
      clear: () => run(async () => void (await inBatches(await live(), removeOne))),
    };
  };
  return { scope };
}
