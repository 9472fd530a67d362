/**
 * storage.watch(): the driver's stream of changes (Driver.watch), narrowed to one storage's scope
 * and turned into an async iterator of ChangeEvents (API.md section 9).
 *
 * A prefix belongs to the scope only if the keyspace would give exactly that prefix to one of its
 * collections, so another workspace's changes (and, unscoped, every workspace's) never pass, nor do
 * the library's own bookkeeping prefixes (registries, the workflow index).
 */
import type { Driver, StoreChange } from "./backends/driver.js";
import { decodeValue } from "./collections/codec.js";
import { versionOf } from "./collections/version.js";
import { InvalidArgumentError, UnsupportedStoreError } from "./errors.js";
import { changeBase, type Keyspace, SEPARATOR, validateCollection } from "./keys.js";

export interface ChangeEvent {
  /** The collection changed; "*" for a reset. */
  collection: string;
  /** null for "clear" and "reset". */
  name: string | null;
  op: "set" | "delete" | "clear" | "reset";
  /** For artifacts and workflows: the version written. */
  version?: string;
}

export interface WatchOptions {
  /** Only these collections; default every collection of the scope (shared ones such as deps only when named). */
  collections?: readonly string[];
  /** Ends the iterator when it aborts. */
  signal?: AbortSignal;
}

/** Events a watcher may fall behind by before it gets one reset instead: memory stays bounded. */
export const WATCH_BUFFER = 10_000;

const VERSIONED = new Set(["artifacts", "workflows"]);

function collectionsOf(ks: Keyspace, options: WatchOptions): (prefix: string) => string | undefined {
  if (options.collections !== undefined) {
    if (!Array.isArray(options.collections)) {
      throw new InvalidArgumentError("watch: collections must be an array of collection names");
    }
    const byPrefix = new Map(options.collections.map((c) => [ks.prefix(validateCollection(c)), c] as const));
    return (prefix) => byPrefix.get(prefix);
  }
  const base = `${ks.workspacePrefix ?? ks.root}${SEPARATOR}`;
  return (prefix) => {
    if (!prefix.startsWith(base)) return undefined;
    let rest = prefix.slice(base.length);
    if (ks.hashTags && rest.startsWith("{") && rest.endsWith("}")) rest = rest.slice(1, -1);
    try {
      validateCollection(rest);
    } catch {
      return undefined;
    }
    // A collection of this scope, not a shared one reached from a workspace.
    return ks.isScoped(rest) === (ks.workspaceId !== undefined) && ks.prefix(rest) === prefix ? rest : undefined;
  };
}

function versionIn(value: unknown, name: string): string | undefined {
  try {
    const record = decodeValue(value, name);
    return record !== null && typeof record === "object" ? versionOf(record) : undefined;
  } catch {
    return undefined; // an unreadable value still reports its change, without a version
  }
}

/**
 * Subscribes now (so no change after the call is missed) and returns the iterator. `register`
 * records how to end it when the storage closes and returns how to forget it.
 */
export function watchScope(
  driver: Driver,
  ks: Keyspace,
  options: WatchOptions | undefined,
  register: (end: () => void) => () => void,
): AsyncIterableIterator<ChangeEvent> {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new InvalidArgumentError("watch options must be an object ({ collections?, signal? })");
  }
  const signal = options?.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidArgumentError("watch: signal must be an AbortSignal");
  }
  const collectionOf = collectionsOf(ks, options ?? {});
  if (!driver.watch) {
    throw new UnsupportedStoreError(
      "this backend cannot report changes (watch): its driver has no change feed, as with a generic Keyv adapter " +
        "or an @keyv/valkey cluster client passed to createStorage; open the backend by URL (openStorage) instead",
    );
  }

  const buffer: ChangeEvent[] = [];
  let waiting: ((result: IteratorResult<ChangeEvent>) => void) | undefined;
  let done = false;
  const push = (event: ChangeEvent) => {
    if (done) return;
    if (waiting) {
      const wake = waiting;
      waiting = undefined;
      wake({ value: event, done: false });
      return;
    }
    if (buffer.length >= WATCH_BUFFER) {
      // Fallen too far behind: what it missed is summed up as one reset.
      buffer.length = 0;
      buffer.push({ collection: "*", name: null, op: "reset" });
      return;
    }
    buffer.push(event);
  };
  const onChange = (change: StoreChange) => {
    if (change.op === "reset" || change.prefix === null) return push({ collection: "*", name: null, op: "reset" });
    const collection = collectionOf(change.prefix);
    if (collection === undefined) return;
    const event: ChangeEvent = { collection, name: change.name, op: change.op };
    if (change.op === "set" && VERSIONED.has(collection) && change.name !== null) {
      const version = versionIn(change.value, change.name);
      if (version !== undefined) event.version = version;
    }
    push(event);
  };
  const end = () => {
    if (done) return;
    done = true;
    unsubscribe();
    forget();
    signal?.removeEventListener("abort", end);
    buffer.length = 0;
    waiting?.({ value: undefined, done: true });
    waiting = undefined;
  };
  // The scopes whose changes can pass collectionOf, for drivers that listen per scope (Redis channels).
  const bases = options?.collections
    ? [...new Set(options.collections.map((c) => changeBase(ks.prefix(c))))]
    : [ks.workspacePrefix ?? ks.root];
  const unsubscribe = driver.watch(onChange, bases);
  const forget = register(end);
  if (signal?.aborted) end();
  else signal?.addEventListener("abort", end, { once: true });

  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next(): Promise<IteratorResult<ChangeEvent>> {
      const event = buffer.shift();
      if (event) return Promise.resolve({ value: event, done: false });
      if (done) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve) => {
        waiting = resolve;
      });
    },
    return(): Promise<IteratorResult<ChangeEvent>> {
      end();
      return Promise.resolve({ value: undefined, done: true });
    },
  };
}
